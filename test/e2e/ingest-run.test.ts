import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Papa from 'papaparse';
import {
  startCrmSimulator,
  type CrmSimulator,
  type SimulatorStats,
} from '../../lambdas/local/crm-simulator/crm-simulator';
import type { FileResult, RunReport } from '../../lambdas/local/cli/run-report';
import { runIngest } from './cli';
import { writePartnerLoad, type PartnerLoad } from './partner-load';

/**
 * `ingest run --json` as a user runs it (its own process), against a CRM simulator this test starts and reads
 * the statistics of: uploads over the embedded SFTP server, the workflow, the calls, the reports.
 */
const RUN_OPTIONS = [
  '--json',
  '--retry-later-delay',
  '1',
  '--retry-later-attempts',
  '2',
  '--crm-retry-base-delay-ms',
  '50',
  '--concurrency',
  '4',
];

async function stats(simulator: CrmSimulator): Promise<SimulatorStats> {
  return (await (await fetch(`${simulator.url}/_sim/stats`)).json()) as SimulatorStats;
}

describe('ingest run', () => {
  let load: PartnerLoad;
  const temporary: string[] = [];
  const reportDir = () => {
    const directory = mkdtempSync(join(tmpdir(), 'ingest-reports-'));
    temporary.push(directory);
    return directory;
  };

  beforeAll(async () => {
    load = await writePartnerLoad();
    temporary.push(load.directory);
  });
  afterAll(() => {
    for (const directory of temporary) rmSync(directory, { recursive: true, force: true });
  });

  const run = async (
    simulator: CrmSimulator,
    reports: string,
    { env = {}, args = [] }: { env?: Record<string, string>; args?: string[] } = {},
  ) => {
    const result = await runIngest(
      [
        'run',
        load.directory,
        ...RUN_OPTIONS,
        '--crm-url',
        simulator.url,
        '--crm-token',
        simulator.token,
        '--report-dir',
        reports,
        ...args,
      ],
      env,
    );
    if (result.code !== 0) throw new Error(`ingest run exited ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout) as RunReport;
  };
  const byName = (report: RunReport, name: string) => report.files.find((f) => f.name === name) as FileResult;

  describe('a clean run', () => {
    let simulator: CrmSimulator;
    let report: RunReport;
    let reports: string;

    beforeAll(async () => {
      simulator = await startCrmSimulator({ customers: load.customers });
      reports = reportDir();
      report = await run(simulator, reports);
    }, 120_000);
    afterAll(() => simulator?.close());

    it('prints one JSON document with every file in a terminal state', () => {
      expect(report.files.map((f) => f.name).sort()).toEqual(readdirSync(load.directory).sort());
      expect(report.pending).toBeUndefined();
      for (const file of report.files) {
        expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
        if (file.status === 'failed' || file.status === 'duplicate') continue;
        expect(file.received).toBe(file.succeeded + file.failed);
        expect(Object.values(file.failures).reduce((a, b) => a + b, 0)).toBe(file.failed);
      }
    });

    it('gives each record of the hand-written files its outcome', () => {
      // The copy listed first is the one processed; the other is its duplicate.
      const copy = byName(report, 'customers_acme_20261124_009.csv');
      const users = byName(report, 'users_acme_20261124_001.csv');
      const [processed, duplicate] = copy.status === 'duplicate' ? [users, copy] : [copy, users];
      expect(processed).toMatchObject({
        kind: 'users',
        status: 'partial',
        received: 7,
        succeeded: 3,
        failed: 4,
        failures: { '3217': 1, CONFLICTING_PROFILE: 1, VALIDATION: 2 },
      });
      expect(duplicate).toMatchObject({ kind: 'users', status: 'duplicate', sha256: processed.sha256 });
      expect(duplicate.reason).toMatch(/same bytes/);

      expect(byName(report, 'transactions_acme_20261124_003.jsonl')).toMatchObject({
        kind: 'transactions',
        status: 'partial',
        received: 5,
        succeeded: 3,
        failed: 2,
        failures: { '4404': 1, VALIDATION: 1 },
      });
      expect(byName(report, 'users_acme_20261124_004.ndjson')).toMatchObject({ status: 'succeeded', succeeded: 1 });
      const unknown = byName(report, 'readme.txt');
      expect(unknown).toMatchObject({ kind: 'unknown', status: 'failed', received: 0 });
      expect(unknown.reason).toMatch(/unknown file kind/);
    });

    it('fails exactly the generated bad rows as VALIDATION', () => {
      for (const generated of load.generated) {
        const name = generated.path.split('/').pop() as string;
        const file = byName(report, name);
        const bad = Object.values(generated.bad).reduce((a, b) => a + b, 0);
        expect(bad).toBeGreaterThan(0);
        expect(file.received).toBe(generated.records);
        expect(file.failures.VALIDATION).toBe(bad);
      }
    });

    it('writes summary.json, results.csv and a failed-records file per file', () => {
      const transactions = join(reports, 'demo', 'transactions_acme_20261124_003.jsonl');
      expect(readdirSync(transactions).sort()).toEqual([
        'results.csv',
        'summary.json',
        'transactions_acme_20261124_003.failed.jsonl',
      ]);
      const summary = JSON.parse(readFileSync(join(transactions, 'summary.json'), 'utf8')) as FileResult;
      expect(summary).toMatchObject(byName(report, 'transactions_acme_20261124_003.jsonl'));
      const results = readFileSync(join(transactions, 'results.csv'), 'utf8').trim().split('\n');
      expect(results[0]).toBe('line,record_id,operations,outcome,code,error,attempts');
      expect(results.slice(1)).toEqual([
        // U1 comes in a users file processed at the same time: the first try may be before it is there.
        expect.stringMatching(/^1,X1,ADD_TRX(\+ADD_TRX)*,succeeded,200,,\d$/),
        expect.stringMatching(/^2,X2,ADD_TRX(\+ADD_TRX)*,succeeded,200,,\d$/),
        '3,X3,ADD_TRX+ADD_TRX+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,3',
        expect.stringMatching(/^4,X4,,failed,,VALIDATION: amount: .+,0$/),
        '5,X5,ADD_TRX,succeeded,200,,1',
      ]);
      // The failed records, in the partner's own format, ready to fix and send again.
      const failed = readFileSync(join(transactions, 'transactions_acme_20261124_003.failed.jsonl'), 'utf8');
      expect(
        failed
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { transaction_id: string }).transaction_id),
      ).toEqual(['X3', 'X4']);
      // A gzip file's failed records come back as gzip... or plain: either way, only the failed ones.
      const generatedTransactions = load.generated.find((f) => f.kind === 'transactions')!;
      const name = generatedTransactions.path.split('/').pop() as string;
      const failedFile = readdirSync(join(reports, 'demo', name)).find((f) => f.includes('.failed.'))!;
      const bytes = readFileSync(join(reports, 'demo', name, failedFile));
      const text = (bytes[0] === 0x1f ? gunzipSync(bytes) : bytes).toString('utf8');
      const rows = Papa.parse<Record<string, string>>(text.trim(), { header: true }).data;
      expect(rows).toHaveLength(byName(report, name).failed);
      expect(rows.every((row) => row.failure_reason)).toBe(true);
      expect(existsSync(join(reports, 'demo', 'readme.txt', 'summary.json'))).toBe(true);
      expect(existsSync(join(reports, 'ingest.log'))).toBe(true);
    });

    it('stays inside the CRM contract: no 429, at most 100 records a call, every valid record applied once', async () => {
      const sim = await stats(simulator);
      expect(sim.throttled).toBe(0);
      expect(sim.maxRecordsInCall).toBeLessThanOrEqual(100);
      expect(sim.transactionsAppliedMoreThanOnce).toBe(0);
      expect(sim.customersCreated + sim.customersUpdated + sim.transactionsCreated).toBe(report.totals.succeeded);
      expect(sim.customersUpdated).toBe(1);
      expect(report.totals).toMatchObject({ throttled: 0, files: readdirSync(load.directory).length });
      expect(report.totals.apiCalls).toBe(sim.callsAccepted);
    });
  });

  it('ends with the same outcomes when 5% of answers are dropped and 5% fail with 503', async () => {
    // Batches of 10: about 50 calls each, so the faults are bound to strike. More 4404 retries than the other
    // runs: U8's users file must be in before X2's last try in both runs, also on a busy machine (the two run
    // side by side), or the outcomes differ by timing rather than by the faults.
    const smallBatches = ['--batch-size', '10', '--retry-later-attempts', '6'];
    const clean = await startCrmSimulator({ customers: load.customers });
    const faulty = await startCrmSimulator({
      customers: load.customers,
      faults: { dropRate: 0.05, serverErrorRate: 0.05 },
      seed: 'faults',
    });
    try {
      const [expected, actual] = await Promise.all([
        run(clean, reportDir(), { args: smallBatches }),
        run(faulty, reportDir(), { args: smallBatches, env: { CRM_TIMEOUT_MS: '2000' } }),
      ]);
      const outcomes = (report: RunReport) =>
        report.files
          .map(({ name, status, received, succeeded, failed, failures }) => ({
            name,
            status,
            received,
            succeeded,
            failed,
            failures,
          }))
          .sort((a, b) => a.name.localeCompare(b.name));
      expect(outcomes(actual)).toEqual(outcomes(expected));
      const sim = await stats(faulty);
      expect(sim.answersDropped + sim.serverErrorsServed).toBeGreaterThan(0);
      expect(sim.transactionsAppliedMoreThanOnce).toBe(0);
      expect(sim.transactionsCreated).toBe((await stats(clean)).transactionsCreated);
    } finally {
      await Promise.all([clean.close(), faulty.close()]);
    }
  }, 180_000);
});
