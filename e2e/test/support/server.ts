import { loadConfig, type RunningServer, startServer } from '@epoch/server';
import {
  type TestServer as GenericTestServer,
  testServerStarter,
} from '@epoch/test-support/test-server';

/** A real Epoch server from the built `@epoch/server`, in this process. */
export type TestServer = GenericTestServer<RunningServer>;

/** `startTestServer(backend, env, options)` of `@epoch/test-support/test-server`. */
export const startTestServer = testServerStarter({ loadConfig, startServer });
