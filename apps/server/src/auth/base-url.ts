import type { Context } from 'hono';

/**
 * The URL clients reach this server at: `EPOCH_PUBLIC_URL` when set, else the first value of
 * `X-Forwarded-Proto`/`X-Forwarded-Host` (a TLS-terminating proxy), else the `Host` header.
 */
export function baseUrl(c: Context, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl;
  const first = (value: string | undefined) => value?.split(',')[0]?.trim() || undefined;
  const proto = first(c.req.header('x-forwarded-proto')) === 'https' ? 'https' : 'http';
  const host = first(c.req.header('x-forwarded-host')) ?? c.req.header('host') ?? 'localhost';
  // A Host header is client input: keep it to host[:port] characters before echoing it.
  const safeHost = /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? host : 'localhost';
  return `${proto}://${safeHost}`;
}
