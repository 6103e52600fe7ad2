import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig, type RunningServer, startServer } from '@epoch/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('epoch token (on the server host)', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let server: RunningServer;
  const epoch = (...args: string[]) =>
    exec(process.execPath, [main, 'token', ...args, '--data-dir', dataDir], { env });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'epoch-token-cli-'));
    await writeFile(join(dataDir, 's3.env'), '');
    env = {
      ...process.env,
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: dataDir,
      EPOCH_LOG_LEVEL: 'silent',
      EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
    };
    server = await startServer(loadConfig(env), { env });
  });
  afterAll(async () => {
    await server.close(1000);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('mints an admin token printed once, lists it without the secret, and revokes it', async () => {
    const created = await epoch('create', '--name', 'first-admin', '--scope', 'admin');
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(created.stderr).toContain('shown only now');

    const auth = { Authorization: `Bearer ${secret}` };
    expect((await fetch(`${server.url}/api/tokens`, { headers: auth })).status).toBe(200);

    const listed = await epoch('list', '--json');
    expect(listed.stdout).not.toContain(secret);
    const [row] = JSON.parse(listed.stdout) as {
      id: number;
      name: string;
      scopes: string[];
      createdBy: string;
    }[];
    expect(row).toMatchObject({ name: 'first-admin', scopes: ['admin'] });
    expect(row?.createdBy).toMatch(/^cli:/);

    await epoch('revoke', String(row?.id));
    await expect
      .poll(async () => (await fetch(`${server.url}/api/tokens`, { headers: auth })).status, {
        timeout: 5000,
      })
      .toBe(401);
    await expect(epoch('revoke', String(row?.id))).rejects.toMatchObject({ code: 2 });
  });

  it('creates scoped, expiring tokens and rejects bad input', async () => {
    const { stdout } = await epoch(
      'create',
      '--name',
      'ci',
      '--scope',
      'push',
      '--repo',
      'team-a/*',
      '--expires',
      '30d',
      '--json',
    );
    const token = JSON.parse(stdout) as {
      token: string;
      scopes: string[];
      repoPattern: string;
      expiresAt: string;
    };
    expect(token).toMatchObject({ scopes: ['push'], repoPattern: 'team-a/*' });
    expect(new Date(token.expiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    await expect(epoch('create', '--name', 'x', '--scope', 'root')).rejects.toMatchObject({
      code: 64,
    });
    await expect(epoch('create', '--name', 'x', '--repo', 'Bad Pattern')).rejects.toMatchObject({
      code: 64,
    });
    // The rules the control API applies hold here too (they live in @epoch/store).
    await expect(epoch('create', '--name', '<script>')).rejects.toMatchObject({
      code: 64,
      stderr: expect.stringContaining('--name: name is required'),
    });
    await expect(epoch('create', '--name', 'x', '--expires', '4000d')).rejects.toMatchObject({
      code: 64,
      stderr: expect.stringContaining('within 10 years'),
    });
    await expect(epoch('create', '--name', 'x', '--expires', 'soon')).rejects.toMatchObject({
      code: 1,
    });
  });
});
