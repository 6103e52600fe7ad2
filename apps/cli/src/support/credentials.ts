import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Credentials } from '@epoch/registry/client';

/** What `epoch login` saved for one registry host. */
export type SavedLogin = { token: string } | { username: string; password: string };

interface CredentialsFile {
  registries: Record<string, SavedLogin>;
}

/** `$XDG_CONFIG_HOME/epoch` or `~/.config/epoch` (`$HOME` is honoured, for tests). */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'epoch');
}

function credentialsPath(env: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'credentials.json');
}

async function load(env: NodeJS.ProcessEnv): Promise<CredentialsFile> {
  try {
    const doc = JSON.parse(await readFile(credentialsPath(env), 'utf8')) as CredentialsFile;
    return { registries: doc.registries ?? {} };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { registries: {} };
    throw err;
  }
}

async function save(env: NodeJS.ProcessEnv, doc: CredentialsFile): Promise<void> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = credentialsPath(env);
  // Written under a temporary name with mode 0600 first, so the secret is never readable by
  // others, not even for a moment.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** The saved login for a registry host, if any. */
export async function savedLogin(
  host: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  return (await load(env)).registries[host];
}

/** Saves a login for a registry host (file mode 0600). */
export async function saveLogin(
  host: string,
  login: SavedLogin,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const doc = await load(env);
  doc.registries[host] = login;
  await save(env, doc);
}

/** Forgets a registry host's login; returns whether there was one. */
export async function removeLogin(
  host: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const doc = await load(env);
  if (!(host in doc.registries)) return false;
  delete doc.registries[host];
  await save(env, doc);
  return true;
}
