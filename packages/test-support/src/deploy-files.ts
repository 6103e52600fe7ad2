import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: `/opt/epoch/` in the systemd unit; its `apps/cli` is `/app` in the image. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The repository's `deploy/` folder, as shipped. */
export const DEPLOY = join(ROOT, 'deploy');

/** The values of the shipped systemd unit's `name=` lines, in order. */
export async function unitDirectives(name: string): Promise<string[]> {
  return (await readFile(join(DEPLOY, 'systemd/epoch.service'), 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));
}

/** The shipped Dockerfile's final stage (after its last `FROM`), continuation lines joined. */
export async function dockerfileFinalStage(): Promise<string> {
  const text = (await readFile(join(DEPLOY, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  return stages[stages.length - 1] ?? '';
}
