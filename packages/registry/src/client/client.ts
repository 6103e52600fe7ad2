import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ContentSizeMismatchError,
  type Digest,
  Digester,
  DigestMismatchError,
  digestOf,
  ManifestMediaTypes,
  parseDigest,
} from '@epoch/oci';
import { Authenticator, type Credentials, repositoryScope } from './auth.js';
import { nextLink } from './challenge.js';
import {
  parseRepositorySettings,
  type RepositorySettingsDocument,
  repositorySettingsPath,
} from './control-api.js';
import {
  httpError,
  RegistryHttpError,
  RegistryNetworkError,
  RegistryNotFoundError,
  RegistryProtocolError,
  RegistryUnauthorizedError,
} from './errors.js';
import {
  errorFor,
  type HttpRequest,
  type HttpResponse,
  readText,
  Transport,
  type TransportOptions,
} from './transport.js';

/** Settings of a {@link RegistryClient}. */
export interface RegistryClientOptions extends TransportOptions {
  /** Base URL of the registry, e.g. `https://ghcr.io` or `http://127.0.0.1:4300`. */
  url: string;
  /** Credentials; anonymous without. */
  credentials?: Credentials;
  /** Default chunk size of chunked uploads, in bytes (default 16 MiB). */
  chunkSize?: number;
  /** Entries asked for per page of tags and catalog listings (default 1000). */
  pageSize?: number;
}

/** A manifest as fetched: its exact bytes, media type and digest. */
export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

/** What a HEAD on a manifest or blob tells. */
export interface ContentInfo {
  digest: Digest | undefined;
  mediaType: string | undefined;
  size: number | undefined;
}

/** The source of a blob upload: bytes, a stream factory (re-readable), or a one-shot stream. */
export type BlobSource = Uint8Array | (() => Readable) | Readable;

/** Options of {@link RegistryClient.pushBlob}. */
export interface PushBlobOptions {
  /** The digest, when known up front: enables the existence check, mount and monolithic PUT. */
  digest?: Digest;
  /** The size, when known. */
  size?: number;
  /** Repository to mount the blob from (cross-repository mount on the same registry). */
  mountFrom?: string;
  /** Chunk size for this upload (default: the client's). */
  chunkSize?: number;
  /** Send in one PUT even when the source is a stream (only replayable sources retry). */
  monolithic?: boolean;
  /** Called with the byte count sent so far. */
  onProgress?: (bytes: number) => void;
}

/** How a blob got into the repository. */
export interface PushBlobResult {
  digest: Digest;
  size: number;
  /** `uploaded`, `mounted` from another repository, or `exists` already. */
  how: 'uploaded' | 'mounted' | 'exists';
}

/** Options of {@link RegistryClient.getBlob}. */
export interface GetBlobOptions {
  /** Expected size: checked at the end, and required to resume a dropped transfer. */
  size?: number;
  /** Read only `bytes=start-end` (inclusive end); not digest-verified then. */
  range?: { start: number; end?: number };
  /** Called with the byte count received so far. */
  onProgress?: (bytes: number) => void;
  /** Aborts the transfer (the request, and any resume of it). */
  signal?: AbortSignal;
}

/** The manifest media types a client accepts by default: every OCI and Docker v2 kind. */
export const DEFAULT_MANIFEST_ACCEPT: readonly string[] = ManifestMediaTypes;

const DEFAULT_CHUNK = 16 * 1024 * 1024;
/** Manifests beyond this are refused instead of read into memory (distribution's limit is 4 MiB). */
const MANIFEST_LIMIT = 32 * 1024 * 1024;
const PAGE_SIZE = 1000;
/** Control API answers are a few hundred bytes; a longer one is cut (and then not JSON). */
const API_ANSWER_LIMIT = 64 * 1024;

/**
 * A client of the OCI distribution API that works against any registry: authentication by
 * challenge (Basic, or the Docker/OCI token flow), retries, streaming blob transfers with
 * digest verification, chunked and resumable uploads, cross-repository mounts.
 */
export class RegistryClient {
  /** Base URL, without a trailing slash. */
  readonly url: string;
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  readonly #chunk: number;
  readonly #retries: number;
  readonly #pageSize: number;

  constructor(options: RegistryClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.#transport = new Transport(options);
    this.#auth = new Authenticator(this.#transport, options.credentials);
    this.#chunk = options.chunkSize ?? DEFAULT_CHUNK;
    this.#retries = options.retries ?? 4;
    this.#pageSize = options.pageSize ?? PAGE_SIZE;
  }

  /** The registry host as a reference would name it (`host[:port]`). */
  get host(): string {
    return new URL(this.url).host;
  }

  /** Closes idle connections. */
  close(): Promise<void> {
    return this.#transport.close();
  }

  /**
   * `GET /v2/`: checks the registry speaks the API and the credentials are accepted.
   *
   * @throws {RegistryUnauthorizedError} if they are not
   */
  async ping(): Promise<void> {
    const res = await this.#ok({ method: 'GET', url: `${this.url}/v2/` }, [], [200]);
    res.body.resume();
  }

  /** A `HEAD` or `GET` of a manifest by tag or digest, accepting `accept`; a 200 or it throws. */
  #manifestRequest(
    method: 'HEAD' | 'GET',
    name: string,
    reference: string,
    accept: readonly string[],
  ) {
    return this.#ok(
      { method, url: this.#path(name, 'manifests', reference), headers: acceptHeader(accept) },
      [repositoryScope(name, ['pull'])],
      [200],
    );
  }

  /** `HEAD` a manifest by tag or digest. @throws {RegistryNotFoundError} */
  async headManifest(
    name: string,
    reference: string,
    accept: readonly string[] = DEFAULT_MANIFEST_ACCEPT,
  ): Promise<ContentInfo> {
    const res = await this.#manifestRequest('HEAD', name, reference, accept);
    res.body.resume();
    return info(res);
  }

  /**
   * `GET` a manifest by tag or digest; its bytes are checked against the digest when the
   * reference is one (or the registry named one).
   *
   * @throws {RegistryNotFoundError} | {DigestMismatchError}
   */
  async getManifest(
    name: string,
    reference: string,
    accept: readonly string[] = DEFAULT_MANIFEST_ACCEPT,
  ): Promise<FetchedManifest> {
    const res = await this.#manifestRequest('GET', name, reference, accept);
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of res.body) {
      length += (chunk as Buffer).length;
      if (length > MANIFEST_LIMIT) {
        res.body.destroy();
        throw new RegistryProtocolError(
          `manifest ${name}:${reference} is over ${MANIFEST_LIMIT} bytes`,
        );
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const expected = reference.includes(':') ? reference : res.headers['docker-content-digest'];
    const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (expected && expected !== digest) throw new DigestMismatchError(expected, digest);
    const mediaType = res.headers['content-type']?.split(';')[0]?.trim() || declaredType(bytes);
    return { bytes, mediaType, digest };
  }

  /** `PUT` a manifest under a tag or its digest; returns its digest. */
  async putManifest(
    name: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<Digest> {
    const res = await this.#ok(
      {
        method: 'PUT',
        url: this.#path(name, 'manifests', reference),
        headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) },
        body: bytes,
      },
      [repositoryScope(name, ['pull', 'push'])],
      [200, 201, 202],
    );
    res.body.resume();
    const digest = digestOf(bytes);
    const told = res.headers['docker-content-digest'];
    if (told && told !== digest && told.startsWith('sha256:')) {
      throw new DigestMismatchError(digest, told);
    }
    return digest;
  }

  /** `DELETE` a manifest by digest (or tag, where the registry allows). @throws {RegistryNotFoundError} */
  async deleteManifest(name: string, reference: string): Promise<void> {
    const res = await this.#ok(
      { method: 'DELETE', url: this.#path(name, 'manifests', reference) },
      [repositoryScope(name, ['pull', 'push'])],
      [200, 202, 204],
    );
    res.body.resume();
  }

  /** `HEAD` a blob. @throws {RegistryNotFoundError} */
  async headBlob(name: string, digest: string): Promise<ContentInfo> {
    const res = await this.#ok(
      { method: 'HEAD', url: this.#path(name, 'blobs', digest) },
      [repositoryScope(name, ['pull'])],
      [200],
    );
    res.body.resume();
    return info(res);
  }

  /** Whether the repository has the blob. */
  async hasBlob(name: string, digest: string): Promise<boolean> {
    try {
      await this.headBlob(name, digest);
      return true;
    } catch (err) {
      if (err instanceof RegistryNotFoundError) return false;
      throw err;
    }
  }

  /**
   * A blob's bytes as a stream. The whole blob is verified against its digest (the stream fails
   * at its end on a mismatch: treat the bytes as provisional until it ends cleanly); a dropped
   * connection is resumed with a `Range` request where the size is known. A `range` read is
   * passed through unverified.
   */
  getBlob(name: string, digest: string, options: GetBlobOptions = {}): Readable {
    return Readable.from(this.#blobBytes(name, digest, options), { objectMode: false });
  }

  async *#blobBytes(name: string, digest: string, options: GetBlobOptions): AsyncGenerator<Buffer> {
    const scopes = [repositoryScope(name, ['pull'])];
    const url = this.#path(name, 'blobs', digest);
    if (options.range) {
      const { start, end } = options.range;
      const res = await this.#ok(
        {
          method: 'GET',
          url,
          headers: { range: `bytes=${start}-${end ?? ''}` },
          ...(options.signal ? { signal: options.signal } : {}),
        },
        scopes,
        [206],
      );
      yield* res.body as AsyncIterable<Buffer>;
      return;
    }
    const digester = new Digester(parseDigest(digest).algorithm);
    let failures = 0;
    for (;;) {
      const offset = digester.bytes;
      const res = await this.#ok(
        {
          method: 'GET',
          url,
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          ...(options.signal ? { signal: options.signal } : {}),
        },
        scopes,
        offset > 0 ? [206] : [200],
      );
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          digester.update(chunk);
          options.onProgress?.(digester.bytes);
          yield chunk;
        }
      } catch (err) {
        const resumable = options.size !== undefined && digester.bytes < options.size;
        if (!resumable || failures >= this.#retries || options.signal?.aborted) {
          throw new RegistryNetworkError('GET', url, err);
        }
        // A dropped connection costs only what was not yet received.
        failures++;
        await sleep(250 * 2 ** failures);
        continue;
      }
      break;
    }
    if (options.size !== undefined && digester.bytes !== options.size) {
      throw new ContentSizeMismatchError(options.size, digester.bytes);
    }
    const actual = digester.digest();
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
  }

  /**
   * Puts a blob into a repository: skipped if it is there already, mounted from `mountFrom`
   * when possible, otherwise uploaded: in one PUT for bytes (or `monolithic`), else in chunks
   * (POST, PATCH…, PUT) hashed on the way, each chunk resumed from the registry's upload status
   * after a failure. Memory use is one chunk.
   */
  async pushBlob(
    name: string,
    source: BlobSource,
    options: PushBlobOptions = {},
  ): Promise<PushBlobResult> {
    const scopes = [repositoryScope(name, ['pull', 'push'])];
    if (options.digest) {
      const info = await this.#existing(name, options.digest);
      if (info) return { digest: options.digest, size: info, how: 'exists' };
    }
    let start = `${this.url}/v2/${name}/blobs/uploads/`;
    const mountScopes = [...scopes];
    if (options.mountFrom && options.digest) {
      start += `?mount=${encodeURIComponent(options.digest)}&from=${encodeURIComponent(options.mountFrom)}`;
      mountScopes.push(repositoryScope(options.mountFrom, ['pull']));
    }
    const res = await this.#ok(
      { method: 'POST', url: start, headers: { 'content-length': '0' } },
      mountScopes,
      [201, 202],
    );
    res.body.resume();
    if (res.status === 201 && options.digest) {
      return {
        digest: options.digest,
        size: options.size ?? (await this.#existing(name, options.digest)) ?? 0,
        how: 'mounted',
      };
    }
    const location = this.#location(res);
    if (source instanceof Uint8Array) {
      const digest = options.digest ?? digestOf(source);
      await this.#finish(location, digest, source, scopes);
      options.onProgress?.(source.byteLength);
      return { digest, size: source.byteLength, how: 'uploaded' };
    }
    if (options.monolithic && options.digest && options.size !== undefined) {
      const size = options.size;
      await this.#finish(location, options.digest, source, scopes, size);
      options.onProgress?.(size);
      return { digest: options.digest, size, how: 'uploaded' };
    }
    return this.#chunked(location, source, options, scopes);
  }

  async #existing(name: string, digest: string): Promise<number | undefined> {
    try {
      return (await this.headBlob(name, digest)).size ?? 0;
    } catch (err) {
      if (err instanceof RegistryNotFoundError) return undefined;
      throw err;
    }
  }

  async #chunked(
    first: string,
    source: (() => Readable) | Readable,
    options: PushBlobOptions,
    scopes: string[],
  ): Promise<PushBlobResult> {
    const chunkSize = options.chunkSize ?? this.#chunk;
    const stream = typeof source === 'function' ? source() : source;
    const digester = new Digester(
      options.digest ? parseDigest(options.digest).algorithm : 'sha256',
    );
    let location = first;
    let offset = 0;
    // Two chunk buffers, filled by copying: one is read into while the other's PATCH is in
    // flight, and each is reused only once its PATCH is acknowledged. Memory stays at two chunks
    // whatever the blob size, and a failed PATCH can be resent from its buffer.
    const buffers = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
    let current = 0;
    let filled = 0;
    let inflight: Promise<string> | undefined;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      digester.update(piece);
      let at = 0;
      while (at < piece.length) {
        const n = piece.copy(buffers[current] as Buffer, filled, at);
        filled += n;
        at += n;
        if (filled === chunkSize) {
          const previous = inflight;
          const chunk = buffers[current] as Buffer;
          const start = offset;
          // PATCHes stay in order: each needs the Location the previous one answered with.
          inflight = (async () =>
            this.#patch(previous ? await previous : location, chunk, start, scopes))();
          inflight.catch(() => {});
          if (previous) {
            location = await previous;
            options.onProgress?.(start);
          }
          offset += chunkSize;
          current ^= 1;
          filled = 0;
        }
      }
    }
    if (inflight) location = await inflight;
    if (options.size !== undefined && digester.bytes !== options.size) {
      throw new ContentSizeMismatchError(options.size, digester.bytes);
    }
    const digest = digester.digest();
    if (options.digest && options.digest !== digest) {
      throw new DigestMismatchError(options.digest, digest);
    }
    await this.#finish(location, digest, (buffers[current] as Buffer).subarray(0, filled), scopes);
    options.onProgress?.(digester.bytes);
    return { digest, size: digester.bytes, how: 'uploaded' };
  }

  /** PATCHes one chunk at `offset`; after a failure, asks the registry how much arrived and sends the rest. */
  async #patch(location: string, chunk: Buffer, offset: number, scopes: string[]): Promise<string> {
    let sent = 0;
    for (let attempt = 0; ; attempt++) {
      const part = chunk.subarray(sent);
      const start = offset + sent;
      try {
        const res = await this.#ok(
          {
            method: 'PATCH',
            url: location,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(part.length),
              'content-range': `${start}-${start + part.length - 1}`,
            },
            body: part,
          },
          scopes,
          [202],
        );
        res.body.resume();
        return this.#location(res, location);
      } catch (err) {
        const retriable =
          err instanceof RegistryNetworkError ||
          (err instanceof RegistryHttpError && (err.status === 416 || err.status >= 500));
        if (!retriable || attempt >= this.#retries) throw err;
        await sleep(250 * 2 ** attempt);
        const received = await this.#uploadOffset(location, scopes);
        if (received < offset || received > offset + chunk.length) throw err;
        sent = received - offset;
        if (sent === chunk.length) return location;
      }
    }
  }

  /** Bytes the registry holds for an upload session (`GET` its status, `Range: 0-<last>`). */
  async #uploadOffset(location: string, scopes: string[]): Promise<number> {
    const res = await this.#ok({ method: 'GET', url: location }, scopes, [204, 200]);
    res.body.resume();
    const range = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.range ?? '');
    return range?.[1] !== undefined ? Number(range[1]) + 1 : 0;
  }

  async #finish(
    location: string,
    digest: string,
    body: Uint8Array | (() => Readable) | Readable,
    scopes: string[],
    size?: number,
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const length = body instanceof Uint8Array ? body.byteLength : size;
    const res = await this.#ok(
      {
        method: 'PUT',
        url: url.href,
        headers: {
          'content-type': 'application/octet-stream',
          ...(length !== undefined ? { 'content-length': String(length) } : {}),
        },
        body,
      },
      scopes,
      [201, 204],
    );
    res.body.resume();
  }

  /** All tags of a repository, following `Link` pagination. @throws {RegistryNotFoundError} */
  async listTags(name: string): Promise<string[]> {
    return this.#paged(`${this.url}/v2/${name}/tags/list?n=${this.#pageSize}`, 'tags', [
      repositoryScope(name, ['pull']),
    ]);
  }

  /** All repositories of `/v2/_catalog`, following `Link` pagination. */
  async catalog(): Promise<string[]> {
    return this.#paged(`${this.url}/v2/_catalog?n=${this.#pageSize}`, 'repositories', [
      'registry:catalog:*',
    ]);
  }

  /**
   * Epoch's control API: the settings of repository `name`, whether or not it holds anything
   * yet (`GET /api/repository-settings/<name>`).
   *
   * @throws {RegistryNotFoundError} when the registry has no such API (not Epoch, or older)
   * @throws {RegistryUnauthorizedError} or {@link RegistryDeniedError} when it refuses the caller
   * @throws {RegistryProtocolError} when what answers there is not Epoch's control API
   */
  async repositorySettings(name: string): Promise<RepositorySettingsDocument> {
    const url = `${this.url}${repositorySettingsPath(name)}`;
    const res = await this.#api({ method: 'GET', url });
    return parseRepositorySettings(await readText(res.body, API_ANSWER_LIMIT), url);
  }

  /**
   * Sets the settings of repository `name` (`PUT /api/repository-settings/<name>`; push rights
   * on it needed) and returns them as the server now has them. Errors as
   * {@link repositorySettings}; a value the server refuses is a {@link RegistryHttpError} (400)
   * carrying its message.
   */
  async setRepositorySettings(
    name: string,
    change: { defaultFormat: string },
  ): Promise<RepositorySettingsDocument> {
    const url = `${this.url}${repositorySettingsPath(name)}`;
    const res = await this.#api({
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/json', ...(await this.#localCsrf()) },
      body: JSON.stringify(change),
    });
    return parseRepositorySettings(await readText(res.body, API_ANSWER_LIMIT), url);
  }

  /** A control API call: credentials up front, 200 or the typed error for the status. */
  async #api(req: HttpRequest): Promise<HttpResponse> {
    const authorization = this.#auth.direct();
    const res = await this.#transport.send({
      ...req,
      headers: {
        accept: 'application/json',
        ...req.headers,
        ...(authorization ? { authorization } : {}),
      },
    });
    if (res.status === 200) return res;
    // The control API's errors are `{"error", "code"}`; anything else still yields the status.
    let entries: { code: string; message: string }[] = [];
    try {
      const doc = JSON.parse(await readText(res.body)) as { error?: unknown; code?: unknown };
      if (typeof doc.code === 'string') {
        entries = [{ code: doc.code, message: typeof doc.error === 'string' ? doc.error : '' }];
      }
    } catch {
      // Not JSON: a registry without the control API, or a proxy's page.
    }
    throw httpError(req.method, req.url, res.status, entries);
  }

  /**
   * Without credentials, an Epoch server still in its out-of-the-box mode lets a client on its
   * own machine administer it, but wants the CSRF value its `/auth/me` hands that client with
   * every change (so a web page cannot make a browser there do it). Empty when there is none.
   */
  async #localCsrf(): Promise<Record<string, string>> {
    if (this.#auth.direct() !== undefined) return {};
    try {
      const res = await this.#transport.send({ method: 'GET', url: `${this.url}/auth/me` });
      const text = await readText(res.body, API_ANSWER_LIMIT);
      if (res.status !== 200) return {};
      const { csrfToken } = JSON.parse(text) as { csrfToken?: unknown };
      return typeof csrfToken === 'string' ? { 'x-csrf-token': csrfToken } : {};
    } catch {
      return {};
    }
  }

  async #paged(first: string, field: string, scopes: string[]): Promise<string[]> {
    const out: string[] = [];
    let url: string | undefined = first;
    while (url) {
      const res = await this.#ok({ method: 'GET', url }, scopes, [200]);
      const doc = JSON.parse(await readText(res.body, MANIFEST_LIMIT)) as Record<string, unknown>;
      const list = doc[field];
      if (Array.isArray(list)) out.push(...list.filter((x): x is string => typeof x === 'string'));
      url = nextLink(res.headers.link, url);
    }
    return out;
  }

  #path(name: string, kind: 'manifests' | 'blobs', reference: string): string {
    return `${this.url}/v2/${name}/${kind}/${reference}`;
  }

  #location(res: HttpResponse, fallback?: string): string {
    const location = res.headers.location;
    if (!location) {
      if (fallback) return fallback;
      throw new RegistryProtocolError(`${res.url}: ${res.status} without a Location header`);
    }
    return new URL(location, res.url).href;
  }

  /** Sends with authentication, and throws the typed error unless the status is one of `ok`. */
  async #ok(req: HttpRequest, scopes: string[], ok: number[]): Promise<HttpResponse> {
    const res = await this.#exchange(req, scopes);
    if (!ok.includes(res.status)) throw await errorFor(req.method, res);
    return res;
  }

  async #exchange(req: HttpRequest, scopes: string[]): Promise<HttpResponse> {
    const before = this.#auth.authorization(scopes);
    const res = await this.#transport.send(withAuth(req, before));
    if (res.status !== 401) return res;
    const replayable = !(req.body instanceof Readable);
    const header = replayable
      ? await this.#auth.answer(res.headers['www-authenticate'], scopes)
      : undefined;
    if (header === undefined || header === before) {
      const err = await errorFor(req.method, res);
      throw err instanceof RegistryUnauthorizedError
        ? err
        : new RegistryUnauthorizedError(req.method, req.url, 401, []);
    }
    res.body.resume();
    return this.#transport.send(withAuth(req, header));
  }
}

/** The `mediaType` field of a manifest body, for registries that send no Content-Type. */
function declaredType(bytes: Buffer): string {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    return typeof doc.mediaType === 'string' ? doc.mediaType : '';
  } catch {
    return '';
  }
}

function withAuth(req: HttpRequest, authorization: string | undefined): HttpRequest {
  if (!authorization) return req;
  return { ...req, headers: { ...req.headers, authorization } };
}

function acceptHeader(accept: readonly string[]): Record<string, string> {
  return { accept: accept.join(', ') };
}

function info(res: HttpResponse): ContentInfo {
  const length = res.headers['content-length'];
  const digest = res.headers['docker-content-digest'];
  return {
    digest: digest?.includes(':') ? (digest as Digest) : undefined,
    mediaType: res.headers['content-type']?.split(';')[0]?.trim(),
    size: length !== undefined ? Number(length) : undefined,
  };
}
