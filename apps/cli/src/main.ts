#!/usr/bin/env node
import { run } from './program.js';

// On Node 20 the AWS SDK prints a multi-line warning on stderr (outside the JSON log) the first
// time an S3 client is made: its releases after January 2027 need Node 22. Epoch supports Node
// 20.19+ with the SDK it ships, and `epoch serve` logs its own line about it instead (see
// server.ts). This is the SDK's documented switch; a value set by the user wins.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await run(process.argv);
