import { assertRepositoryName, assertTag } from '@epoch/oci';
import { ApiProblem } from './errors.js';

/** A repository name from the path (decoded by the dispatcher), else 400 `NAME_INVALID`. */
export function repositoryParam(name: string | undefined = ''): string {
  try {
    assertRepositoryName(name);
  } catch (err) {
    throw new ApiProblem(400, 'NAME_INVALID', (err as Error).message);
  }
  return name;
}

/** A tag from the path, else 400 `TAG_INVALID`. */
export function tagParam(tag: string | undefined = ''): string {
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
