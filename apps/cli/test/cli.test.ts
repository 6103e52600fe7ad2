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

  it('lists every command in --help, however help is asked for', async () => {
    // Commands are loaded on demand: one named after an option must not hide the others.
    for (const args of [['--help'], ['--help', 'push'], ['help']]) {
      const { stdout } = await exec(process.execPath, [main, ...args]);
      for (const command of ['serve', 'push', 'ls|list', 'copy|cp', 'token', 'gc', 'version']) {
        expect(stdout, `${args.join(' ')}: ${command}`).toContain(command);
      }
    }
  });

  it('runs a command named by its alias', async () => {
    for (const alias of ['list', 'cp']) {
      const { stdout } = await exec(process.execPath, [main, alias, '--help']);
      expect(stdout, alias).toContain('Examples:');
    }
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
