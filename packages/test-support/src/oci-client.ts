import { createHash } from 'node:crypto';
import { request } from 'node:http';

// Spelled out rather than imported from `@epoch/oci`: this package depends on no `@epoch/*`
// package (README), and a test client should not share the constants of the code it tests.
const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

const digestOf = (content: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(content).digest('hex')}`;

/** Minimal raw OCI calls for tests: every response is returned as-is so tests can check it. */
export class RawClient {
  /** `headers` go on every request (e.g. `Authorization`); a request's own headers win. */
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(this.headers);
    for (const [k, v] of new Headers(init.headers)) headers.set(k, v);
    return fetch(`${this.base}${path}`, { redirect: 'manual', ...init, headers });
  }

  /** Monolithic upload (POST ?digest=), expecting success. */
  async pushBlob(name: string, content: Uint8Array | string): Promise<string> {
    const digest = digestOf(content);
    const res = await this.fetch(`/v2/${name}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: content,
    });
    if (res.status !== 201) throw new Error(`blob push failed: ${res.status} ${await res.text()}`);
    return digest;
  }

  /** Pushes a manifest over the given blobs and returns its bytes and digest. */
  async pushImage(
    name: string,
    tag: string,
    options: { layers?: string[]; extra?: Record<string, unknown> } = {},
  ): Promise<{ digest: string; bytes: string }> {
    const config = await this.pushBlob(name, '{}');
    const layers = [];
    for (const content of options.layers ?? ['layer-1']) {
      layers.push({
        mediaType: MediaTypes.ociLayerGzip,
        digest: await this.pushBlob(name, content),
        size: Buffer.byteLength(content),
      });
    }
    const bytes = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config, size: 2 },
      layers,
      ...options.extra,
    });
    const res = await this.fetch(`/v2/${name}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: bytes,
    });
    if (res.status !== 201)
      throw new Error(`manifest push failed: ${res.status} ${await res.text()}`);
    return { digest: digestOf(bytes), bytes };
  }
}

/** Reads an OCI error body and returns its first code. */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code?: string }[] };
  return body.errors?.[0]?.code;
}

/** The JSON shapes the `/v2/` API answers with, loosely typed for assertions. */
export interface V2Json {
  name?: string;
  tags: string[];
  repositories: string[];
  schemaVersion?: number;
  manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
}

export async function json(res: Response): Promise<V2Json> {
  return (await res.json()) as V2Json;
}

/**
 * Sends a request with its path exactly as written. `fetch` normalises `..` and `%2e%2e` away
 * before sending, which would hide the traversal attempts the server must refuse itself.
 */
export function verbatimFetch(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<Response> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: init.method ?? 'GET',
        path,
        headers: init.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === 'string') headers.set(k, v);
          }
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers }));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}
