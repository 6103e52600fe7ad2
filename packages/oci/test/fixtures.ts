import { type Descriptor, type Digest, digestOf } from '../src/index.js';

/** A descriptor for made-up content `seed`, with the digest and size of that content. */
export function blob(
  mediaType: string,
  seed: string,
  extra: Partial<Omit<Descriptor, 'mediaType'>> = {},
): Descriptor {
  return {
    mediaType,
    digest: digestOf(seed),
    size: new TextEncoder().encode(seed).length,
    ...extra,
  };
}

/** A descriptor with an explicit size, for size arithmetic. */
export function sized(mediaType: string, seed: string, size: number, title?: string): Descriptor {
  const descriptor: Descriptor = { mediaType, digest: digestOf(seed), size };
  if (title !== undefined) descriptor.annotations = { 'org.opencontainers.image.title': title };
  return descriptor;
}

export const HEX_A = `sha256:${'a'.repeat(64)}` as Digest;

/** Serialises a document as manifest bytes. */
export function bytesOf(doc: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}
