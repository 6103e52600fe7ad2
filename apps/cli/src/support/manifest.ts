import { type ImageIndex, type ParsedManifest, parseManifest, referenceTarget } from '@epoch/oci';
import type { FetchedManifest } from '@epoch/registry/client';
import { CliError, ExitCode, notFound } from './errors.js';
import type { Target } from './target.js';

/** A fetched and parsed manifest. */
export interface ResolvedManifest extends FetchedManifest {
  parsed: ParsedManifest;
}

/** Fetches and parses the manifest a target names. Not found → exit code 2, naming the server. */
export async function fetchManifest(target: Target, reference?: string): Promise<ResolvedManifest> {
  const ref = reference ?? referenceTarget(target.ref);
  let fetched: FetchedManifest;
  try {
    fetched = await target.client.getManifest(target.ref.name, ref);
  } catch (err) {
    notFound(
      err,
      reference ? `${target.ref.name}@${reference}` : target.display,
      target.client.url,
    );
  }
  return { ...fetched, parsed: parseManifest(fetched.bytes, fetched.mediaType) };
}

/** `os/arch[/variant]`, default `linux/amd64`. */
export function parsePlatform(value: string | undefined): {
  os: string;
  architecture: string;
  variant?: string;
} {
  const [os, architecture, variant] = (value ?? 'linux/amd64').split('/');
  if (!os || !architecture)
    throw new CliError(`invalid platform ${value}: use os/arch[/variant]`, ExitCode.usage);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/**
 * Follows an image index to its child for a platform (default linux/amd64; a single child
 * without a platform is taken as it is); a manifest is returned unchanged.
 */
export async function resolvePlatform(
  target: Target,
  manifest: ResolvedManifest,
  platform?: string,
): Promise<ResolvedManifest> {
  if (manifest.parsed.kind !== 'index') return manifest;
  const want = parsePlatform(platform);
  const index = manifest.parsed.manifest as ImageIndex;
  const match =
    index.manifests.find(
      (d) =>
        d.platform?.os === want.os &&
        d.platform.architecture === want.architecture &&
        (want.variant === undefined || d.platform.variant === want.variant),
    ) ??
    (index.manifests.length === 1 && !index.manifests[0]?.platform
      ? index.manifests[0]
      : undefined);
  if (!match) {
    const have = index.manifests
      .map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : '?'))
      .join(', ');
    throw new CliError(
      `${target.display} has no ${want.os}/${want.architecture} manifest (it has: ${have || 'none'}); use --platform`,
      ExitCode.notFound,
    );
  }
  return fetchManifest(target, match.digest);
}
