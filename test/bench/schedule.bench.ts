/**
 * `npm run bench:schedule`: how the schedule spends the CRM budget (issue 15), each case in one `ingest run` (its
 * own process: SFTP upload, workflow, queue, dispatchers, reports) against the CRM simulator with a scaled limit
 * (default 1000 calls per 15 s: 4x the deployed 1000 a minute; the 4404 retry delay scaled the same way).
 * 1. Initial load: `--users N` (100,000) and `--transactions N` (300,000) of one partner, every customer new (the
 *    simulator holds none), the transactions file landing first (explicit files keep the order given). Prints
 *    calls made / calls needed (ceil(users / 100) + ceil(transactions / 100); target <= 1.02), whether every record
 *    succeeded, and efficiency = least time the limit allows for the calls needed / wall time.
 * 2. Backfill and a small file: a `--backfill N` (800,000) users file, then a `--small N` (3,000: under 1% of the
 *    calls) users file of other customers landing after it. Prints each file's time to finish (finishedAt -
 *    landedAt in its summary.json) and the small file's as a share of the backfill's (target <= 0.1), and whether
 *    the two files' calls overlapped at all: `ingest run` uploads the small file a moment after the backfill, and
 *    while the backfill is still being hashed and moved the small file may be done before the backfill's first
 *    call, which then says nothing of sharing. So by default (`--small-after-calls N`, 1000; 0: off) this case runs
 *    on `ingest up`, uploading the small file over SFTP once the CRM has taken N of the backfill's calls.
 * 3. For each run, pacing as bench:e2e measures it (the simulator's stats): busiest rolling window <= limit, 0 429s
 *    (the run report's totals.throttled, and the simulator's), batch fill >= 0.99.
 * Options: `--limit N` (1000), `--window-s S` (15), `--retry-later-delay S` (60 s scaled with the limit: 15),
 * `--concurrency N` (16), `--function-timeout S` (60), `--jitter-ms N` (500), `--send-window N` (the deployed 100
 * scaled with the limit: 400; 0: the product's default unscaled), `--skip-initial`, `--skip-backfill`, `--keep-reports` (keep the report directories, with ingest.log at
 * INFO; they are kept anyway when a target is missed). The last line printed is one JSON object with every figure.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import { keyFingerprint } from '../../lambdas/adapters/sftp/host-key';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { startCrmSimulator, type SimulatorStats } from '../../lambdas/local/crm-simulator/crm-simulator';
import { generateFiles, type GeneratedFile } from '../../lambdas/local/cli/generate-files';
import type { FileResult, RunReport } from '../../lambdas/local/cli/run-report';
import { alive, finished, readLines, startIngest } from '../e2e/cli';
import { numberOption } from './bench-support';
import { ingestFlags, pacingOf, runIngest, type IngestRunOptions } from './e2e.bench';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USERS = numberOption('--users', 100_000);
const TRANSACTIONS = numberOption('--transactions', 300_000);
const BACKFILL = numberOption('--backfill', 800_000);
const SMALL = numberOption('--small', 3_000);
const SMALL_AFTER_CALLS = numberOption('--small-after-calls', 1000);
const LIMIT = numberOption('--limit', 1000);
const WINDOW_S = numberOption('--window-s', 15);
/** How many times faster than the deployed 1000 calls a minute the scaled limit is. */
const SCALE = LIMIT / WINDOW_S / (1000 / 60);
const RETRY_LATER_DELAY_S = numberOption('--retry-later-delay', Math.max(1, Math.round(60 / SCALE)));
const CONCURRENCY = numberOption('--concurrency', 16);
const FUNCTION_TIMEOUT_S = numberOption('--function-timeout', 60);
const JITTER_MS = numberOption('--jitter-ms', 500);
/**
 * The deployed window (SEND_WINDOW_BATCHES, 100: 6 s of calls at 1000 a minute) scaled with the limit, as the
 * retry delay is, so it holds as many seconds of calls; 0: the product's default as it is.
 */
const SEND_WINDOW = numberOption('--send-window', Math.round(100 * SCALE));
const SKIP_INITIAL = process.argv.includes('--skip-initial');
const SKIP_BACKFILL = process.argv.includes('--skip-backfill');
const KEEP_REPORTS = process.argv.includes('--keep-reports');
const BATCH = 100;
const PARTNER = 'demo';

const TARGETS = { callsRatio: 1.02, smallShare: 0.1, busiest: 1, throttled: 0, fill: 0.99 };

const out = (text = '') => process.stdout.write(`${text}\n`);
const n = (value: number) => value.toLocaleString('en-US');
const mark = (met: boolean) => (met ? 'met' : 'MISSED');
const seconds = (from?: string, to?: string) => (from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : Number.NaN);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FileFigures {
  readonly name: string;
  readonly kind: string;
  readonly status: string;
  readonly received: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  /** From summary.json: seconds from the run's first landing, and the file's own time to finish. */
  readonly landedS: number;
  readonly startedS: number;
  readonly finishedS: number;
  readonly timeToFinishS: number;
  readonly callsMade?: number;
}

/** What one run of a case gives, whether by `ingest run` or `ingest up`. */
interface CaseRun {
  readonly reports: string;
  readonly wallS: number;
  readonly stats: SimulatorStats;
  readonly files: readonly FileResult[];
  /** The run report's totals.apiCalls and totals.throttled (`ingest run` only). */
  readonly totals?: RunReport['totals'];
  readonly commandLine: string;
}

const scaledOptions = (reports: string): Omit<IngestRunOptions, 'inputs' | 'customers'> => ({
  limit: LIMIT,
  windowS: WINDOW_S,
  concurrency: CONCURRENCY,
  functionTimeoutS: FUNCTION_TIMEOUT_S,
  jitterMs: JITTER_MS,
  reports,
  // The handlers' INFO lines ('file held', 'turn awaited') say why a file waited.
  logLevel: 'INFO',
  extraArgs: [
    '--retry-later-delay',
    String(RETRY_LATER_DELAY_S),
    ...(SEND_WINDOW > 0 ? ['--send-window', String(SEND_WINDOW)] : []),
  ],
});

/** The `ingest` command line of a run, as it could be typed again (temporary paths and the simulator's URL). */
function commandLine(args: readonly string[], env: Readonly<Record<string, string>>): string {
  const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
  const vars = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  return [...vars, 'node', relative(process.cwd(), join(__dirname, '../../bin/ingest.js')), ...args]
    .map(quote)
    .join(' ');
}

/** `ingest run` on the files in the order given (explicit files keep it), no customer seeded. */
async function runFiles(label: string, files: readonly GeneratedFile[]): Promise<CaseRun> {
  const reports = mkdtempSync(join(tmpdir(), `bench-schedule-${label}-`));
  const result = await runIngest({ inputs: files.map((file) => file.path), customers: [], ...scaledOptions(reports) });
  const line = commandLine(result.args, result.env);
  if (result.code !== 0) {
    throw new Error(`${line}\nexited ${result.code}; its log: ${join(reports, 'ingest.log')}\n${result.stdout}`);
  }
  const report = JSON.parse(result.stdout) as RunReport;
  return {
    reports,
    wallS: result.wallS,
    stats: result.stats,
    files: report.files,
    totals: report.totals,
    commandLine: line,
  };
}

/**
 * `ingest up`, the first file uploaded over SFTP, the second once the CRM has taken `afterCalls` calls (so it lands
 * while the first is sending), then Ctrl-C once both are reported.
 */
async function upWithLateFile(
  label: string,
  first: GeneratedFile,
  late: GeneratedFile,
  afterCalls: number,
): Promise<CaseRun> {
  const reports = mkdtempSync(join(tmpdir(), `bench-schedule-${label}-`));
  const simulator = await startCrmSimulator({ callsPerWindow: LIMIT, windowMs: WINDOW_S * 1000, customers: [] });
  const options = scaledOptions(reports);
  const args = ['up', '--json', '--partner', PARTNER, ...ingestFlags(options, simulator)];
  const env = { CRM_LIMITER_JITTER_MS: String(JITTER_MS) };
  const started = Date.now();
  const child = startIngest(args, env);
  const exited = finished(child);
  const newClient = () =>
    new SftpClient('bench', { error: () => undefined, end: () => undefined, close: () => undefined });
  let client = newClient();
  try {
    const [connectionLine] = await readLines(child, (lines) => lines.length >= 1, 120_000);
    const connection = JSON.parse(connectionLine as string) as {
      sftp: { host: string; port: number; hostKeyFingerprint: string };
      users: { user: string; password: string }[];
    };
    const user = connection.users[0] as { user: string; password: string };
    // A connection the server ends at once (seen on a loaded machine) is tried again.
    for (let attempt = 1; ; attempt++) {
      try {
        await client.connect({
          host: connection.sftp.host,
          port: connection.sftp.port,
          username: user.user,
          password: user.password,
          hostVerifier: (key: Buffer) => keyFingerprint(key) === connection.sftp.hostKeyFingerprint,
        } as SftpClient.ConnectOptions);
        break;
      } catch (error) {
        if (attempt === 3) throw error;
        await sleep(1000);
        client = newClient();
      }
    }
    const reported = readLines(child, (lines) => lines.length >= 2, 3_600_000);
    await client.put(first.path, `/${basename(first.path)}`);
    const calls = async () =>
      ((await (await fetch(`${simulator.url}/_sim/stats`)).json()) as SimulatorStats).callsAccepted;
    while ((await calls()) < afterCalls) {
      if (child.exitCode !== null) throw new Error(`ingest up exited ${child.exitCode}; log: ${reports}/ingest.log`);
      await sleep(100);
    }
    await client.put(late.path, `/${basename(late.path)}`);
    const files = (await reported).map(
      (line) => JSON.parse(line) as Omit<FileResult, 'status'> & { status: string; error?: string },
    );
    const stuck = files.find((file) => file.status === 'pending');
    if (stuck) throw new Error(`${stuck.name}: its workflow failed (${stuck.error}); log: ${reports}/ingest.log`);
    await client.end();
    child.kill('SIGINT');
    const result = await exited;
    if (result.code !== 0) throw new Error(`ingest up exited ${result.code}: ${result.stderr}`);
    const stats = (await (await fetch(`${simulator.url}/_sim/stats`)).json()) as SimulatorStats;
    return {
      reports,
      wallS: (Date.now() - started) / 1000,
      stats,
      files: files as FileResult[],
      commandLine: `${commandLine(args, env)}  (then over SFTP: put ${basename(first.path)}; once the CRM has taken ${afterCalls} calls, put ${basename(late.path)}; Ctrl-C)`,
    };
  } finally {
    await client.end().catch(() => undefined);
    if (alive(child.pid as number)) child.kill('SIGKILL');
    await simulator.close();
  }
}

/** Each file's figures, from the run's report (or `up`'s lines) and its summary.json; printed. */
function fileFigures(run: CaseRun, files: readonly GeneratedFile[]): FileFigures[] {
  const summaries = files.map((file) => {
    const path = join(run.reports, PARTNER, basename(file.path), 'summary.json');
    if (!existsSync(path)) throw new Error(`no summary.json for ${basename(file.path)} in ${run.reports}`);
    return JSON.parse(readFileSync(path, 'utf8')) as FinalSummary;
  });
  const t0 = Math.min(...summaries.map((summary) => Date.parse(summary.landedAt ?? '')));
  const since = (at?: string) => (at ? (Date.parse(at) - t0) / 1000 : Number.NaN);
  const figures = summaries.map((summary): FileFigures => {
    const reported = run.files.find((file) => file.name === summary.name);
    if (!reported) throw new Error(`${summary.name} is not in the run's report`);
    return {
      name: summary.name,
      kind: reported.kind,
      status: reported.status,
      received: reported.received,
      succeeded: reported.succeeded,
      failed: reported.failed,
      failures: reported.failures,
      landedS: since(summary.landedAt),
      startedS: since(summary.startedAt),
      finishedS: since(summary.finishedAt),
      timeToFinishS: seconds(summary.landedAt, summary.finishedAt),
      ...(summary.calls ? { callsMade: summary.calls.made } : {}),
    };
  });
  out(`  ingest: ${run.commandLine}`);
  for (const file of figures) {
    const failures = Object.entries(file.failures).filter(([, count]) => count > 0);
    out(
      `  ${file.name}: ${file.kind}, ${file.status}, received ${n(file.received)}, succeeded ${n(file.succeeded)}, ` +
        `failed ${n(file.failed)}${failures.length ? ` (${failures.map(([r, c]) => `${r}x${n(c)}`).join(' ')})` : ''}; ` +
        `landed +${file.landedS.toFixed(1)} s, first call queued +${file.startedS.toFixed(1)} s, finished ` +
        `+${file.finishedS.toFixed(1)} s (${file.timeToFinishS.toFixed(1)} s to finish); calls ${file.callsMade ?? '?'}`,
    );
  }
  return figures;
}

/** Pacing of a run as bench:e2e measures it (the simulator's stats), with 429s as the run report counts them too. */
function pacing(run: CaseRun) {
  const measured = pacingOf(run.stats, LIMIT, WINDOW_S, BATCH);
  const throttled = run.totals?.throttled ?? measured.throttled;
  return {
    busiest: measured.busiest,
    maxCallsInWindow: run.stats.maxCallsInWindow,
    throttled,
    throttledAtSimulator: measured.throttled,
    fill: measured.fill,
    spanEfficiency: measured.spanEfficiency,
    callsAccepted: measured.calls,
    callsByOperation: run.stats.calls,
    met:
      measured.busiest <= TARGETS.busiest &&
      throttled === TARGETS.throttled &&
      measured.throttled === TARGETS.throttled &&
      measured.fill >= TARGETS.fill,
  };
}

function printPacing(figures: ReturnType<typeof pacing>, source: string) {
  out(
    `  busiest window / limit            ${figures.busiest.toFixed(3)} (${figures.maxCallsInWindow} calls in ${WINDOW_S} s)   must be <= 1: ${mark(figures.busiest <= TARGETS.busiest)}`,
  );
  out(
    `  429s (${source})${' '.repeat(Math.max(1, 27 - source.length))}${figures.throttled}${source === 'simulator' ? '' : ` (simulator: ${figures.throttledAtSimulator})`}   target 0: ${mark(figures.throttled === 0 && figures.throttledAtSimulator === 0)}`,
  );
  out(
    `  batch fill (records / call / ${BATCH}) ${figures.fill.toFixed(4)}   target >= ${TARGETS.fill}: ${mark(figures.fill >= TARGETS.fill)}`,
  );
  out(
    `  calling span efficiency           ${figures.spanEfficiency.toFixed(3)}   (first to last call; calls by operation ${JSON.stringify(figures.callsByOperation)})`,
  );
}

async function initialLoad(directory: string) {
  out(
    `1. Initial load: ${n(USERS)} users + ${n(TRANSACTIONS)} transactions of partner ${PARTNER}, every customer new, ` +
      `the transactions file landing first`,
  );
  // One seed: the transactions refer to the users file's customers (N00000001...), none of whom the CRM holds.
  const [users, transactions] = await generateFiles({
    users: USERS,
    transactions: TRANSACTIONS,
    outDir: directory,
    customerPrefix: 'N',
    seed: 'initial-load',
  });
  if (users?.kind !== 'users' || transactions?.kind !== 'transactions') throw new Error('generate wrote no load');
  const run = await runFiles('initial', [transactions, users]);
  const files = fileFigures(run, [transactions, users]);
  const paced = pacing(run);
  const totals = run.totals as RunReport['totals'];
  const needed = Math.ceil(USERS / BATCH) + Math.ceil(TRANSACTIONS / BATCH);
  const made = totals.apiCalls;
  const ratio = made / needed;
  const allSucceeded =
    files.every((file) => file.received === file.succeeded && file.failed === 0) &&
    totals.received === USERS + TRANSACTIONS;
  const leastS = (needed / LIMIT) * WINDOW_S;
  const efficiency = leastS / run.wallS;
  out(
    `  calls made / calls needed         ${n(made)} / ${n(needed)} = ${ratio.toFixed(3)}   target <= ${TARGETS.callsRatio}: ${mark(ratio <= TARGETS.callsRatio)}` +
      `   (simulator accepted ${n(paced.callsAccepted)})`,
  );
  out(
    `  every record succeeded            ${allSucceeded ? 'yes' : 'NO'} (${n(totals.succeeded)} of ${n(totals.received)} received; ` +
      `${n(USERS + TRANSACTIONS)} written)`,
  );
  out(
    `  efficiency (least / wall)         ${leastS.toFixed(1)} s / ${run.wallS.toFixed(1)} s = ${efficiency.toFixed(3)}` +
      `   (least: calls needed / limit x window; wall: the ingest process, start to exit)`,
  );
  printPacing(paced, 'totals.throttled');
  return {
    users: USERS,
    transactions: TRANSACTIONS,
    callsMade: made,
    callsNeeded: needed,
    callsRatio: ratio,
    allSucceeded,
    leastS,
    wallS: run.wallS,
    efficiency,
    files,
    pacing: paced,
    reports: run.reports,
    met: ratio <= TARGETS.callsRatio && allSucceeded && paced.met,
  };
}

async function backfillAndSmall(directory: string) {
  const smallCalls = Math.ceil(SMALL / BATCH);
  const backfillCalls = Math.ceil(BACKFILL / BATCH);
  const smallCallShare = smallCalls / (smallCalls + backfillCalls);
  const how =
    SMALL_AFTER_CALLS > 0
      ? `uploaded to ingest up once the CRM has taken ${n(SMALL_AFTER_CALLS)} calls`
      : 'given to ingest run after it';
  out(
    `2. Backfill + small file: ${n(BACKFILL)} users (${n(backfillCalls)} calls), then ${n(SMALL)} users of other customers ` +
      `(${n(smallCalls)} calls, ${(smallCallShare * 100).toFixed(2)}% of the calls) ${how}, partner ${PARTNER}`,
  );
  const [backfill] = await generateFiles({
    users: BACKFILL,
    transactions: 0,
    outDir: directory,
    customerPrefix: 'B',
    seed: 'backfill',
    sequence: 1,
  });
  const [small] = await generateFiles({
    users: SMALL,
    transactions: 0,
    outDir: directory,
    customerPrefix: 'S',
    seed: 'small',
    sequence: 2,
  });
  if (!backfill || !small) throw new Error('generate wrote no load');
  if (SMALL_AFTER_CALLS >= backfillCalls) {
    throw new Error(`--small-after-calls ${SMALL_AFTER_CALLS}: the backfill makes only ${backfillCalls} calls`);
  }
  const run =
    SMALL_AFTER_CALLS > 0
      ? await upWithLateFile('backfill', backfill, small, SMALL_AFTER_CALLS)
      : await runFiles('backfill', [backfill, small]);
  const [big, little] = fileFigures(run, [backfill, small]) as [FileFigures, FileFigures];
  const paced = pacing(run);
  const share = little.timeToFinishS / big.timeToFinishS;
  const allSucceeded = [big, little].every((file) => file.received === file.succeeded && file.failed === 0);
  const made = run.totals?.apiCalls ?? paced.callsAccepted;
  const leastS = ((backfillCalls + smallCalls) / LIMIT) * WINDOW_S;
  // Did the small file send while the backfill was sending? Not if it finished before the backfill's first call.
  const overlapped = little.finishedS > big.startedS;
  out(
    `  small file time / backfill time   ${little.timeToFinishS.toFixed(1)} s / ${big.timeToFinishS.toFixed(1)} s = ${share.toFixed(3)}` +
      `   target <= ${TARGETS.smallShare}: ${mark(share <= TARGETS.smallShare)}   (finishedAt - landedAt of each summary.json)`,
  );
  out(
    `  the files' calls overlapped       ${overlapped ? 'yes' : 'NO'}: the small file queued its first call ` +
      `${Math.abs(little.startedS - big.startedS).toFixed(1)} s ${little.startedS >= big.startedS ? 'after' : 'before'} the backfill's and finished ` +
      `${Math.abs(little.finishedS - big.startedS).toFixed(1)} s ${little.finishedS >= big.startedS ? 'after' : 'before'} the backfill's first call was queued` +
      (overlapped ? '' : '; the share above does not measure sharing (try --small-after-calls N)'),
  );
  out(
    `  every record succeeded            ${allSucceeded ? 'yes' : 'NO'} (${n(big.succeeded + little.succeeded)} of ${n(big.received + little.received)} received)`,
  );
  out(
    `  calls made                        ${n(made)} (needed ${n(backfillCalls + smallCalls)}); ` +
      `efficiency (least / wall) ${leastS.toFixed(1)} s / ${run.wallS.toFixed(1)} s = ${(leastS / run.wallS).toFixed(3)}`,
  );
  printPacing(paced, run.totals ? 'totals.throttled' : 'simulator');
  return {
    backfill: BACKFILL,
    small: SMALL,
    smallAfterCalls: SMALL_AFTER_CALLS,
    smallCallShare,
    backfillTimeS: big.timeToFinishS,
    smallTimeS: little.timeToFinishS,
    smallShare: share,
    overlapped,
    allSucceeded,
    callsMade: made,
    callsNeeded: backfillCalls + smallCalls,
    wallS: run.wallS,
    efficiency: leastS / run.wallS,
    files: [big, little],
    pacing: paced,
    reports: run.reports,
    met: share <= TARGETS.smallShare && allSucceeded && paced.met,
  };
}

async function main() {
  const command = ['npx', 'tsx', relative(process.cwd(), process.argv[1] ?? __filename), ...process.argv.slice(2)];
  out(`command: ${command.join(' ')}`);
  out(
    `settings: limit ${LIMIT} calls / ${WINDOW_S} s (${SCALE.toFixed(2)}x the deployed 1000 / 60 s), retry-later delay ` +
      `${RETRY_LATER_DELAY_S} s, function timeout ${FUNCTION_TIMEOUT_S} s, send window ${SEND_WINDOW > 0 ? SEND_WINDOW : 'default'}, ` +
      `ordering window default, ${CONCURRENCY} dispatchers, arrival jitter allowed ${JITTER_MS} ms, no customer in the CRM beforehand`,
  );
  const directory = mkdtempSync(join(tmpdir(), 'bench-schedule-'));
  const results: Record<string, unknown> = {};
  const kept: string[] = [];
  let met = true;
  try {
    for (const [key, skip, scenario] of [
      ['initialLoad', SKIP_INITIAL, initialLoad],
      ['backfillAndSmall', SKIP_BACKFILL, backfillAndSmall],
    ] as const) {
      if (skip) continue;
      const result = await scenario(join(directory, key));
      const { reports, ...figures } = result;
      results[key] = figures;
      met &&= result.met;
      if (KEEP_REPORTS || !result.met) {
        kept.push(reports);
        out(`  reports and ingest.log kept in ${reports}`);
      } else {
        rmSync(reports, { recursive: true, force: true });
      }
      out();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  out(`targets: ${met ? 'all met' : 'some MISSED (see above)'}`);
  out(
    JSON.stringify({
      bench: 'schedule',
      command: command.join(' '),
      settings: {
        limit: LIMIT,
        windowS: WINDOW_S,
        retryLaterDelayS: RETRY_LATER_DELAY_S,
        functionTimeoutS: FUNCTION_TIMEOUT_S,
        concurrency: CONCURRENCY,
        jitterMs: JITTER_MS,
        sendWindow: SEND_WINDOW > 0 ? SEND_WINDOW : 'default',
      },
      targets: TARGETS,
      ...results,
      met,
      ...(kept.length ? { reportsKept: kept } : {}),
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:schedule: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
