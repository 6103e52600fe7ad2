import { assertRepositoryName, assertTag } from '@epoch/oci';
import { ApiProblem } from './errors.js';

/**
 * Path parameters of `/api/`. Repository names contain slashes; they may be sent plain
 * (`team/live`) or percent-encoded (`team%2Flive`). The raw path is matched first and each part
 * decoded after, so an encoded slash stays inside the name.
 */
export function decodePart(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiProblem(400, 'BAD_PATH', 'malformed percent-encoding in the path');
  }
}

export function repositoryParam(raw: string): string {
  const name = decodePart(raw);
  try {
    assertRepositoryName(name);
  } catch (err) {
    throw new ApiProblem(400, 'NAME_INVALID', (err as Error).message);
  }
  return name;
}

export function tagParam(raw: string): string {
  const tag = decodePart(raw);
  try {
    assertTag(tag);
  } catch (err) {
    throw new ApiProblem(400, 'TAG_INVALID', (err as Error).message);
  }
  return tag;
}

/** A `limit` query parameter (1..1000), or `undefined`. */
export function limitParam(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 1000) {
    throw new ApiProblem(400, 'BAD_LIMIT', 'limit must be an integer from 1 to 1000');
  }
  return Number(value);
}
