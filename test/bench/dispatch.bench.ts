/**
 * `npm run bench:dispatch`: the CRM simulator with a scaled limit (default 1000 calls per 6 s), a queue of
 * waiting batches of 100 records, and several concurrent dispatchers, each with its own DynamoDB client and
 * limiter (as separate Lambda instances would be) sharing one limiter item in DynamoDB (dynalite).
 * Prints: calls in the busiest rolling window / limit (must be <= 1.0), utilisation over the run (target
 * >= 0.97), 429s (target 0), and the limiter's own overhead per call (p50, p99) beside the pacing wait.
 * Options: `--calls N` (5000), `--dispatchers N` (8), `--limit N` (1000), `--window-ms MS` (6000),
 * `--jitter-ms MS` (50), `--latency-ms MS` (CRM latency, 20), `--runs N` (3; figures are medians, the busiest
 * window the worst of the runs).
 */
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbLimiterStore } from '../../lambdas/adapters/aws/dynamodb-limiter-store';
import type { CallMessage } from '../../lambdas/core/crm/call-message';
import { CrmClient } from '../../lambdas/core/crm/crm-client';
import { dispatchCall } from '../../lambdas/core/crm/dispatch-call';
import { RateLimiter, type Acquired } from '../../lambdas/core/crm/rate-limiter';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { SimulatorStats } from '../../lambdas/local/crm-simulator/crm-simulator';
import { startLocalDynamoDb, TABLES } from '../../lambdas/local/services/local-dynamodb';
import { customer } from '../fixtures/crm-records';
import { median, numberOption, percentile } from './bench-support';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const CALLS = numberOption('--calls', 5000);
const DISPATCHERS = numberOption('--dispatchers', 8);
const LIMIT = numberOption('--limit', 1000);
const WINDOW_MS = numberOption('--window-ms', 6000);
const JITTER_MS = numberOption('--jitter-ms', 50);
const LATENCY_MS = numberOption('--latency-ms', 20);
const RUNS = numberOption('--runs', 3);

/**
 * The CRM simulator in a process of its own (`npm run crm-sim`), as the real CRM is: the dispatchers' process
 * then holds only what a Lambda would (SDK clients, limiter, CRM client).
 */
async function startSimulatorProcess() {
  const script = join(__dirname, '../../bin/crm-sim.ts');
  const options = [
    '--calls-per-window',
    String(LIMIT),
    '--window-ms',
    String(WINDOW_MS),
    '--latency-ms',
    String(LATENCY_MS),
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...options], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout as Readable, 'data')) as [Buffer];
  const url = /http:\/\/[0-9.:]+/.exec(line.toString())?.[0];
  if (!url) throw new Error(`the simulator did not start: ${line.toString()}`);
  return {
    url,
    token: 'sim-token',
    close: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface RunResult {
  readonly calls: number;
  readonly elapsedMs: number;
  readonly busiest: number;
  readonly utilisation: number;
  readonly throttled: number;
  readonly overheadP50: number;
  readonly overheadP99: number;
  readonly waitP50: number;
  readonly racesLost: number;
  readonly cpuPercent: number;
  readonly recordsApplied: number;
  readonly appliedTwice: number;
  readonly maxRecordsInCall: number;
}

/** One run on fresh services: a new simulator, a new DynamoDB and so a new limiter schedule. */
async function run(): Promise<RunResult> {
  const db = await startLocalDynamoDb({ separateProcess: true });
  await db.createTable('limiter', TABLES.limiter);
  await db.createTable('ledger', TABLES.ledger);
  const sim = await startSimulatorProcess();
  const fileId = 'd'.repeat(64);
  // Messages are made as dispatchers take them: 500,000 customer objects held at once would only feed the GC.
  const messageAt = (batchIndex: number): CallMessage => ({
    fileId,
    phase: 'ADD',
    batchIndex,
    operation: 'ADD_CUST',
    lines: Array.from({ length: 100 }, (_, i) => batchIndex * 100 + i + 2),
    records: Array.from({ length: 100 }, (_, i) => customer(`B${batchIndex}-${i}`)),
  });
  const acquisitions: Acquired[] = [];
  let next = 0;
  const started = Date.now();
  const cpuStarted = process.cpuUsage();
  // Progress on a terminal only: logs and CI get the results alone.
  const progress = setInterval(() => {
    if (process.stderr.isTTY) process.stderr.write(`  ${next}/${CALLS} calls dispatched\r`);
  }, 2000);
  await Promise.all(
    Array.from({ length: DISPATCHERS }, async () => {
      // Each dispatcher is its own "Lambda": its own DynamoDB client, limiter and CRM client.
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
      const ledger = new DynamoDbCallAnswers(dynamodb, 'ledger');
      while (next < CALLS) {
        await dispatchCall(messageAt(next++), { client, answers: ledger }, { firstDelivery: true });
      }
    }),
  );
  clearInterval(progress);
  const elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpuStarted);
  const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as SimulatorStats;
  await sim.close();
  await db.close();
  const minimumMs = ((stats.callsAccepted - 1) / LIMIT) * WINDOW_MS;
  const overhead = acquisitions.map((a) => a.overheadMs);
  return {
    calls: stats.callsAccepted,
    elapsedMs,
    busiest: stats.maxCallsInWindow,
    utilisation: minimumMs / elapsedMs,
    throttled: stats.throttled,
    overheadP50: percentile(overhead, 50),
    overheadP99: percentile(overhead, 99),
    waitP50: percentile(
      acquisitions.map((a) => a.waitedMs),
      50,
    ),
    racesLost: acquisitions.reduce((sum, a) => sum + a.conflicts, 0),
    cpuPercent: ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
    recordsApplied: stats.recordsApplied,
    appliedTwice: stats.transactionsAppliedMoreThanOnce,
    maxRecordsInCall: stats.maxRecordsInCall,
  };
}

async function main() {
  console.log(
    `dispatch benchmark: ${RUNS} runs of ${CALLS} calls of 100 records, ${DISPATCHERS} dispatchers, limit ${LIMIT} calls per ` +
      `${WINDOW_MS} ms, CRM latency ${LATENCY_MS} ms, limiter jitter allowance ${JITTER_MS} ms`,
  );
  const results: RunResult[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const result = await run();
    results.push(result);
    console.log(
      `run ${i}: ${result.calls} calls in ${(result.elapsedMs / 1000).toFixed(1)} s; busiest window ${result.busiest}/${LIMIT}; ` +
        `utilisation ${result.utilisation.toFixed(3)}; 429s ${result.throttled}; limiter overhead p50 ${result.overheadP50.toFixed(1)} ms, ` +
        `p99 ${result.overheadP99.toFixed(1)} ms; pacing wait p50 ${result.waitP50.toFixed(1)} ms; schedule restarts lost ${result.racesLost}; ` +
        `dispatchers' CPU ${result.cpuPercent.toFixed(0)}%; records applied ${result.recordsApplied}, twice ${result.appliedTwice}, most in a call ${result.maxRecordsInCall}`,
    );
  }
  const worst = Math.max(...results.map((r) => r.busiest));
  console.log(
    `\nbusiest window / limit  ${worst} / ${LIMIT} = ${(worst / LIMIT).toFixed(3)} (worst run; must be <= 1.0)`,
  );
  console.log(
    `utilisation             ${median(results.map((r) => r.utilisation)).toFixed(3)} (median; target >= 0.97)`,
  );
  console.log(`429s                    ${results.reduce((sum, r) => sum + r.throttled, 0)} (all runs; target 0)`);
  console.log(
    `limiter overhead/call   p50 ${median(results.map((r) => r.overheadP50)).toFixed(1)} ms, p99 ${median(results.map((r) => r.overheadP99)).toFixed(1)} ms (medians of the runs)`,
  );
}

void main();
