import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunningServer } from '@epoch/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoonRoot, epoch, fakeCocoon, startEpoch } from './support/harness.js';

// The CLI against an Epoch that requires credentials: the Docker token flow from a 401
// challenge, with the token given in EPOCH_REGISTRY_TOKEN or saved by `epoch login`.
describe('epoch against a registry that requires tokens', () => {
  const cleanups: (() => Promise<void>)[] = [];
  let server: RunningServer;
  let push: string;
  let pull: string;
  const files = () => ({
    'snapshot.json': Buffer.from('{"config":{"name":"vm"},"version":1}\n'),
    'memory-ranges': randomBytes(64 * 1024),
  });
  const env = (root: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    EPOCH_SERVER: server.url,
    EPOCH_COCOON_BINARY: fakeCocoon,
    FAKE_COCOON_ROOT: root,
    HOME: root,
    XDG_CONFIG_HOME: join(root, 'config'),
    ...extra,
  });

  beforeAll(async () => {
    // Anonymous pull off and a static token set: nothing works without a token.
    server = await startEpoch(cleanups, {
      EPOCH_ANONYMOUS_PULL: 'false',
      EPOCH_REGISTRY_TOKEN: 'static-registry-token-0123456789',
    });
    push = (
      await server.index.tokens.create({
        name: 'ci',
        createdBy: 't',
        scopes: ['push'],
        repoPattern: 'auth/*',
      })
    ).plaintext;
    pull = (
      await server.index.tokens.create({
        name: 'node',
        createdBy: 't',
        scopes: ['pull'],
        repoPattern: 'auth/*',
      })
    ).plaintext;
  });
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('refuses without a token, pushes and pulls with scoped tokens through the token flow', async () => {
    const root = await cocoonRoot(cleanups, { vm: files() });
    const anonymous = await epoch(['push', 'vm', '-t', 'v1', '--repo', 'auth/vm'], env(root));
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/unauthorized|authentication required|401/i);

    const pushed = await epoch(
      ['push', 'vm', '-t', 'v1', '--repo', 'auth/vm'],
      env(root, { EPOCH_REGISTRY_TOKEN: push }),
    );
    expect(pushed.code, pushed.stderr).toBe(0);
    // The token flow was used: the audit log names the token for the push.
    const events = await server.index.audit.list({ limit: 50 });
    expect(
      events.items.some(
        (e) => e.action === 'push' && e.actor === 'ci' && e.repository === 'auth/vm',
      ),
    ).toBe(true);

    const pulled = await epoch(
      ['pull', 'auth/vm:v1', '--to-tar', join(root, 'vm.tar')],
      env(root, { EPOCH_REGISTRY_TOKEN: pull }),
    );
    expect(pulled.code, pulled.stderr).toBe(0);
    expect((await readFile(join(root, 'vm.tar'))).includes(Buffer.from('memory-ranges'))).toBe(
      true,
    );

    const denied = await epoch(
      ['push', 'vm', '-t', 'v2', '--repo', 'auth/vm'],
      env(root, { EPOCH_REGISTRY_TOKEN: pull }),
    );
    expect(denied.code).toBe(1);
    const outside = await epoch(['ls', 'other/vm'], env(root, { EPOCH_REGISTRY_TOKEN: pull }));
    expect(outside.code).not.toBe(0);
  });

  it('logs in with a token, then works without the environment variable', async () => {
    const root = await cocoonRoot(cleanups, { vm: files() });
    const bad = await epoch(['login', server.url, '--token', 'wrong-token'], env(root));
    expect(bad.code).toBe(1);
    const login = await epoch(
      ['login', server.url, '--token-stdin'],
      env(root),
      Buffer.from(`${push}\n`),
    );
    expect(login.code, login.stderr).toBe(0);
    const pushed = await epoch(['push', 'vm', '-t', 'v3', '--repo', 'auth/vm'], env(root));
    expect(pushed.code, pushed.stderr).toBe(0);
    const ls = await epoch(['ls', 'auth/vm', '--json'], env(root));
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout.toString())).toEqual(expect.arrayContaining(['v1', 'v3']));
  });
});
