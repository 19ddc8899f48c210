import { withoutTimes } from '../support/summary-times';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import { startCrmSimulator, type SimulatorStats } from '../../lambdas/local/crm-simulator/crm-simulator';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import type { RunReport } from '../../lambdas/local/cli/run-report';
import { seededCustomers } from '../fixtures/crm-records';
import { runIngest } from './cli';

/**
 * Issue 14's acceptance on one machine: the same files give byte-identical reports whether each handler has
 * Lambda's 900 s or one second, in which classify, prepare and finalise each need several invocations, resuming
 * from their checkpoints (and the dispatcher is cut off mid-batch now and then, its batches redelivered).
 * The load has every phase: a plain CSV users file with 30% customers the CRM has (8006, then UPD) and bad rows,
 * and a JSON Lines transactions file with 6% of its customers never in the CRM (RETRY1, RETRY2, then 4404). Both
 * plain: a gzip file's later slices inflate it again from the start, which on one machine, with one event loop
 * carrying every embedded service under a load this size, can take a whole short invocation (the gzip resume is
 * tested at the handlers, in the *-resume tests).
 */
const USERS = 600_000;
const TRANSACTIONS = 200_000;
const SEEDED_SHARE = 0.3;

/** Every file under a directory with its bytes, by path relative to it. */
function filesUnder(directory: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = readFileSync(path);
    // The clock times differ between runs; everything else in summary.json must not.
    files.set(
      relative(directory, path),
      entry.name === 'summary.json' ? Buffer.from(withoutTimes(bytes.toString('utf8'))) : bytes,
    );
  }
  return files;
}

/** How many times each sliced step's handler wrote a checkpoint and asked for another invocation. */
function slices(reportDir: string) {
  const log = readFileSync(join(reportDir, 'ingest.log'), 'utf8');
  const count = (message: string) => log.split(`"message":"${message}"`).length - 1;
  return {
    classify: count('classify slice read'),
    prepare: count('phase slice enqueued'),
    finalise: count('finalise slice written'),
  };
}

describe('ingest run with a short function timeout', () => {
  const temporary: string[] = [];
  let directory: string;
  let customers: CrmCustomer[];

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'ingest-slices-'));
    temporary.push(directory);
    // Transactions of customers S..., of whom the CRM has all but the last 6%.
    const transactionCustomers = Math.round(TRANSACTIONS / 4);
    const [, transactions] = await generateFiles({
      users: Math.round(transactionCustomers / 0.94),
      transactions: TRANSACTIONS,
      outDir: directory,
      customerPrefix: 'S',
      format: 'jsonl',
      seed: 'slices',
    });
    rmSync(join(directory, 'users_demo_20261124_001.jsonl'));
    renameSync(transactions!.path, join(directory, 'b_transactions_demo_20261124_001.jsonl'));
    const [users] = await generateFiles({
      users: USERS,
      transactions: 0,
      outDir: directory,
      customerPrefix: 'G',
      badRate: 0.01,
      seed: 'slices',
      sequence: 2,
    });
    renameSync(users!.path, join(directory, 'a_users_demo_20261124_002.csv'));
    customers = [
      ...seededCustomers('S', transactionCustomers),
      ...seededCustomers('G', Math.round(USERS * SEEDED_SHARE)),
    ];
  }, 120_000);
  afterAll(() => {
    for (const path of temporary) rmSync(path, { recursive: true, force: true });
  });

  const run = async (functionTimeoutS: number) => {
    const simulator = await startCrmSimulator({ customers, callsPerWindow: 60_000 });
    const reportDir = mkdtempSync(join(tmpdir(), `ingest-slices-${functionTimeoutS}-`));
    temporary.push(reportDir);
    try {
      const result = await runIngest([
        'run',
        directory,
        '--json',
        '--crm-url',
        simulator.url,
        '--crm-token',
        simulator.token,
        '--calls-per-minute',
        '60000',
        '--retry-later-delay',
        '1',
        '--retry-later-attempts',
        '2',
        '--report-dir',
        reportDir,
        '--function-timeout',
        String(functionTimeoutS),
      ]);
      if (result.code !== 0) throw new Error(`ingest run exited ${result.code}: ${result.stderr}`);
      const stats = (await (await fetch(`${simulator.url}/_sim/stats`)).json()) as SimulatorStats;
      return { report: JSON.parse(result.stdout) as RunReport, reportDir, stats };
    } finally {
      await simulator.close();
    }
  };

  it('writes byte-identical reports whether each step runs in one invocation or in many', async () => {
    // Both runs at once: each has its own CRM, ports and report directory (and sharing the CPU only slices more).
    const [whole, sliced] = await Promise.all([run(900), run(3)]);

    const wholeSlices = slices(whole.reportDir);
    expect(wholeSlices).toEqual({ classify: 0, prepare: expect.any(Number), finalise: 0 });
    const slicedSlices = slices(sliced.reportDir);
    expect(slicedSlices.classify).toBeGreaterThanOrEqual(2);
    expect(slicedSlices.prepare).toBeGreaterThanOrEqual(4);
    expect(slicedSlices.finalise).toBeGreaterThanOrEqual(2);

    // Every record accounted for, the same way, with every phase used.
    // The calls made may differ: a dispatcher cut off mid-call is redelivered and calls again with the same
    // idempotency key (the CRM replays its answer; nothing applied twice).
    const { apiCalls: slicedCalls, ...slicedTotals } = sliced.report.totals;
    const { apiCalls: wholeCalls, ...wholeTotals } = whole.report.totals;
    expect(sliced.report.files).toEqual(whole.report.files);
    expect(slicedTotals).toEqual(wholeTotals);
    expect(slicedCalls).toBeGreaterThanOrEqual(wholeCalls);
    const users = whole.report.files.find((file) => file.kind === 'users');
    const transactions = whole.report.files.find((file) => file.kind === 'transactions');
    expect(users).toMatchObject({ status: 'partial', received: USERS });
    expect(users!.failures.VALIDATION).toBeGreaterThan(0);
    expect(transactions).toMatchObject({ status: 'partial', received: TRANSACTIONS });
    expect(transactions!.failures['4404']).toBeGreaterThan(0.05 * TRANSACTIONS);
    for (const stats of [whole.stats, sliced.stats]) {
      expect(stats.calls.UPD_CUST).toBeGreaterThan(0);
      expect(stats.transactionsAppliedMoreThanOnce).toBe(0);
      expect(stats.throttled).toBe(0);
    }

    // The partner's reports (summary, results, failed records) byte for byte.
    const reports = (dir: string) => {
      const files = filesUnder(dir);
      files.delete('ingest.log');
      for (const path of files.keys()) if (path.startsWith('.ingest')) files.delete(path);
      return files;
    };
    const wholeReports = reports(whole.reportDir);
    const slicedReports = reports(sliced.reportDir);
    expect([...slicedReports.keys()].sort()).toEqual([...wholeReports.keys()].sort());
    expect([...wholeReports.keys()].filter((path) => path.endsWith('results.csv'))).toHaveLength(2);
    for (const [path, bytes] of wholeReports) {
      expect({ path, same: slicedReports.get(path)?.equals(bytes) }).toEqual({ path, same: true });
    }
  }, 600_000);
});
