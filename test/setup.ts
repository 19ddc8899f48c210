import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Keep test output readable: Powertools loggers write JSON to stdout unless told otherwise.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_DEV ??= 'false';
// The tools run on Node 20 on purpose (the Lambdas run on 22): the SDK's reminder is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// A CDK app built with no outdir synthesises into a new temporary folder of its own and leaves it there (the
// suite left ~120 MB a run): every app of a test file goes to one folder, removed when the file is done.
const cdkOut = mkdtempSync(join(tmpdir(), 'cdk-test-'));
process.env.CDK_OUTDIR = cdkOut;
afterAll(() => rmSync(cdkOut, { recursive: true, force: true }));
