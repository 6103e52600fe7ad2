/**
 * Importing the `undici` package installs its own default Agent as the process-wide dispatcher
 * (`Symbol.for('undici.globalDispatcher.1')`) when none is set yet, and Node's built-in `fetch`
 * then uses it too. When the package and Node's bundled undici differ in major version (undici 7
 * on Node 20 and 22), built-in `fetch` calls that set `Content-Length` themselves (arctic's OAuth
 * requests do) fail with "invalid content-length header". Node's `fetch` installs its own Agent
 * the first time it is called, so this module, evaluated before `undici`, calls it once on a
 * `data:` URL (no I/O); undici then finds a dispatcher and leaves it alone. The client always
 * passes its own dispatcher, so it never uses the global one.
 */
if (typeof globalThis.fetch === 'function') {
  globalThis.fetch('data:,').then(
    (res) => res.body?.cancel(),
    () => undefined,
  );
}
