import { expect, it } from 'vitest';
import type { AuditEvent } from '../src/api/types.js';
import { describeEvent, type Part } from '../src/events.js';
import { digest } from './support/fixtures.js';

/**
 * A sentence written out with its links marked: [repository], [repository:tag], <digest>,
 * «token», `code`; plain text as it is.
 */
function written(parts: Part[]): string {
  return parts
    .map((p) => {
      if ('text' in p) return p.text;
      if ('tag' in p) return `[${p.repository}:${p.tag}]`;
      if ('repository' in p) return `[${p.repository}]`;
      if ('digest' in p) return `<${p.digest.slice(0, 9)}>`;
      if ('token' in p) return `«${p.token}»`;
      return `\`${p.code}\``;
    })
    .join('');
}

const D = digest('ab');
const event = (e: Partial<AuditEvent>): AuditEvent => ({
  id: 1,
  at: new Date().toISOString(),
  actor: 'alice',
  action: 'push',
  ...e,
  detail: { requestId: 'req-1', ...e.detail },
});
const say = (e: Partial<AuditEvent>, names?: Map<number, string>) =>
  written(describeEvent(event(e), names));

it('writes every event kind the server records as a sentence with its links', () => {
  const cases: [Partial<AuditEvent>, string][] = [
    [
      { action: 'push', repository: 'vm/live', reference: 'v2', digest: D },
      'alice pushed [vm/live:v2] (<sha256:ab>)',
    ],
    [
      { action: 'push', repository: 'lib/a', reference: D, digest: D },
      'alice pushed [lib/a]@<sha256:ab>',
    ],
    [
      { action: 'delete', repository: 'vm/live', reference: 'old' },
      'alice deleted tag [vm/live]:old',
    ],
    [
      { action: 'delete', repository: 'vm/live', reference: D },
      'alice deleted manifest [vm/live]@<sha256:ab>',
    ],
    [
      { action: 'blob.delete', repository: 'vm/live', reference: D },
      'alice deleted blob <sha256:ab> from [vm/live]',
    ],
    [
      { action: 'mount', repository: 'b/x', reference: D, detail: { from: 'a/x' } },
      'alice mounted blob <sha256:ab> into [b/x] from [a/x]',
    ],
    [
      {
        action: 'repository.settings',
        repository: 'vm/live',
        detail: { defaultFormat: 'incremental', previous: 'full' },
      },
      'alice set the default push format of [vm/live] to incremental (was full)',
    ],
    [
      {
        action: 'repository.settings',
        repository: 'vm/live',
        detail: { defaultFormat: 'full', previous: 'full' },
      },
      'alice set the default push format of [vm/live] to full',
    ],
    // The source of a mount is left out where the caller may not see it.
    [
      { action: 'mount', repository: 'b/x', reference: D },
      'alice mounted blob <sha256:ab> into [b/x]',
    ],
    [
      {
        action: 'token.create',
        detail: { tokenId: 3, name: 'ci', scopes: ['pull', 'push'], repoPattern: 'team/*' },
      },
      'alice created token «ci» with pull, push on `team/*`',
    ],
    [{ action: 'token.revoke', detail: { tokenId: 3 } }, 'alice revoked token #3'],
    [
      {
        action: 'token.denied',
        actor: 'ci',
        detail: { method: 'PUT', path: '/v2/x/manifests/1', status: 403 },
      },
      'Token «ci» was refused `PUT /v2/x/manifests/1` (403)',
    ],
    [{ action: 'login', actor: 'ci', detail: { via: 'token' } }, 'Token «ci» signed in'],
    [
      { action: 'login', actor: 'a@x.org', detail: { via: 'sso', admin: true } },
      'a@x.org signed in with single sign-on as an administrator',
    ],
    [
      {
        action: 'login.denied',
        actor: 'unknown',
        detail: { via: 'token', reason: 'token revoked' },
      },
      'A sign-in with a token was refused: token revoked',
    ],
    [
      { action: 'login.denied', actor: 'unknown', detail: { via: 'sso', reason: 'not allowed' } },
      'A single sign-on was refused: not allowed',
    ],
    [{ action: 'logout' }, 'alice signed out'],
    [
      {
        action: 'gc.delete.tag',
        actor: 'gc:schedule',
        repository: 'a/b',
        reference: 'x',
        digest: D,
      },
      'Scheduled garbage collection deleted tag [a/b]:x (<sha256:ab>)',
    ],
    [
      {
        action: 'gc.delete.manifest',
        actor: 'gc:api',
        repository: 'a/b',
        digest: D,
        detail: { size: 2048 },
      },
      'Garbage collection (started in the API) deleted manifest [a/b]@<sha256:ab> (2.0 KiB)',
    ],
    [
      { action: 'gc.delete.link', actor: 'gc:cli', repository: 'a/b', digest: D },
      'Garbage collection (gc:cli) unlinked blob <sha256:ab> from [a/b]',
    ],
    [
      { action: 'gc.delete.blob', actor: 'gc:schedule', digest: D, detail: { size: 10 } },
      'Scheduled garbage collection deleted blob <sha256:ab> (10 B)',
    ],
    [
      {
        action: 'gc.delete.orphan',
        actor: 'gc:schedule',
        detail: { key: '_uploads/u1/data', size: 5 },
      },
      'Scheduled garbage collection deleted the unreferenced object `_uploads/u1/data` (5 B)',
    ],
  ];
  for (const [e, sentence] of cases) expect(say(e), e.action).toBe(sentence);
});

it('names a revoked token for administrators, who may list tokens', () => {
  const names = new Map([[3, 'ci-deploy']]);
  expect(say({ action: 'token.revoke', detail: { tokenId: 3 } }, names)).toBe(
    'alice revoked token «ci-deploy»',
  );
});

it('still writes a sentence, not JSON, for an action it does not know', () => {
  const s = say({
    action: 'retention.change',
    repository: 'a/b',
    reference: 'v1',
    detail: { policies: 2, nested: { no: 'json' } },
  });
  expect(s).toBe('alice retention.change [a/b:v1] (policies: 2)');
  expect(s).not.toContain('{');
  // The request id is for log correlation, never shown.
  expect(say({ action: 'something' })).toBe('alice something');
});
