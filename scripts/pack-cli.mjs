// Packs @epoch/cli into one tarball that installs with plain npm on a machine without this
// checkout: `npm install -g ./epoch-cli-<version>.tgz`.
//
// The CLI's workspace dependencies (@epoch/oci, registry, store, server, and the dashboard's
// build in @epoch/web) are not on a registry, so they travel inside the tarball as
// bundleDependencies: each copied as it would be published (its package.json and `files`), with
// `workspace:` ranges replaced by the version bundled beside it. Their third-party dependencies
// are hoisted into the CLI's own `dependencies`, so npm installs them next to the bundled
// packages, where Node's resolution finds them. Prints the tarball's path on stdout.
//
//   node scripts/pack-cli.mjs [--out DIR]     (default DIR: .pack/ in the checkout)
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build, root } from './lib/build.mjs';

const outIndex = process.argv.indexOf('--out');
const outDir = resolve(outIndex > 0 ? (process.argv[outIndex + 1] ?? '') : join(root, '.pack'));

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** Every workspace package by name: its directory and package.json. */
const workspace = new Map();
for (const group of ['packages', 'apps']) {
  for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
    const file = join(root, group, entry.name, 'package.json');
    if (!entry.isDirectory() || !existsSync(file)) continue;
    const pkg = readJson(file);
    workspace.set(pkg.name, { dir: join(root, group, entry.name), pkg });
  }
}

const isWorkspaceRange = (range) => typeof range === 'string' && range.startsWith('workspace:');

/** The workspace packages `name` needs at run time, transitively. */
function workspaceClosure(name, seen = new Set()) {
  const { pkg } = workspace.get(name);
  for (const [dep, range] of Object.entries(pkg.dependencies ?? {})) {
    if (isWorkspaceRange(range) && !seen.has(dep)) {
      seen.add(dep);
      workspaceClosure(dep, seen);
    }
  }
  return seen;
}

/**
 * package.json as published, without scripts and dev dependencies. A bundled package declares no
 * dependencies either: npm takes the dependencies of a bundled package to be bundled too, and
 * would leave e.g. better-sqlite3 half-installed. The CLI declares them all instead (hoisted
 * below), and Node finds them from the bundled packages by walking up to the CLI's node_modules.
 */
function publishedManifest(pkg, { bundled }) {
  const { scripts: _s, devDependencies: _d, ...rest } = pkg;
  if (bundled) delete rest.dependencies;
  else if (rest.dependencies) {
    rest.dependencies = Object.fromEntries(
      Object.entries(rest.dependencies).map(([dep, range]) => [
        dep,
        isWorkspaceRange(range) ? workspace.get(dep).pkg.version : range,
      ]),
    );
  }
  return rest;
}

// @epoch/web's dependencies (React, TanStack Query) are compiled into its dist/ by Vite: it is
// bundled as static files, and installing React beside the CLI would be waste.
const STATIC_ONLY = new Set(['@epoch/web']);

/** Copies a package as npm would publish it: package.json plus its `files`. */
function copyPackage(name, into, { bundled }) {
  const { dir, pkg } = workspace.get(name);
  mkdirSync(into, { recursive: true });
  for (const entry of pkg.files ?? []) {
    const from = join(dir, entry);
    if (!existsSync(from)) {
      throw new Error(`${name}: ${entry} is listed in "files" but missing (is the package built?)`);
    }
    cpSync(from, join(into, entry), { recursive: true });
  }
  writeFileSync(
    join(into, 'package.json'),
    `${JSON.stringify(publishedManifest(pkg, { bundled }), null, 2)}\n`,
  );
}

await build('@epoch/cli...', { label: 'pack-cli' });

const cliName = '@epoch/cli';
const bundled = [...workspaceClosure(cliName)].sort();
const stage = mkdtempSync(join(tmpdir(), 'epoch-cli-pack-'));
try {
  copyPackage(cliName, stage, { bundled: false });
  const hoisted = {};
  const hoist = (from, deps) => {
    for (const [dep, range] of Object.entries(deps ?? {})) {
      if (isWorkspaceRange(range)) continue;
      if (hoisted[dep] !== undefined && hoisted[dep].range !== range) {
        throw new Error(
          `${dep} is required as ${hoisted[dep].range} by ${hoisted[dep].from} and as ${range} by ${from}: align them before packing`,
        );
      }
      hoisted[dep] = { range, from };
    }
  };
  hoist(cliName, workspace.get(cliName).pkg.dependencies);
  for (const name of bundled) {
    copyPackage(name, join(stage, 'node_modules', name), { bundled: true });
    if (!STATIC_ONLY.has(name)) hoist(name, workspace.get(name).pkg.dependencies);
  }
  const manifest = readJson(join(stage, 'package.json'));
  manifest.dependencies = Object.fromEntries(
    [
      ...Object.entries(hoisted).map(([dep, { range }]) => [dep, range]),
      ...bundled.map((name) => [name, workspace.get(name).pkg.version]),
    ].sort(([a], [b]) => a.localeCompare(b)),
  );
  manifest.bundleDependencies = bundled;
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  mkdirSync(outDir, { recursive: true });
  const packed = JSON.parse(
    execFileSync('npm', ['pack', stage, '--json', '--pack-destination', outDir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  process.stdout.write(`${join(outDir, packed[0].filename)}\n`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
