import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootCertificates } from 'node:tls';
// Evaluated before `undici`, so that Node's own fetch keeps its own dispatcher (see the file).
import './undici-guard.js';
import { Agent, type Dispatcher, EnvHttpProxyAgent, request } from 'undici';
import { httpError, RegistryNetworkError, type RemoteErrorEntry } from './errors.js';

/**
 * A request body. Bytes and factories can be sent again (on a retry, a redirect or after an
 * authentication challenge); a bare stream cannot, so a request with one is never retried.
 */
export type RequestBody = string | Uint8Array | (() => Readable) | Readable;

/** One HTTP request as the client sends it. */
export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
}

/** An HTTP response whose body is still unread. */
export interface HttpResponse {
  status: number;
  url: string;
  headers: Record<string, string | undefined>;
  body: Readable;
}

/** Transport settings: timeouts, retries, TLS and proxy. */
export interface TransportOptions {
  /** Milliseconds to wait for response headers (default 60 000). */
  headersTimeoutMs?: number;
  /** Milliseconds a body may stay silent before the transfer fails (default 300 000). */
  bodyTimeoutMs?: number;
  /** Milliseconds to establish a connection (default 30 000). */
  connectTimeoutMs?: number;
  /** Retries after a network error, a 5xx or a 429, for replayable requests (default 4). */
  retries?: number;
  /** First backoff delay in milliseconds, doubled per attempt (default 250). */
  backoffMs?: number;
  /** Extra PEM CA certificate(s) trusted besides the system roots (the CLI reads it from `EPOCH_CA_CERT`). */
  caCert?: string | Buffer;
  /** Dispatcher to use instead of the default one (which honours proxy env vars). */
  dispatcher?: Dispatcher;
  /** `User-Agent` header. */
  userAgent?: string;
}

const REDIRECTS = 5;

/**
 * The default dispatcher: undici's `EnvHttpProxyAgent`, so `HTTP_PROXY`, `HTTPS_PROXY` and
 * `NO_PROXY` (and their lower-case forms) apply, with the extra CA added to the system roots.
 */
export function createDispatcher(options: TransportOptions = {}): Dispatcher {
  const ca = options.caCert ? [...rootCertificates, options.caCert.toString()] : undefined;
  const tls = ca ? { ca } : {};
  const proxied =
    process.env.HTTP_PROXY ||
    process.env.http_proxy ||
    process.env.HTTPS_PROXY ||
    process.env.https_proxy;
  const common = {
    connectTimeout: options.connectTimeoutMs ?? 30_000,
    headersTimeout: options.headersTimeoutMs ?? 60_000,
    bodyTimeout: options.bodyTimeoutMs ?? 300_000,
    connect: tls,
  };
  return proxied ? new EnvHttpProxyAgent({ ...common, requestTls: tls }) : new Agent(common);
}

/** Sends HTTP requests with timeouts, retries with backoff, and redirects. */
export class Transport {
  readonly #dispatcher: Dispatcher;
  readonly #retries: number;
  readonly #backoff: number;
  readonly #userAgent: string;
  readonly #owned: boolean;

  constructor(options: TransportOptions = {}) {
    this.#owned = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? createDispatcher(options);
    this.#retries = options.retries ?? 4;
    this.#backoff = options.backoffMs ?? 250;
    this.#userAgent = options.userAgent ?? 'epoch-registry-client';
  }

  /**
   * Sends a request and returns the response, whatever its status, once its headers arrived.
   * Network errors, 5xx and 429 are retried with exponential backoff when the body can be
   * sent again; GET/HEAD redirects are followed (credentials are dropped across origins).
   *
   * @throws {RegistryNetworkError} when no response came back, retries exhausted
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const replayable = !isStream(req.body);
    for (let attempt = 0; ; attempt++) {
      const last = !replayable || attempt >= this.#retries;
      let res: HttpResponse;
      try {
        res = await this.#follow(req);
      } catch (err) {
        if (last || req.signal?.aborted) throw err;
        await sleep(this.#delay(attempt));
        continue;
      }
      if (!last && (res.status >= 500 || res.status === 429)) {
        res.body.resume();
        await sleep(this.#delay(attempt, res.headers['retry-after']));
        continue;
      }
      return res;
    }
  }

  /** Closes the connections of a dispatcher this transport created. */
  async close(): Promise<void> {
    if (this.#owned) await this.#dispatcher.close();
  }

  #delay(attempt: number, retryAfter?: string): number {
    const seconds = retryAfter ? Number(retryAfter) : Number.NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 30_000);
    const base = this.#backoff * 2 ** attempt;
    return Math.min(base + Math.random() * base * 0.2, 10_000);
  }

  async #follow(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let headers = { 'user-agent': this.#userAgent, ...req.headers };
    for (let hop = 0; ; hop++) {
      const res = await this.#once({ ...req, url, headers });
      const location = res.headers.location;
      const redirect = [301, 302, 303, 307, 308].includes(res.status) && location;
      if (!redirect || hop >= REDIRECTS || (req.method !== 'GET' && req.method !== 'HEAD')) {
        return res;
      }
      res.body.resume();
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) {
        // Presigned object-store URLs carry their own credentials and reject ours.
        const { authorization: _dropped, ...rest } = headers as Record<string, string>;
        headers = rest as typeof headers;
      }
      url = next.href;
    }
  }

  async #once(req: HttpRequest): Promise<HttpResponse> {
    const body = typeof req.body === 'function' ? req.body() : req.body;
    try {
      const res = await request(req.url, {
        method: req.method,
        headers: req.headers,
        body: body ?? null,
        dispatcher: this.#dispatcher,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      const headers: Record<string, string | undefined> = {};
      for (const [key, value] of Object.entries(res.headers)) {
        headers[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
      }
      return { status: res.statusCode, url: req.url, headers, body: res.body };
    } catch (err) {
      if (isStream(body)) body.destroy();
      throw new RegistryNetworkError(req.method, req.url, err);
    }
  }
}

function isStream(body: RequestBody | undefined): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function';
}

const ERROR_BODY_LIMIT = 64 * 1024;

/** Reads a small body as text (at most 64 KiB; the rest is discarded). */
export async function readText(body: Readable, limit = ERROR_BODY_LIMIT): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    if (length < limit) chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** Turns a non-success response into the typed error for its status, with its OCI errors. */
export async function errorFor(method: string, res: HttpResponse): Promise<Error> {
  let errors: RemoteErrorEntry[] = [];
  if (method !== 'HEAD') {
    try {
      const doc = JSON.parse(await readText(res.body)) as { errors?: RemoteErrorEntry[] };
      if (Array.isArray(doc.errors)) errors = doc.errors.filter((e) => typeof e?.code === 'string');
    } catch {
      // A non-JSON error body (a proxy's HTML page, say) still yields the status.
    }
  } else {
    res.body.resume();
  }
  return httpError(method, res.url, res.status, errors);
}
