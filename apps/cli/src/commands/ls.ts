import { compareBytes } from '@epoch/oci';
import type { Command } from 'commander';
import { notFound } from '../support/errors.js';
import { clientFor, resolveTarget, serverUrl } from '../support/target.js';

/** `epoch ls [NAME]`: repositories, or the tags of one. */
export function registerLs(program: Command): void {
  program
    .command('ls')
    .alias('list')
    .description('list repositories, or the tags of one repository')
    .argument('[name]', 'repository (optionally HOST[:PORT]/NAME)')
    .option('--json', 'print a JSON array')
    .addHelpText(
      'after',
      `
Examples:
  epoch ls
  epoch ls myvm --json
  epoch ls 127.0.0.1:5000/library/alpine`,
    )
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      const target = name
        ? await resolveTarget(name, process.env, { defaultTag: null })
        : undefined;
      const client = target?.client ?? (await clientFor(serverUrl()));
      try {
        let items: string[];
        try {
          items = target ? await client.listTags(target.ref.name) : await client.catalog();
        } catch (err) {
          notFound(err, target ? `repository ${target.ref.name}` : 'the catalog', client.url);
        }
        items.sort(compareBytes);
        process.stdout.write(
          opts.json ? `${JSON.stringify(items)}\n` : items.map((i) => `${i}\n`).join(''),
        );
      } finally {
        await client.close();
      }
    });
}
