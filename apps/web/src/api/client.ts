import type { Page } from './types.js';

/** A non-2xx answer from the server, with its JSON `{error, code}` when it sent one. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;

/** Remembers the session's CSRF token (from `/auth/me` or `POST /auth/token`). */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/json');
  const method = (init.method ?? 'GET').toUpperCase();
  // The server refuses state-changing calls made with the session cookie without this header.
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers.set('X-CSRF-Token', csrfToken);
  const res = await fetch(path, { credentials: 'same-origin', ...init, headers });
  if (!res.ok) {
    let code = 'HTTP_ERROR';
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: string; code?: string };
      if (body.code) code = body.code;
      if (body.error) message = body.error;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(res.status, code, message);
  }
  return res;
}

/** GETs JSON. */
export async function getJson<T>(path: string): Promise<T> {
  return (await (await request(path)).json()) as T;
}

/** GETs one page of a bare-array list; the next cursor comes from `X-Next-Cursor`. */
export async function getPage<T>(path: string): Promise<Page<T>> {
  const res = await request(path);
  const items = (await res.json()) as T[];
  const next = res.headers.get('X-Next-Cursor');
  return next ? { items, nextCursor: next } : { items };
}

/** Sends JSON (or nothing) with a state-changing method; returns the JSON answer, if any. */
export async function send<T>(
  method: string,
  path: string,
  body?: unknown,
): Promise<T | undefined> {
  const res = await request(path, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
  if (res.status === 204) return undefined;
  const text = await res.text();
  return text ? (JSON.parse(text) as T) : undefined;
}

/** A query string from the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A repository name in a path: each segment encoded, slashes kept (the server takes both). */
function namePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** `/api/repositories/<name>`. */
export function repoPath(name: string): string {
  return `/api/repositories/${namePath(name)}`;
}

/**
 * `/api/repository-settings/<name>` (the server's `REPOSITORY_SETTINGS_ROUTE`, which this bundle
 * cannot import from `@epoch/registry`).
 */
export function repoSettingsPath(name: string): string {
  return `/api/repository-settings/${namePath(name)}`;
}
