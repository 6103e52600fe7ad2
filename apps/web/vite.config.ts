import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    sourcemap: true,
    // The polyfill would be the only script not loaded from a file; modern browsers need none.
    modulePreload: { polyfill: false },
    // No data: URLs for small assets: everything is a file under the CSP's 'self'.
    assetsInlineLimit: 0,
  },
  server: {
    // `pnpm dev` against a running server: EPOCH_SERVER=http://127.0.0.1:4300 pnpm dev
    proxy: Object.fromEntries(
      ['/api', '/auth', '/login', '/logout', '/v2', '/dl'].map((p) => [
        p,
        { target: process.env.EPOCH_SERVER ?? 'http://127.0.0.1:4300', changeOrigin: false },
      ]),
    ),
  },
  test: {
    environment: 'happy-dom',
    include: ['test/**/*.test.tsx', 'test/**/*.test.ts'],
    setupFiles: ['test/support/setup.ts'],
    // room for the 5 s waits of test/support/setup.ts
    testTimeout: 15_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/results.json' },
  },
});
