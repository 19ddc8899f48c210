/**
 * `npm run bench:dispatch`: the CRM simulator with a scaled limit (default 1000 calls per 6 s), a queue of
 * waiting batches of 100 records, and several concurrent dispatchers, each with its own DynamoDB client and
 * limiter (as separate Lambda instances would be) sharing one limiter item in DynamoDB (dynalite).
 * Prints: calls in the busiest rolling window / limit (must be <= 1.0), utilisation over the run (target
 * >= 0.97), 429s (target 0), and the limiter's own overhead per call (p50, p99) beside the pacing wait.
 * Options: `--calls N` (5000), `--dispatchers N` (8), `--limit N` (1000), `--window-ms MS` (6000),
 * `--jitter-ms MS` (50), `--latency-ms MS` (CRM latency, 20).
 */
import { DynamoDbCallLedger } from '../../lambdas/adapters/aws/dynamodb-call-ledger';
import { DynamoDbLimiterStore } from '../../lambdas/adapters/aws/dynamodb-limiter-store';
import type { CallMessage } from '../../lambdas/core/crm/call-message';
import { CrmClient } from '../../lambdas/core/crm/crm-client';
import { dispatchCall } from '../../lambdas/core/crm/dispatch-call';
import { RateLimiter, type Acquired } from '../../lambdas/core/crm/rate-limiter';
import { startCrmSimulator } from '../../lambdas/local/crm-simulator';
import { startLocalDynamoDb, TABLES } from '../../lambdas/local/local-dynamodb';
import { customer } from '../fixtures/crm-records';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const argument = (flag: string, fallback: number) => {
  const at = process.argv.indexOf(flag);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
};
const CALLS = argument('--calls', 5000);
const DISPATCHERS = argument('--dispatchers', 8);
const LIMIT = argument('--limit', 1000);
const WINDOW_MS = argument('--window-ms', 6000);
const JITTER_MS = argument('--jitter-ms', 50);
const LATENCY_MS = argument('--latency-ms', 20);

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

async function main() {
  const db = await startLocalDynamoDb({ separateProcess: true });
  await db.createTable('limiter', TABLES.limiter);
  await db.createTable('ledger', TABLES.ledger);
  const sim = await startCrmSimulator({
    callsPerWindow: LIMIT,
    windowMs: WINDOW_MS,
    faults: { latencyMs: LATENCY_MS },
  });
  const fileId = 'd'.repeat(64);
  const messages: CallMessage[] = Array.from({ length: CALLS }, (_, batchIndex) => ({
    fileId,
    phase: 'ADD',
    batchIndex,
    operation: 'ADD_CUST',
    lines: Array.from({ length: 100 }, (_, i) => batchIndex * 100 + i + 2),
    records: Array.from({ length: 100 }, (_, i) => customer(`B${batchIndex}-${i}`)),
  }));
  const acquisitions: Acquired[] = [];
  let next = 0;
  console.log(
    `dispatch benchmark: ${CALLS} calls of 100 records, ${DISPATCHERS} dispatchers, limit ${LIMIT} calls per ${WINDOW_MS} ms, ` +
      `CRM latency ${LATENCY_MS} ms, limiter jitter allowance ${JITTER_MS} ms`,
  );
  const started = Date.now();
  const cpuStarted = process.cpuUsage();
  const progress = setInterval(() => process.stderr.write(`  ${next}/${CALLS} calls dispatched\r`), 2000);
  await Promise.all(
    Array.from({ length: DISPATCHERS }, async () => {
      const dynamodb = db.client();
      const limiter = new RateLimiter(new DynamoDbLimiterStore(dynamodb, 'limiter'), {
        callsPerWindow: LIMIT,
        windowMs: WINDOW_MS,
        arrivalJitterMs: JITTER_MS,
      });
      const client = new CrmClient({
        baseUrl: sim.url,
        token: sim.token,
        timeoutMs: 10_000,
        retryAttempts: 5,
        retryBaseDelayMs: 100,
        retryMaxDelayMs: 2000,
        acquire: async () => acquisitions.push(await limiter.acquire()),
      });
      const ledger = new DynamoDbCallLedger(dynamodb, 'ledger');
      while (next < messages.length) {
        const message = messages[next++] as CallMessage;
        await dispatchCall(message, { client, ledger }, { firstDelivery: true });
      }
    }),
  );
  clearInterval(progress);
  const elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  const stats = sim.stats();
  await sim.close();
  await db.close();

  const minimumMs = ((stats.callsAccepted - 1) / LIMIT) * WINDOW_MS;
  const overhead = acquisitions.map((a) => a.overheadMs);
  const waits = acquisitions.map((a) => a.waitedMs);
  const conflicts = acquisitions.reduce((sum, a) => sum + a.conflicts, 0);
  console.log(
    `\ncalls accepted          ${stats.callsAccepted} in ${(elapsedMs / 1000).toFixed(1)} s (the limit allows them in ${(minimumMs / 1000).toFixed(1)} s)`,
  );
  console.log(
    `busiest window / limit  ${stats.maxCallsInWindow} / ${LIMIT} = ${(stats.maxCallsInWindow / LIMIT).toFixed(3)}  (must be <= 1.0)`,
  );
  console.log(`utilisation             ${(minimumMs / elapsedMs).toFixed(3)}  (target >= 0.97)`);
  console.log(`429s                    ${stats.throttled}  (target 0)`);
  console.log(
    `limiter overhead/call   p50 ${percentile(overhead, 50).toFixed(1)} ms, p99 ${percentile(overhead, 99).toFixed(1)} ms; races lost ${conflicts}`,
  );
  console.log(
    `pacing wait/call        p50 ${percentile(waits, 50).toFixed(1)} ms, p99 ${percentile(waits, 99).toFixed(1)} ms`,
  );
  const cpuPercent = ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100;
  console.log(
    `bench process CPU       ${cpuPercent.toFixed(0)}% of one core (dispatchers and CRM simulator; DynamoDB has its own process)`,
  );
  console.log(
    `records applied         ${stats.recordsApplied}; transactions applied twice ${stats.transactionsAppliedMoreThanOnce}; most records in a call ${stats.maxRecordsInCall}`,
  );
}

void main();
