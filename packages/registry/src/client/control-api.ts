import { RegistryProtocolError } from './errors.js';

/**
 * The route of a repository's settings in Epoch's control API: the server declares it with this
 * constant in its route table and the client builds its URL from it, so the two cannot drift.
 * (The dashboard, which bundles no server package, spells it in its own `api/` module.)
 */
export const REPOSITORY_SETTINGS_ROUTE = '/api/repository-settings/<name>' as const;

/** The path of `name`'s settings (slashes kept: the name runs to the end of the path). */
export function repositorySettingsPath(name: string): string {
  return REPOSITORY_SETTINGS_ROUTE.replace(
    '<name>',
    name.split('/').map(encodeURIComponent).join('/'),
  );
}

/**
 * A repository's settings as an Epoch server answers them. `defaultFormat` is kept as the server
 * sent it: a newer server may name a format this client does not know, which its caller must
 * refuse rather than guess (`isSnapshotFormat` of `@epoch/oci`).
 */
export interface RepositorySettingsDocument {
  name: string;
  defaultFormat: string;
  /** When someone last set them; absent while nobody has. */
  updatedAt?: string;
  updatedBy?: string;
  /** Whether the caller may change them. */
  writable?: boolean;
}

/**
 * Parses a settings answer. Anything but a JSON object with a string `defaultFormat` is not
 * Epoch's answer (a web page served at that path by something else, say).
 *
 * @throws {RegistryProtocolError}
 */
export function parseRepositorySettings(text: string, url: string): RepositorySettingsDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const d = doc as Partial<Record<keyof RepositorySettingsDocument, unknown>> | undefined;
  if (typeof d !== 'object' || d === null || typeof d.defaultFormat !== 'string') {
    throw new RegistryProtocolError(`${url}: not an Epoch repository settings answer`);
  }
  return {
    name: typeof d.name === 'string' ? d.name : '',
    defaultFormat: d.defaultFormat,
    ...(typeof d.updatedAt === 'string' ? { updatedAt: d.updatedAt } : {}),
    ...(typeof d.updatedBy === 'string' ? { updatedBy: d.updatedBy } : {}),
    ...(typeof d.writable === 'boolean' ? { writable: d.writable } : {}),
  };
}
