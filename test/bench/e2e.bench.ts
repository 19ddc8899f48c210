/**
 * `npm run bench:e2e`: a whole load through `ingest run` (its own process: SFTP upload, workflow, queue,
 * dispatchers, CRM calls, reports) against the CRM simulator with a scaled limit (default 1000 calls per 15 s,
 * so the run takes three minutes instead of twelve).
 * Load: `--users N` (200,000) new customers and `--transactions N` (1,000,000) for customers the CRM already
 * holds (seeded), so every call is needed exactly once and the run can be measured against the limit.
 * Prints: wall time against the least the limit allows (calls / limit x window; efficiency target >= 0.9),
 * the same for the calling span (first to last call), batch fill (records per call / batch size; target
 * >= 0.98), 429s (target 0), the busiest window against the limit, and the peak RSS of the run's processes.
 * Options: `--limit N` (1000), `--window-s S` (15), `--concurrency N` (16), `--runs N` (1),
 * `--jitter-ms N` (500: the limiter's allowance for a call's lateness, as deployed; not scaled), `--existing R` (0: the share of the users file's customers the CRM already has, which go ADD, 8006, then UPD),
 * `--function-timeout S` (900: every handler's timeout, as `ingest run --function-timeout`, so a scaled run makes
 * the steps slice as a full load would at Lambda's 15 minutes). Every record must be accounted for
 * (received = succeeded + failed = users + transactions), or the bench fails.
 */
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CrmCustomer } from '../../lambdas/core/files/record-schemas';
import { startCrmSimulator, type SimulatorStats } from '../../lambdas/local/crm-simulator/crm-simulator';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import type { RunReport } from '../../lambdas/local/cli/run-report';
import { seededCustomers } from '../fixtures/crm-records';
import { median, numberOption } from './bench-support';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USERS = numberOption('--users', 200_000);
const TRANSACTIONS = numberOption('--transactions', 1_000_000);
const LIMIT = numberOption('--limit', 1000);
const WINDOW_S = numberOption('--window-s', 15);
const CONCURRENCY = numberOption('--concurrency', 16);
const RUNS = numberOption('--runs', 1);
const EXISTING = numberOption('--existing', 0);
const FUNCTION_TIMEOUT_S = numberOption('--function-timeout', 900);
/**
 * How late a call may reach the CRM after its slot (CRM_LIMITER_JITTER_MS): not scaled with the window, as
 * lateness is event-loop and network lag, which a shorter window does not shorten (scaled, 125 ms of 15 s, one
 * busy local process made 63-83 calls of 28,000 late enough for a 429).
 */
const JITTER_MS = numberOption('--jitter-ms', 500);
const BATCH = 100;

/** Resident set of a process and its descendants, in bytes, from /proc. */
function treeRss(root: number): { total: number; byPid: Map<number, number> } {
  const byPid = new Map<number, number>();
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const visit = (pid: number) => {
    try {
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      byPid.set(pid, Number(rss ?? 0) * 1024);
    } catch {
      return;
    }
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(root);
  return { total: [...byPid.values()].reduce((a, b) => a + b, 0), byPid };
}

async function writeLoad(directory: string): Promise<CrmCustomer[]> {
  // Transactions for customers S..., who are in the CRM already; the users file brings new customers G....
  const [existingUsers] = await generateFiles({
    users: USERS,
    transactions: TRANSACTIONS,
    outDir: directory,
    customerPrefix: 'S',
    seed: 'bench',
  });
  rmSync(existingUsers!.path);
  const [users] = await generateFiles({ users: USERS, transactions: 0, outDir: directory, customerPrefix: 'G' });
  // Uploaded in name order: the users file first.
  renameSync(users!.path, join(directory, 'a_users_demo_20261124_002.csv'));
  // The customers of the transactions, and the first `--existing` share of the users file's (8006, then UPD).
  return [...seededCustomers('S', USERS), ...seededCustomers('G', Math.round(USERS * EXISTING))];
}

/** One `ingest run` of a bench: its own process, against a CRM simulator started here with the scaled limit. */
export interface IngestRunOptions {
  /** Files or directories, in the order `ingest run` is given them. */
  readonly inputs: readonly string[];
  /** Customers the CRM holds before the run. */
  readonly customers: readonly CrmCustomer[];
  readonly limit: number;
  readonly windowS: number;
  readonly concurrency: number;
  readonly functionTimeoutS: number;
  readonly jitterMs: number;
  /** `--report-dir`: where the run writes its reports and ingest.log (the caller removes it). */
  readonly reports: string;
  /** @default 'WARN' */
  readonly logLevel?: string;
  /** More `ingest run` flags (`--retry-later-delay 15`). */
  readonly extraArgs?: readonly string[];
}

export interface IngestRun {
  readonly code: number | null;
  readonly stdout: string;
  /** From the start of the process to its exit. */
  readonly wallS: number;
  readonly stats: SimulatorStats;
  readonly peakTotal: number;
  readonly peakMain: number;
  /** The `ingest` arguments (after `node bin/ingest.js`) and the environment it was given beyond this one's. */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** The flags of a bench's `ingest run` or `ingest up`: the simulator, the scaled limit, reports, log level, timeout. */
export function ingestFlags(
  options: Omit<IngestRunOptions, 'inputs' | 'customers' | 'jitterMs'>,
  simulator: { readonly url: string; readonly token: string },
): string[] {
  return [
    '--crm-url',
    simulator.url,
    '--crm-token',
    simulator.token,
    '--calls-per-minute',
    String(options.limit),
    '--limit-window',
    String(options.windowS),
    '--concurrency',
    String(options.concurrency),
    '--report-dir',
    options.reports,
    '--log-level',
    options.logLevel ?? 'WARN',
    '--function-timeout',
    String(options.functionTimeoutS),
    ...(options.extraArgs ?? []),
  ];
}

/** Runs `ingest run` to its end as its own process, sampling its RSS; the simulator's stats say how it paced. */
export async function runIngest(options: IngestRunOptions): Promise<IngestRun> {
  const simulator = await startCrmSimulator({
    callsPerWindow: options.limit,
    windowMs: options.windowS * 1000,
    customers: [...options.customers],
  });
  const args = ['run', ...options.inputs, '--json', ...ingestFlags(options, simulator)];
  const extraEnv = { CRM_LIMITER_JITTER_MS: String(options.jitterMs) };
  const env = { ...process.env, ...extraEnv };
  const started = Date.now();
  // BENCH_CPU_PROFILE=DIR writes a CPU profile of the ingest process there (open it in Chrome's DevTools).
  const profile = process.env.BENCH_CPU_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`]
    : [];
  const child = spawn(process.execPath, [...profile, join(__dirname, '../../bin/ingest.js'), ...args], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  let peakTotal = 0;
  let peakMain = 0;
  const sampler = setInterval(() => {
    const { total, byPid } = treeRss(child.pid!);
    peakTotal = Math.max(peakTotal, total);
    peakMain = Math.max(peakMain, byPid.get(child.pid!) ?? 0);
  }, 250);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(sampler);
  const wallS = (Date.now() - started) / 1000;
  const stats = (await (await fetch(`${simulator.url}/_sim/stats`)).json()) as SimulatorStats;
  await simulator.close();
  return { code, stdout, wallS, stats, peakTotal, peakMain, args, env: extraEnv };
}

/**
 * How a run paced, from the simulator: calls accepted, the least time the limit allows for them, the calling
 * span's efficiency (first to last call), batch fill (records applied / (calls x batch size)), 429s, and the
 * busiest rolling window against the limit.
 */
export function pacingOf(stats: SimulatorStats, limit: number, windowS: number, batchSize = BATCH) {
  const calls = stats.callsAccepted;
  const spanS = ((stats.lastCallAt ?? 0) - (stats.firstCallAt ?? 0)) / 1000;
  return {
    calls,
    minimumS: (calls * windowS) / limit,
    spanEfficiency: ((calls - 1) * windowS) / limit / spanS,
    fill: stats.recordsApplied / (calls * batchSize),
    throttled: stats.throttled,
    busiest: stats.maxCallsInWindow / limit,
  };
}

async function runOnce(directory: string, customers: CrmCustomer[]) {
  const reports = mkdtempSync(join(tmpdir(), 'bench-e2e-reports-'));
  let run: IngestRun;
  try {
    run = await runIngest({
      inputs: [directory],
      customers,
      limit: LIMIT,
      windowS: WINDOW_S,
      concurrency: CONCURRENCY,
      functionTimeoutS: FUNCTION_TIMEOUT_S,
      jitterMs: JITTER_MS,
      reports,
    });
  } finally {
    rmSync(reports, { recursive: true, force: true });
  }
  const { code, stdout, wallS, stats, peakTotal, peakMain } = run;
  if (code !== 0) throw new Error(`ingest run exited ${code}`);
  const report = JSON.parse(stdout) as RunReport;
  const { received, succeeded, failed } = report.totals;
  if (received !== USERS + TRANSACTIONS || succeeded + failed !== received) {
    throw new Error(`records not accounted for: ${JSON.stringify(report.totals)}, ${USERS + TRANSACTIONS} written`);
  }
  const { calls, minimumS, spanEfficiency, fill, throttled, busiest } = pacingOf(stats, LIMIT, WINDOW_S);
  return {
    wallS,
    calls,
    minimumS,
    efficiency: minimumS / wallS,
    spanEfficiency,
    fill,
    throttled,
    busiest,
    records: received,
    succeeded,
    failed,
    peakTotal,
    peakMain,
  };
}

async function main() {
  const directory = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
  try {
    process.stdout.write(
      `writing ${USERS.toLocaleString()} users and ${TRANSACTIONS.toLocaleString()} transactions...\n`,
    );
    const customers = await writeLoad(directory);
    const runs: Awaited<ReturnType<typeof runOnce>>[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const result = await runOnce(directory, customers);
      runs.push(result);
      process.stdout.write(
        `run ${run}: ${result.wallS.toFixed(1)} s wall, ${result.calls} calls, efficiency ${result.efficiency.toFixed(3)}\n`,
      );
    }
    const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MB`;
    const pick = (field: keyof (typeof runs)[number]) => median(runs.map((r) => r[field]));
    const worst = runs.reduce((a, b) => (b.busiest > a.busiest ? b : a));
    process.stdout.write(
      [
        `ingest run, ${USERS.toLocaleString()} users (${Math.round(EXISTING * 100)}% already in the CRM) + ${TRANSACTIONS.toLocaleString()} transactions, limit ${LIMIT} calls / ${WINDOW_S} s, ${CONCURRENCY} dispatchers, function timeout ${FUNCTION_TIMEOUT_S} s, arrival jitter allowed ${JITTER_MS} ms (medians of ${RUNS} run(s))`,
        `  records received ${pick('records')}, succeeded ${pick('succeeded')}, failed ${pick('failed')} (every one accounted for)`,
        `  CRM calls ${pick('calls')}; least time the limit allows ${pick('minimumS').toFixed(1)} s; wall ${pick('wallS').toFixed(1)} s`,
        `  efficiency (least / wall)          ${pick('efficiency').toFixed(3)}   target >= 0.9`,
        `  calling span efficiency            ${pick('spanEfficiency').toFixed(3)}   (first to last call)`,
        `  batch fill (records / call / 100)  ${pick('fill').toFixed(4)}  target >= 0.98`,
        `  429s                               ${pick('throttled')}       target 0`,
        `  busiest window / limit             ${worst.busiest.toFixed(3)}   must be <= 1`,
        `  peak RSS: ingest process ${mb(pick('peakMain'))}, with its helpers ${mb(pick('peakTotal'))}`,
      ].join('\n') + '\n',
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

// Imported by other benches for runIngest and pacingOf: the load runs only when this file is the one run.
if (require.main === module) void main();
