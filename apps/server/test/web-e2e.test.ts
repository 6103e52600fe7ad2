import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CocoonMediaTypes } from '@epoch/oci';
import { hashToken } from '@epoch/store';
import { RawClient } from '@epoch/test-support/oci-client';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWebDir } from '../src/web/static.js';
import { startTestServer, type TestServer } from './support/server.js';
import { pushFixtures, XSS } from './support/web-fixtures.js';

const exec = promisify(execFile);

// Debian's chromium (.ci/run installs it), driven by playwright-core: no browser download.
const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));

/** A Chromium with a fresh profile, and what it saw that no page should cause. */
interface Browser {
  context: BrowserContext;
  page: Page;
  dialogs: string[];
  cspViolations: string[];
  pageErrors: string[];
  close(): Promise<void>;
}

async function openBrowser(origin: string): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'epoch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM as string,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 860 },
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = context.pages()[0] ?? (await context.newPage());
  const b: Browser = {
    context,
    page,
    dialogs: [],
    cspViolations: [],
    pageErrors: [],
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
  page.on('dialog', async (d) => {
    b.dialogs.push(d.message());
    await d.dismiss();
  });
  page.on('pageerror', (err) => b.pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (/Content.Security.Policy/i.test(msg.text())) b.cspViolations.push(msg.text());
  });
  return b;
}

/**
 * Where screenshots go: `EPOCH_WEB_SCREENSHOTS` (apps/web/docs/ keeps a few of them, see its
 * README), else a fresh temporary folder. Printed either way.
 */
async function screenshotDir(): Promise<string> {
  const dir =
    process.env.EPOCH_WEB_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), 'epoch-web-screenshots-')));
  await mkdir(dir, { recursive: true });
  console.log(`dashboard screenshots: ${dir}`);
  return dir;
}

/** A full-page screenshot `<name>.png` in `dir`. */
async function screenshot(page: Page, dir: string, name: string): Promise<void> {
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/** Runs a command copied from the dashboard the way a user pastes it into a shell. */
async function runCopied(command: string, cwd: string, path = process.env.PATH ?? '') {
  return exec('sh', ['-c', command], { cwd, env: { ...process.env, PATH: path } });
}

/** The text the page put on the clipboard after clicking `button`. */
async function copied(page: Page, button: ReturnType<Page['locator']>): Promise<string> {
  await button.click();
  return (await page.evaluate('navigator.clipboard.readText()')) as string;
}

/**
 * Waits until the server noticed that a token exists, which ends the out-of-the-box anonymous
 * loopback writes (within seconds: a token created straight in the index is seen on its next
 * lookup).
 */
async function openModeEnded(t: TestServer): Promise<void> {
  for (let i = 0; ; i++) {
    const probe = await new RawClient(t.url).fetch('/v2/probe/blobs/uploads/', {
      method: 'POST',
    });
    if (probe.status === 401) return;
    if (i > 60) throw new Error('anonymous loopback writes still open 15 s after the first token');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Where the cells of each table lie against its box (none outside it, no scrolling means
 * nothing is clipped) and how many line boxes each tag name takes (1: not broken).
 */
async function tableLayout(page: Page) {
  // Browser-side code is a string: this package's types have no DOM.
  return (await page.evaluate(`(() => {
    const tables = [...document.querySelectorAll('.table-wrap')].map((wrap) => {
      const box = wrap.getBoundingClientRect();
      const cells = [...wrap.querySelectorAll('td')].map((td) => td.getBoundingClientRect());
      return {
        scrolls: wrap.scrollWidth > wrap.clientWidth,
        outside: cells.filter((c) => c.right > box.right + 0.5 || c.left < box.left - 0.5).length,
      };
    });
    const names = [...document.querySelectorAll('.timeline .tag-name, table.tags .tag-name')];
    return { tables, names: names.map((a) => [a.textContent, a.getClientRects().length]) };
  })()`)) as { tables: { scrolls: boolean; outside: number }[]; names: [string, number][] };
}

const mainNav = (page: Page) => page.getByRole('navigation', { name: 'Main' });
const header = (page: Page) => page.getByRole('banner');

describe.skipIf(CHROMIUM === undefined)('the dashboard in Chromium [needs chromium]', () => {
  let t: TestServer;
  let admin: string;
  let api: RawClient;
  let browser: Browser;
  let page: Page;
  let shots: string;
  let work: string;
  const digests: Record<string, string> = {};

  const shot = (name: string) => screenshot(page, shots, name);

  beforeAll(async () => {
    const web = defaultWebDir();
    if (!web || !existsSync(join(web, 'index.html'))) {
      throw new Error('apps/web is not built: run pnpm build first');
    }
    t = await startTestServer('filesystem');
    admin = await t.token(['admin']);
    api = new RawClient(t.url, { Authorization: `Bearer ${admin}` });
    // So that every push below, skopeo's included, is made with credentials.
    await openModeEnded(t);
    work = await mkdtemp(join(tmpdir(), 'epoch-web-e2e-'));
    shots = await screenshotDir();
    await pushFixtures(t, api, admin, work, digests);
    // Token names follow a rule, but who created a token is any text (an SSO e-mail, a login):
    // it must still render as text.
    await t.server.index.tokens.create({ name: 'hostile', createdBy: XSS, scopes: ['pull'] });
    browser = await openBrowser(t.url);
    page = browser.page;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('serves the app with a strict CSP and opens it read-only for anyone', async () => {
    const started = Date.now();
    const res = await page.goto(`${t.url}/`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const firstRender = Date.now() - started;
    // Browser-side expressions are strings: this package's types have no DOM.
    const timing = (await page.evaluate(`({
      domContentLoaded: Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd),
      fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
    })`)) as { domContentLoaded: number; fcp?: number };
    console.log(
      `first render of /: ${firstRender} ms to the dashboard (DOMContentLoaded ${timing.domContentLoaded} ms, first contentful paint ${Math.round(timing.fcp ?? -1)} ms)`,
    );
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res?.headers()['x-content-type-options']).toBe('nosniff');

    // Anonymous pull is on (the default): the dashboard, read-only, with a way to sign in.
    await header(page).getByText('Read-only', { exact: true }).waitFor();
    await header(page).getByRole('link', { name: 'Sign in' }).waitFor();
    expect(await mainNav(page).getByRole('link', { name: 'Tokens' }).count()).toBe(0);
    await expect.poll(() => page.locator('.stat').first().textContent()).toContain('Repositories');
    // Anonymous visitors see pushes, as sentences with links.
    const push = page.locator('li.event[data-action="push"]').first();
    await push.waitFor();
    expect(await push.locator('.sentence').textContent()).toMatch(/ pushed \S+:\S+ \(sha256:/);
    await shot('01-dashboard-anonymous');
  });

  it('lets anonymous visitors browse but not administer', async () => {
    await page.goto(`${t.url}/tokens`);
    await page.getByText('Only administrators may manage tokens').waitFor();
    await page.goto(`${t.url}/repositories/library/alpine/-/old`);
    await page.getByRole('heading', { name: 'library/alpine:old' }).waitFor();
    await page.getByRole('heading', { name: 'Layers' }).waitFor();
    expect(await page.getByRole('button', { name: 'Delete this tag…' }).count()).toBe(0);
  });

  it('refuses a wrong token, then signs in with an admin token from the header', async () => {
    await header(page).getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in to Epoch' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/signin');
    // The placeholder describes what `epoch token create` prints.
    const input = page.getByLabel('API token');
    expect(await input.getAttribute('placeholder')).toMatch(/64 hex/);
    expect(admin).toMatch(/^[0-9a-f]{64}$/);
    await shot('02-sign-in');
    await input.fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await input.fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await header(page).getByRole('link', { name: 'Sign out' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/');
    await page.locator('.chart.bars rect').first().waitFor();
    await page.locator('.chart.columns').waitFor();
    await shot('03-dashboard');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('03-dashboard-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('lists the repositories with kinds and finds one by search', async () => {
    await mainNav(page).getByRole('link', { name: 'Repositories' }).click();
    const table = page.locator('table');
    for (const name of ['vm/live', 'os/win11', 'library/alpine', 'library/busybox', 'e2e/skopeo']) {
      await table.getByRole('link', { name, exact: true }).waitFor();
    }
    for (const kind of ['Snapshot', 'Cloud image', 'Container image', 'Image index']) {
      await expect.poll(() => table.getByText(kind, { exact: true }).count()).toBeGreaterThan(0);
    }
    await shot('04-repositories');
    await page.getByLabel('Search').fill('win');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(1);
    expect(page.url()).toContain('search=win');
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Kind').selectOption('snapshot');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(2);
    await page.getByLabel('Kind').selectOption('');
  });

  it('opens a deep link to a repository with a slash and copies a digest', async () => {
    await page.goto(`${t.url}/repositories/vm/live`);
    await page.getByRole('heading', { name: 'vm/live' }).waitFor();
    const tags = page.locator('table.tags');
    await tags.getByRole('link', { name: 'hibernate', exact: true }).waitFor();
    const host = new URL(t.url).host;
    await page.getByText(`epoch pull ${host}/vm/live:`).first().waitFor();
    // Located by position: the button's name changes to "Copied" on click.
    const copy = tags.locator('td.digest button').first();
    expect(await copy.textContent()).toBe('Copy digest');
    const digest = await copied(page, copy);
    await expect.poll(() => copy.textContent()).toBe('Copied');
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect([digests.hibernate, digests.running]).toContain(digest);
    await shot('05-repository');
  });

  it('shows a snapshot tag: VM facts, files, layers, manifest — free text as text', async () => {
    await page.locator('table.tags').getByRole('link', { name: 'hibernate', exact: true }).click();
    await page.getByRole('heading', { name: 'vm/live:hibernate' }).waitFor();
    await page.getByText('cloud-hypervisor').waitFor();
    await page.getByText('4.0 GiB').first().waitFor();
    // The description is `<script>alert(1)</script>`: shown, never run or parsed.
    await page.getByText(XSS, { exact: true }).first().waitFor();
    expect(await page.locator('main script').count()).toBe(0);
    await page.getByText('memory-ranges').first().waitFor();
    await page.getByText('sparse', { exact: true }).waitFor();
    expect(await page.locator('.bar-fill').count()).toBe(2);
    expect(await page.locator('pre.manifest').textContent()).toContain(
      CocoonMediaTypes.snapshotArtifact,
    );
    await page.getByText(digests.hibernate ?? '', { exact: true }).waitFor();
    await shot('06-tag-snapshot');
  });

  it('offers /dl/ commands for a snapshot that import it into cocoon or save a named tar', async () => {
    const command = (tool: string) =>
      page
        .locator('ul.commands li')
        .filter({ has: page.locator('.tool', { hasText: new RegExp(`^${tool}$`) }) })
        .locator('code');
    const pipe = (await command('cocoon').textContent()) ?? '';
    expect(pipe).toBe(
      `curl -fL ${t.url}/dl/vm/live:hibernate | cocoon snapshot import --name live`,
    );
    // As pasted, with a stand-in `cocoon` that keeps what it was given.
    const dir = await mkdtemp(join(work, 'dl-snapshot-'));
    const fake = join(dir, 'bin', 'cocoon');
    await mkdir(join(dir, 'bin'));
    await writeFile(fake, '#!/bin/sh\necho "$@" > args\ncat > imported.tar\n');
    await chmod(fake, 0o755);
    await runCopied(pipe, dir, `${join(dir, 'bin')}:${process.env.PATH}`);
    expect((await readFile(join(dir, 'args'), 'utf8')).trim()).toBe('snapshot import --name live');
    const listed = (await exec('tar', ['-tf', join(dir, 'imported.tar')])).stdout.split('\n');
    expect(listed.filter(Boolean)).toEqual(['snapshot.json', 'config.json', 'memory-ranges']);

    // The other one saves the tar under the server's name, not `live:hibernate`.
    const save = (await command('curl').textContent()) ?? '';
    expect(save).toBe(`curl -fLOJ ${t.url}/dl/vm/live:hibernate`);
    const saved = await mkdtemp(join(work, 'dl-tar-'));
    await runCopied(save, saved);
    expect(await readdir(saved)).toEqual(['live-hibernate.tar']);
  });

  it('shows a cloud image in parts, with a download that saves a named disk; and an index', async () => {
    await page.goto(`${t.url}/repositories/os/win11/-/latest`);
    await page.getByRole('heading', { name: 'Disk parts' }).waitFor();
    const parts = await page.locator('ol.parts li .name').allTextContents();
    expect(parts).toEqual([
      'win.qcow2.00.qcow2.part',
      'win.qcow2.01.qcow2.part',
      'win.qcow2.02.qcow2.part',
    ]);
    const curl = page
      .locator('ul.commands li')
      .filter({ has: page.locator('.tool', { hasText: /^curl$/ }) });
    const command = await copied(page, curl.getByRole('button', { name: 'Copy' }));
    expect(command).toBe(`curl -fLOJ ${t.url}/dl/os/win11:latest`);
    const dir = await mkdtemp(join(work, 'dl-disk-'));
    await runCopied(command, dir);
    expect(await readdir(dir)).toEqual(['win11-latest.qcow2']);
    expect((await stat(join(dir, 'win11-latest.qcow2'))).size).toBe(5000 + 3000 + 1200);
    await shot('07-tag-cloud-image');

    await page.goto(`${t.url}/repositories/library/busybox/-/latest`);
    await page.getByRole('heading', { name: 'Platforms' }).waitFor();
    await page.getByText('linux/amd64', { exact: true }).waitFor();
    await page.getByText('linux/arm64/v8', { exact: true }).waitFor();
    await shot('08-tag-index');
  });

  it('shows a snapshot history as a timeline, and what changed between two versions', async () => {
    await page.goto(`${t.url}/repositories/vm/history`);
    const timeline = page.getByRole('list', { name: 'Versions, newest first' });
    await timeline.waitFor();
    expect(await timeline.locator('li .tag-name').allTextContents()).toEqual(['v3', 'v2', 'v1']);
    expect(await timeline.locator('li').first().textContent()).toContain('since v2');
    // By default the newest against the one before: v3 rewrote the memory at the same size,
    // dropped the overlay, added a state file, and doubled the CPUs.
    const summary = page.getByTestId('diff-summary');
    await expect
      .poll(() => summary.textContent())
      .toMatch(/^1 file added, 1 removed, 1 changed \(same size\); 1 file unchanged\./);
    const rows = page.locator('table.diff tbody tr');
    const row = (i: number) =>
      rows
        .nth(i)
        .locator('td')
        .allTextContents()
        .then((cells) => cells.slice(0, 2).join(' '));
    expect([await row(0), await row(1), await row(2)]).toEqual([
      'changed memory-ranges',
      'added state.json',
      'removed overlay.qcow2',
    ]);
    await page.getByText('CPUs: 4 → 8').waitFor();
    await shot('09-history');

    await page.getByLabel('From').selectOption('v1');
    await expect.poll(() => new URL(page.url()).search).toBe('?from=v1&to=v3');
    await expect.poll(() => summary.textContent()).toMatch(/^1 file added, 1 resized;/);
    expect(await row(0)).toBe('resized memory-ranges');
    // A linked comparison opens as it was left.
    await page.reload();
    await expect.poll(() => summary.textContent()).toMatch(/^1 file added, 1 resized;/);
  });

  it('cannot push a repository named like markup', async () => {
    const res = await api.fetch(
      `/v2/${encodeURIComponent('<img src=x onerror=alert(1)>')}/blobs/uploads/`,
      {
        method: 'POST',
      },
    );
    expect(res.status).toBe(400);
    const list = (await (await api.fetch('/api/repositories?search=img')).json()) as unknown[];
    expect(list).toEqual([]);
  });

  it('creates a token, shows its secret once, and revokes it; hostile names stay text', async () => {
    await page.goto(`${t.url}/`);
    await mainNav(page).getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'Tokens', exact: true }).waitFor();
    const hostile = page.getByRole('cell').filter({ hasText: XSS });
    await hostile.waitFor();
    expect(await page.locator('main script').count()).toBe(0);
    // Tokens exist already: no first-token warning.
    expect(await page.getByRole('note').count()).toBe(0);

    await page.getByLabel('Name').fill('e2e-ci');
    await page.getByLabel('push').check();
    await page.getByLabel('Repository pattern').fill('library/*');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.getByTestId('token-secret').textContent();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const created = (await t.server.index.tokens.list()).find((x) => x.name === 'e2e-ci');
    expect(created).toMatchObject({ scopes: ['pull', 'push'], repoPattern: 'library/*' });
    expect(await t.server.index.tokens.findByHash(hashToken(secret ?? ''))).toMatchObject({
      id: created?.id,
    });
    await shot('10-tokens-created');
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.getByTestId('token-secret').count()).toBe(0);

    const row = page.locator(`tr[data-token-id="${created?.id}"]`);
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await row.getByRole('button', { name: 'Revoke e2e-ci' }).click();
    await row.getByText('revoked').waitFor();
    expect((await t.server.index.tokens.findById(created?.id ?? 0))?.revokedAt).toBeInstanceOf(
      Date,
    );
  });

  it('deletes a tag after a confirm that names it', async () => {
    await page.goto(`${t.url}/repositories/library/alpine/-/old`);
    await page.getByRole('button', { name: 'Delete this tag…' }).click();
    const confirm = page.getByRole('alertdialog');
    expect(await confirm.textContent()).toContain('library/alpine:old');
    await confirm.getByRole('button', { name: 'Delete old' }).click();
    await page.getByRole('heading', { name: 'library/alpine' }).waitFor();
    await expect
      .poll(async () => (await t.server.index.reads.getTag('library/alpine', 'old')) === undefined)
      .toBe(true);
    const tags = page.locator('table.tags');
    const kept = tags.getByRole('link', { name: '3.20', exact: true });
    await kept.waitFor();
    await expect.poll(() => tags.getByRole('link', { name: 'old', exact: true }).count()).toBe(0);
    await kept.click();
    await page.getByRole('heading', { name: 'library/alpine:3.20' }).waitFor();
    await page.getByText('application/vnd.dev.cosign.artifact.sig.v1+json').waitFor();
    await shot('11-tag-container-with-signature');
  });

  it("changes a repository's default push format, with the session's CSRF token", async () => {
    await page.goto(`${t.url}/repositories/vm/live`);
    const section = page.locator('section.default-format');
    await section.getByRole('heading', { name: 'Default push format' }).waitFor();
    await expect.poll(() => section.locator('p strong').textContent()).toBe('Full');
    await section.getByLabel('Default format').selectOption('incremental');
    await section.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => section.locator('p strong').textContent()).toBe('Incremental');
    expect(await section.textContent()).toMatch(/Set by test-admin-\S+/);
    expect((await t.server.index.repositorySettings.get('vm/live')).defaultFormat).toBe(
      'incremental',
    );
    await shot('11b-repository-default-format');
  });

  it('shows a push made while the page is open, without a reload', async () => {
    await mainNav(page).getByRole('link', { name: 'Repositories' }).click();
    await page.locator('table').getByRole('link', { name: 'vm/live', exact: true }).waitFor();
    await page.evaluate('window.stayed = true');
    await api.pushImage('live/arrived', 'v1');
    await page
      .locator('table')
      .getByRole('link', { name: 'live/arrived', exact: true })
      .waitFor({ timeout: 15_000 });
    expect(await page.evaluate('window.stayed')).toBe(true);
  });

  it('writes the audit log as sentences with links, and has an about panel', async () => {
    await mainNav(page).getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const sentence = (action: string) =>
      page.locator(`li.event[data-action="${action}"] .sentence`).first();
    await expect
      .poll(() => sentence('token.revoke').textContent())
      .toMatch(/ revoked token e2e-ci$/);
    expect(await sentence('token.create').textContent()).toMatch(
      / created token e2e-ci with pull, push on library\/\*$/,
    );
    expect(await sentence('delete').textContent()).toMatch(/ deleted tag library\/alpine:old$/);
    expect(await sentence('repository.settings').textContent()).toMatch(
      / set the default push format of vm\/live to incremental \(was full\)$/,
    );
    expect(await sentence('login').textContent()).toMatch(/^Token test-admin-\S+ signed in$/);
    expect(await sentence('login.denied').textContent()).toMatch(
      /^A sign-in with a token was refused: /,
    );
    // Tags link to their page; token names to the tokens page, for administrators.
    expect(await sentence('push').getByRole('link').first().getAttribute('href')).toMatch(
      /^\/repositories\/.+\/-\/.+/,
    );
    expect(await sentence('token.create').getByRole('link').getAttribute('href')).toBe('/tokens');
    expect(await page.locator('ul.events').textContent()).not.toMatch(/[{}]|requestId/);
    await shot('12-audit');
    await mainNav(page).getByRole('link', { name: 'About' }).click();
    await page.getByText('Filesystem').waitFor();
    await page.getByText('SQLite').waitFor();
    await page.getByText('0.1.0').waitFor();
    await shot('13-about');
  });

  it('fits a 360 px wide screen: tags reflow, tag names stay whole', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    for (const path of [
      '/',
      '/repositories',
      '/repositories/vm/history',
      '/repositories/vm/live/-/hibernate',
      '/audit',
      '/tokens',
    ]) {
      await page.goto(`${t.url}${path}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate('document.documentElement.scrollWidth');
      expect(overflow, path).toBeLessThanOrEqual(360);
    }
    await page.goto(`${t.url}/repositories/vm/history`);
    await page.locator('table.diff tbody tr').first().waitFor();
    const history = await tableLayout(page);
    expect(history.tables).toEqual([
      { scrolls: false, outside: 0 },
      { scrolls: false, outside: 0 },
    ]);
    expect(history.names).toEqual(['v3', 'v2', 'v1', 'v3', 'v2', 'v1'].map((n) => [n, 1]));
    await shot('14-repository-360px');
    // `hibernate` was broken as hib/er/na/te to fit a column.
    await page.goto(`${t.url}/repositories/vm/live`);
    await page.locator('table.tags .tag-name').first().waitFor();
    const live = await tableLayout(page);
    expect(live.tables).toEqual([{ scrolls: false, outside: 0 }]);
    expect(live.names.map(([, lines]) => lines)).toEqual([1, 1, 1, 1]);
    expect(live.names.map(([name]) => name)).toContain('hibernate');
    await page.goto(`${t.url}/repositories/vm/live/-/hibernate`);
    await page.getByRole('heading', { name: 'Layers' }).waitFor();
    await shot('15-tag-360px');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('signs out, back to the read-only view', async () => {
    await page.goto(`${t.url}/about`);
    await header(page).getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await header(page).getByText('Read-only', { exact: true }).waitFor();
    await header(page).getByRole('link', { name: 'Sign in' }).waitFor();
    expect(await mainNav(page).getByRole('link', { name: 'Tokens' }).count()).toBe(0);
    await page.goto(`${t.url}/tokens`);
    await page.getByText('Only administrators may manage tokens').waitFor();
    // Anonymous visitors see no sign-ins or token changes in the feed.
    await page.goto(`${t.url}/audit`);
    await page.locator('li.event').first().waitFor();
    const actions = await page
      .locator('li.event')
      .evaluateAll((lis) => lis.map((li) => li.getAttribute('data-action')));
    expect(actions.filter((a) => a?.startsWith('token.') || a?.startsWith('login'))).toEqual([]);
  });

  it('ran no script from data, raised no dialog, and broke no CSP rule', () => {
    expect(browser.dialogs).toEqual([]);
    expect(browser.cspViolations).toEqual([]);
    expect(browser.pageErrors).toEqual([]);
  });
});

describe.skipIf(CHROMIUM === undefined)(
  'the dashboard out of the box, in Chromium [needs chromium]',
  () => {
    let t: TestServer;
    let closed: TestServer;
    let browser: Browser;
    let page: Page;
    let shots: string;

    const shot = (name: string) => screenshot(page, shots, name);

    beforeAll(async () => {
      // No token and no static token: a visitor on this machine administers the registry.
      t = await startTestServer('filesystem');
      // Anonymous pull off and a token made: nothing without signing in.
      closed = await startTestServer('filesystem', { EPOCH_ANONYMOUS_PULL: 'false' });
      await closed.token(['pull']);
      await openModeEnded(closed);
      shots = await screenshotDir();
      browser = await openBrowser(t.url);
      page = browser.page;
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await t?.stop();
      await closed?.stop();
    });

    it('opens as an administrator for a local visitor, with an empty dashboard that says so', async () => {
      await page.goto(`${t.url}/`);
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
      await header(page).getByText('Open local access', { exact: true }).waitFor();
      await mainNav(page).getByRole('link', { name: 'Tokens' }).waitFor();
      await page.getByText('No pushes in the last 30 days.').waitFor();
      expect(await page.locator('.chart.columns').count()).toBe(0);
      await page.getByText('No activity yet.').waitFor();
      await page.setViewportSize({ width: 360, height: 740 });
      await shot('16-open-mode-dashboard-360px');
      await page.setViewportSize({ width: 1280, height: 860 });
    });

    it('warns that the first token ends open access, shows it once, and signs in with it', async () => {
      await mainNav(page).getByRole('link', { name: 'Tokens' }).click();
      const warning = page.getByRole('note');
      await warning.waitFor();
      expect(await warning.textContent()).toContain('Creating the first token ends that');
      expect(await warning.textContent()).toContain('shown only once');
      expect(await page.getByLabel('admin').isChecked()).toBe(true);
      await shot('17-open-mode-tokens');
      await page.getByLabel('Name').fill('me');
      await page.getByRole('button', { name: 'Create token' }).click();
      const secret = (await page.getByTestId('token-secret').textContent()) ?? '';
      expect(secret).toMatch(/^[0-9a-f]{64}$/);
      // The open mode is over: the visitor reads only, and the secret stays on screen.
      await header(page).getByText('Read-only', { exact: true }).waitFor();
      await page.getByText('Only administrators may manage tokens').waitFor();
      expect(await page.getByTestId('token-secret').textContent()).toBe(secret);
      const push = await new RawClient(t.url).fetch('/v2/after/blobs/uploads/', { method: 'POST' });
      expect(push.status).toBe(401);
      await shot('18-first-token-created');

      await page.getByRole('button', { name: 'Sign in with this token' }).click();
      await header(page).getByRole('link', { name: 'Sign out' }).waitFor();
      await header(page).getByText('me', { exact: true }).waitFor();
      const row = page.getByRole('row').filter({ hasText: 'by anonymous' });
      expect(await row.getByRole('cell').first().textContent()).toBe('me');
      expect((await t.server.index.tokens.list()).map((x) => x.scopes)).toEqual([['admin']]);
    });

    it('shows only the sign-in page where anonymous visitors have no rights', async () => {
      await page.goto(`${closed.url}/`);
      await page.getByRole('heading', { name: 'Sign in to Epoch' }).waitFor();
      expect(await page.getByRole('banner').count()).toBe(0);
    });

    it('ran no script from data, raised no dialog, and broke no CSP rule', () => {
      expect(browser.dialogs).toEqual([]);
      expect(browser.cspViolations).toEqual([]);
      expect(browser.pageErrors).toEqual([]);
    });
  },
);
