import type { AuditEvent } from './api/types.js';
import { formatBytes } from './format.js';

/**
 * One piece of an activity sentence. Sentences are data, not markup: the feed renders text
 * parts as text and the others as links or short digests, so no value from an event ever
 * becomes HTML.
 */
export type Part =
  | { text: string }
  | { repository: string }
  | { repository: string; tag: string }
  | { digest: string }
  | { token: string }
  | { code: string };

const text = (t: string): Part => ({ text: t });
const isDigest = (ref: string) => ref.includes(':');

/** `name:tag` (a link to the tag), or `name@sha256:…` for a reference that is a digest. */
function reference(repository: string, ref: string | undefined): Part[] {
  if (!ref) return [{ repository }];
  if (isDigest(ref)) return [{ repository }, text('@'), { digest: ref }];
  return [{ repository, tag: ref }];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function sized(detail: Record<string, unknown>): Part[] {
  const size = num(detail.size);
  return size === undefined ? [] : [text(` (${formatBytes(size)})`)];
}

/** Who ran a garbage collection, from its actor (`gc:api`, `gc:schedule`, `gc:cli`…). */
function collector(actor: string): string {
  if (actor === 'gc:schedule') return 'Scheduled garbage collection';
  if (actor === 'gc:api') return 'Garbage collection (started in the API)';
  return `Garbage collection (${actor})`;
}

/**
 * An audit event as a sentence, e.g. "alice pushed vm/live:v2 (sha256:0123…)". `tokenNames`
 * resolves the token ids of revocations, for administrators who may list tokens. Unknown actions
 * still read as "actor did action", with their details as `key: value` text.
 */
export function describeEvent(e: AuditEvent, tokenNames?: ReadonlyMap<number, string>): Part[] {
  const d = e.detail ?? {};
  const actor = text(e.actor);
  const repo = e.repository;
  switch (e.action) {
    case 'push':
      if (!repo) break;
      return [
        actor,
        text(' pushed '),
        ...reference(repo, e.reference),
        ...(e.digest && e.reference && !isDigest(e.reference)
          ? [text(' ('), { digest: e.digest }, text(')')]
          : []),
      ];
    case 'delete':
      if (!repo) break;
      // The tag is gone: it is named, not linked.
      return e.reference && !isDigest(e.reference)
        ? [actor, text(' deleted tag '), { repository: repo }, text(`:${e.reference}`)]
        : [actor, text(' deleted manifest '), ...reference(repo, e.reference)];
    case 'blob.delete':
      if (!repo) break;
      return [
        actor,
        text(' deleted blob '),
        { digest: e.reference ?? e.digest ?? '' },
        text(' from '),
        { repository: repo },
      ];
    case 'mount': {
      if (!repo) break;
      const from = str(d.from);
      return [
        actor,
        text(' mounted blob '),
        { digest: e.reference ?? '' },
        text(' into '),
        { repository: repo },
        ...(from ? [text(' from '), { repository: from }] : []),
      ];
    }
    case 'token.create': {
      const name = str(d.name) ?? `#${String(d.tokenId)}`;
      const scopes = Array.isArray(d.scopes) ? d.scopes.filter((s) => typeof s === 'string') : [];
      return [
        actor,
        text(' created token '),
        { token: name },
        ...(scopes.length > 0 ? [text(` with ${scopes.join(', ')}`)] : []),
        ...(str(d.repoPattern) ? [text(' on '), { code: String(d.repoPattern) }] : []),
      ];
    }
    case 'token.revoke': {
      const id = num(d.tokenId);
      const name = id === undefined ? undefined : tokenNames?.get(id);
      return [
        actor,
        text(' revoked token '),
        name ? { token: name } : text(id === undefined ? '(unknown)' : `#${id}`),
      ];
    }
    case 'token.denied':
      return [
        text('Token '),
        { token: e.actor },
        text(' was refused '),
        { code: `${str(d.method) ?? '?'} ${str(d.path) ?? '?'}` },
        ...(num(d.status) === undefined ? [] : [text(` (${num(d.status)})`)]),
      ];
    case 'login':
      if (d.via === 'token') return [text('Token '), { token: e.actor }, text(' signed in')];
      return [
        actor,
        text(' signed in with single sign-on'),
        ...(d.admin === true ? [text(' as an administrator')] : []),
      ];
    case 'login.denied':
      return [
        text(
          d.via === 'sso' ? 'A single sign-on was refused' : 'A sign-in with a token was refused',
        ),
        ...(str(d.reason) ? [text(`: ${str(d.reason)}`)] : []),
      ];
    case 'logout':
      return [actor, text(' signed out')];
    case 'repository.settings': {
      if (!repo) break;
      const format = str(d.defaultFormat);
      const previous = str(d.previous);
      if (!format) break;
      return [
        actor,
        text(' set the default push format of '),
        { repository: repo },
        text(` to ${format}`),
        ...(previous && previous !== format ? [text(` (was ${previous})`)] : []),
      ];
    }
    case 'gc.delete.tag':
      if (!repo) break;
      return [
        text(`${collector(e.actor)} deleted tag `),
        { repository: repo },
        text(`:${e.reference ?? ''}`),
        ...(e.digest ? [text(' ('), { digest: e.digest }, text(')')] : []),
      ];
    case 'gc.delete.manifest':
      if (!repo) break;
      return [
        text(`${collector(e.actor)} deleted manifest `),
        ...reference(repo, e.digest),
        ...sized(d),
      ];
    case 'gc.delete.link':
      if (!repo) break;
      return [
        text(`${collector(e.actor)} unlinked blob `),
        { digest: e.digest ?? '' },
        text(' from '),
        { repository: repo },
      ];
    case 'gc.delete.blob':
      return [text(`${collector(e.actor)} deleted blob `), { digest: e.digest ?? '' }, ...sized(d)];
    case 'gc.delete.orphan':
      return [
        text(`${collector(e.actor)} deleted the unreferenced object `),
        { code: str(d.key) ?? e.digest ?? '?' },
        ...sized(d),
      ];
  }
  return fallback(e);
}

/** An action this dashboard does not know: still a sentence, details as text. */
function fallback(e: AuditEvent): Part[] {
  const { requestId: _, ...rest } = e.detail ?? {};
  const details = Object.entries(rest)
    .filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => `${k}: ${String(v)}`);
  return [
    text(`${e.actor} ${e.action}`),
    ...(e.repository ? [text(' '), ...reference(e.repository, e.reference)] : []),
    ...(details.length > 0 ? [text(` (${details.join(', ')})`)] : []),
  ];
}
