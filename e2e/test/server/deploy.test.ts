import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_ENV_VARS } from '@epoch/server';
import {
  dockerfileFinalStage,
  ROOT as root,
  unitDirectives,
} from '@epoch/test-support/deploy-files';
import { describe, expect, it } from 'vitest';
import { startListening, stopChild } from '../support/epoch-server.js';

// The deploy files' command lines run the built CLI; the checks of the files themselves, and of
// the nginx vhost, are in apps/server/test/deploy.test.ts.
const known = new Set<string>(SERVER_ENV_VARS);

/**
 * Runs a command line the way a deploy file would, with its environment, and checks that the
 * server it starts becomes ready. Only what must differ in a test (a free port, a scratch data
 * dir) is set on top of what the deploy file says.
 */
async function expectReady(argv: string[], env: Record<string, string>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'epoch-deploy-'));
  await writeFile(join(dir, 's3.env'), '');
  const { child, url } = await startListening(
    argv,
    {
      PATH: process.env.PATH ?? '',
      HOME: tmpdir(),
      ...env,
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: dir,
      EPOCH_S3_ENV_FILE: join(dir, 's3.env'),
    },
    { cwd: root },
  );
  try {
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  } finally {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  }
}

describe('systemd unit', () => {
  it('starts the server as ExecStart does and becomes ready', async () => {
    const [execStart = ''] = await unitDirectives('ExecStart');
    const argv = execStart
      .split(' ')
      .map((a) => a.replace('/opt/epoch/', root).replace(/^\/usr\/bin\/node$/, process.execPath));
    expect(argv.slice(1)).toEqual([join(root, 'apps/cli/dist/main.js'), 'serve']);
    const env = Object.fromEntries(
      (await unitDirectives('Environment')).map((e) => e.split('=') as [string, string]),
    );
    await expectReady(argv, env);
  });
});

describe('Dockerfile', () => {
  it('starts the server as its CMD does (with its ENV) and becomes ready', async () => {
    const stage = await dockerfileFinalStage();
    const envLine = /^ENV (.*)$/m.exec(stage)?.[1] ?? '';
    const env = Object.fromEntries(
      [...envLine.matchAll(/([A-Z_]+)=(\S+)/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    for (const name of Object.keys(env))
      if (name !== 'NODE_ENV') expect(known, name).toContain(name);
    expect(env.EPOCH_ADDR).toBe(':4300');
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(stage)?.[1] ?? '[]') as string[];
    expect(cmd).toEqual(['node', '/app/dist/main.js', 'serve']);
    // In the image /app is the deployed @epoch/cli package, i.e. apps/cli here.
    const argv = [
      process.execPath,
      cmd[1]?.replace('/app/', join(root, 'apps/cli/')) ?? '',
      ...cmd.slice(2),
    ];
    await expectReady(argv, env);
  });
});
