import type { Context } from 'hono';
import type { Env } from '../http/env.js';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i;

/** Whether a socket address is a loopback client. */
export function isLoopback(remote: string | undefined): boolean {
  return remote !== undefined && LOOPBACK.test(remote);
}

/**
 * Whether the request comes from a program on this machine talking to this server directly:
 * the peer is on loopback, the `Host` it asked for is a loopback name, and no proxy forwarded
 * it. Out of the box (no token yet) such a client may write, so each condition matters: a
 * reverse proxy on the same host is a loopback peer that relays the world (it names the
 * original client in `X-Forwarded-For` or `Forwarded`), and a web page whose domain an attacker
 * re-points at 127.0.0.1 (DNS rebinding) reaches the server from loopback under its own name.
 */
export function isLocalClient(c: Context<Env>): boolean {
  if (!isLoopback(c.env?.incoming?.socket?.remoteAddress)) return false;
  const host = c.req.header('host');
  if (host === undefined || !LOOPBACK_HOST.test(host)) return false;
  return (
    c.req.header('x-forwarded-for') === undefined &&
    c.req.header('forwarded') === undefined &&
    c.req.header('x-real-ip') === undefined
  );
}
