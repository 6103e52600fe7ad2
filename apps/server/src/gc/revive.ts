import { digestOf, type ParsedManifest } from '@epoch/oci';
import type { Store } from '@epoch/store';

/**
 * Before a manifest PUT looks for its references in storage: tells the collector that this
 * push needs them (the manifest itself, its config and layers, or an index's children, and
 * its tags), so a collection cannot delete them after the push has seen them.
 */
export function reviveForPush(
  index: Store,
  repository: string,
  bytes: Uint8Array,
  parsed: ParsedManifest,
  tags: readonly string[],
): Promise<void> {
  const digests: string[] = [digestOf(bytes)];
  if (parsed.kind === 'index') digests.push(...parsed.manifest.manifests.map((d) => d.digest));
  else digests.push(parsed.manifest.config.digest, ...parsed.manifest.layers.map((d) => d.digest));
  return index.gc.reviveForPush(repository, digests, tags);
}
