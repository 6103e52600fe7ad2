import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const exec = promisify(execFile);

it("leaves Node's built-in fetch working after the client (and undici) is loaded", async () => {
  // In a fresh process: vitest itself may have used fetch before, which hides the problem.
  const script = `
    await import(${JSON.stringify(new URL('../../dist/client/index.js', import.meta.url).href)});
    const http = await import('node:http');
    const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    // An explicit Content-Length, as arctic sends: undici 7's Agent refuses it from Node 20's fetch.
    const request = new Request('http://127.0.0.1:' + server.address().port, { method: 'POST', body: 'hello' });
    request.headers.set('Content-Length', '5');
    const res = await fetch(request);
    process.stdout.write(await res.text());
    server.close();
  `;
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script]);
  expect(stdout).toBe('ok');
});
