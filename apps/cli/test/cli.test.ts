import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('epoch binary', () => {
  it('prints its version', async () => {
    const { stdout } = await exec(process.execPath, [main, 'version']);
    expect(stdout).toMatch(/^epoch \d+\.\d+\.\d+\n$/);
  });

  it('lists its commands in --help', async () => {
    const { stdout } = await exec(process.execPath, [main, '--help']);
    expect(stdout).toContain('serve');
    expect(stdout).toContain('version');
  });

  it('has --help with examples for every command', async () => {
    const commands = ['serve', 'reindex', 'push', 'pull', 'get', 'ls', 'inspect', 'tag', 'rm'];
    commands.push('copy', 'login', 'logout');
    for (const command of commands) {
      const { stdout } = await exec(process.execPath, [main, command, '--help']);
      expect(stdout, command).toContain('Examples:');
    }
    for (const sub of ['show', 'set-default']) {
      const { stdout } = await exec(process.execPath, [main, 'repo', sub, '--help']);
      expect(stdout, `repo ${sub}`).toContain('Examples:');
    }
  });

  it('exits non-zero on an unknown command', async () => {
    await expect(exec(process.execPath, [main, 'no-such-command'])).rejects.toMatchObject({
      code: 64,
    });
  });
});
