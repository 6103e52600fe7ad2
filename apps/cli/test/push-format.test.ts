import {
  type RegistryClient,
  RegistryDeniedError,
  RegistryHttpError,
  RegistryNetworkError,
  RegistryNotFoundError,
  RegistryProtocolError,
  RegistryUnauthorizedError,
  type RepositorySettingsDocument,
} from '@epoch/registry/client';
import { describe, expect, it } from 'vitest';
import { choosePushFormat } from '../src/snapshot/push-format.js';
import { CliError } from '../src/support/errors.js';

const URL = 'http://127.0.0.1:4300';
const SETTINGS = `${URL}/api/repository-settings/team/vm`;

/** A client whose settings call answers `answer` (or throws it), counting the calls. */
function registry(answer: RepositorySettingsDocument | Error) {
  const calls: string[] = [];
  const client = {
    url: URL,
    host: '127.0.0.1:4300',
    async repositorySettings(name: string) {
      calls.push(name);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  } as unknown as RegistryClient;
  return { client, calls };
}

const set = { name: 'team/vm', defaultFormat: 'incremental', updatedAt: '2030-01-01T00:00:00Z' };

describe('the format of epoch push', () => {
  it('takes a flag without asking the registry', async () => {
    const { client, calls } = registry(set);
    expect(await choosePushFormat(client, 'team/vm', { incremental: true })).toEqual({
      format: 'incremental',
      reason: '--incremental',
    });
    expect(await choosePushFormat(client, 'team/vm', { incremental: false })).toEqual({
      format: 'full',
      reason: '--no-incremental',
    });
    expect(calls).toEqual([]);
  });

  it("follows the repository's default, or the registry default when none is set", async () => {
    const { client, calls } = registry(set);
    expect(await choosePushFormat(client, 'team/vm', {})).toEqual({
      format: 'incremental',
      reason: "the repository's default",
    });
    expect(calls).toEqual(['team/vm']);
    const unset = registry({ name: 'team/vm', defaultFormat: 'full' });
    expect(await choosePushFormat(unset.client, 'team/vm', {})).toEqual({
      format: 'full',
      reason: 'no repository default set',
    });
  });

  it('refuses a format it does not know instead of pushing another one', async () => {
    const { client } = registry({ name: 'team/vm', defaultFormat: 'zstd-chunked' });
    const err = await choosePushFormat(client, 'team/vm', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toContain('"zstd-chunked", which this epoch does not know');
  });

  it('pushes the full format, quietly, where the registry has no Epoch /api/', async () => {
    for (const answer of [
      new RegistryNotFoundError('GET', SETTINGS, 404),
      new RegistryProtocolError(`${SETTINGS}: not an Epoch repository settings answer`),
    ]) {
      expect(await choosePushFormat(registry(answer).client, 'team/vm', {})).toEqual({
        format: 'full',
        reason: 'no Epoch /api/ at 127.0.0.1:4300',
      });
    }
  });

  it('pushes the full format with a warning when the registry refuses to say', async () => {
    for (const answer of [
      new RegistryUnauthorizedError('GET', SETTINGS, 401, [{ code: 'UNAUTHORIZED' }]),
      new RegistryDeniedError('GET', SETTINGS, 403, [{ code: 'DENIED' }]),
    ]) {
      const choice = await choosePushFormat(registry(answer).client, 'team/vm', {});
      expect(choice).toMatchObject({ format: 'full', reason: 'repository default unreadable' });
      expect(choice.warning).toContain(
        `cannot read the default format of team/vm from ${URL}/api/`,
      );
      expect(choice.warning).toContain(String(answer.status));
      expect(choice.warning).toContain('choose with --incremental or --no-incremental');
    }
  });

  it('stops before anything is sent when the registry fails', async () => {
    const failing = new RegistryHttpError('GET', SETTINGS, 503, [{ code: 'UNAVAILABLE' }]);
    const err = await choosePushFormat(registry(failing).client, 'team/vm', {}).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).toContain('Nothing was pushed');
    // Unreachable: the network error itself, which `epoch` explains with EPOCH_SERVER.
    const down = new RegistryNetworkError('GET', SETTINGS, new Error('ECONNREFUSED'));
    await expect(choosePushFormat(registry(down).client, 'team/vm', {})).rejects.toBe(down);
  });

  it('allows --base only in the incremental format', async () => {
    const base = ['team/other:v1'];
    expect((await choosePushFormat(registry(set).client, 'team/vm', { base })).format).toBe(
      'incremental',
    );
    expect(
      (await choosePushFormat(registry(set).client, 'team/vm', { incremental: true, base })).format,
    ).toBe('incremental');
    for (const [flags, answer] of [
      [{ incremental: false, base }, set],
      [{ base }, { name: 'team/vm', defaultFormat: 'full' }],
    ] as const) {
      const err = await choosePushFormat(registry(answer).client, 'team/vm', flags).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(64);
      expect((err as Error).message).toContain('--base needs the incremental format');
    }
  });
});
