import { isSnapshotFormat, SNAPSHOT_FORMATS } from '@epoch/oci';
import { REPOSITORY_SETTINGS_ROUTE } from '@epoch/registry';
import type { RepositorySettings, RepositorySettingsChange } from '@epoch/store';
import type { Context } from 'hono';
import { audit } from '../audit.js';
import type { Env } from '../http/env.js';
import { readSmallBody } from '../http/request.js';
import { type HandlerMap, routeAllows } from '../routes/dispatch.js';
import { ApiProblem } from './errors.js';
import type { ApiHandler, ApiServices } from './handler.js';
import { repositoryParam } from './params.js';

const ROUTE = REPOSITORY_SETTINGS_ROUTE;

/** A settings document is one short field: anything near this is not one. */
const MAX_SETTINGS_BODY = 4096;

/** The fields a `PUT` may carry: the whole settings document, nothing else. */
const FIELDS = new Set(['defaultFormat']);

/**
 * `GET /api/repository-settings/<name>`: what was chosen for a repository, by name, whether or
 * not it holds anything yet (the CLI asks before a push, the first one included).
 * `PUT` with `{"defaultFormat": "full"|"incremental"}` replaces them and records an audit event.
 * Who may do which is the route table's rule (`repositorySettings` in `routes/table.ts`).
 */
export function repositorySettingsHandlers(services: ApiServices): HandlerMap {
  return {
    [ROUTE]: { GET: getSettings(services), PUT: putSettings(services) },
  };
}

/**
 * The JSON of a repository's settings, for this caller: `writable` says whether it may change
 * them (the dashboard shows its control only then), computed from the very rule the `PUT` is
 * checked against.
 */
function settingsBody(c: Context<Env>, name: string, settings: RepositorySettings) {
  return {
    name,
    ...settings,
    writable: routeAllows(c.var.principal, ROUTE, 'PUT', { name }),
  };
}

function getSettings({ index }: ApiServices): ApiHandler {
  return async (c, params) => {
    const name = repositoryParam(params.name);
    return c.json(settingsBody(c, name, await index.repositorySettings.get(name)));
  };
}

function putSettings({ index }: ApiServices): ApiHandler {
  return async (c, params) => {
    const name = repositoryParam(params.name);
    const change = await readChange(c);
    const { before, after } = await index.repositorySettings.set(
      name,
      change,
      c.var.principal.name,
    );
    await audit(c, index, {
      action: 'repository.settings',
      repository: name,
      detail: { defaultFormat: after.defaultFormat, previous: before.defaultFormat },
    });
    return c.json(settingsBody(c, name, after));
  };
}

/**
 * The body of a `PUT`, checked strictly before anything is written: JSON by its Content-Type, at
 * most {@link MAX_SETTINGS_BODY} bytes (413), one object with exactly the known fields (a
 * misspelt field is an error rather than a setting silently left alone), and a known format.
 */
async function readChange(c: Context<Env>): Promise<RepositorySettingsChange> {
  const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ApiProblem(
      415,
      'UNSUPPORTED',
      'send the settings as JSON, with Content-Type: application/json',
    );
  }
  const bytes = await readSmallBody(c, MAX_SETTINGS_BODY, 'repository settings');
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad('the body must be JSON: {"defaultFormat": "full" or "incremental"}');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad('the body must be a JSON object: {"defaultFormat": "full" or "incremental"}');
  }
  const unknown = Object.keys(body).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0) {
    throw bad(`unknown field ${JSON.stringify(unknown[0])}: the settings are {"defaultFormat"}`);
  }
  const { defaultFormat } = body as { defaultFormat?: unknown };
  if (!isSnapshotFormat(defaultFormat)) {
    throw bad(`defaultFormat must be one of ${SNAPSHOT_FORMATS.join(', ')}`);
  }
  return { defaultFormat };
}

function bad(message: string): ApiProblem {
  return new ApiProblem(400, 'BAD_SETTINGS', message);
}
