import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/results.json' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // On Node 20 the AWS SDK (of @epoch/registry) warns on stderr that its releases after January
    // 2027 need Node 22; this is the SDK's documented switch for the warning.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
