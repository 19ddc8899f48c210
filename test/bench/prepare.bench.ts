/**
 * `npm run bench`: prepare throughput (read + validate + normalise + batch) for 1,000,000 users and
 * 1,000,000 transactions, CSV and CSV.gz, generated on the fly; the same bytes through a bare line splitter
 * as the floor; each stage on its own to show what costs what; and peak RSS preparing a ~1 GB file.
 * Every scenario runs in a fresh process pinned to one core (taskset, when present); figures are medians.
 * Then the enqueue: a file prepared and sent through the real SqsCallQueue over an SQS whose every
 * SendMessageBatch takes a fixed round trip, in batches/s, against the same file with no round trip (the
 * parsing bound) and, with `--before`, against another prepare-file.ts (the one before a change).
 * Options: `--records N` (default 1,000,000), `--runs N` (default 3), `--big-gb G` (default 1; 0 skips),
 * `--enqueue-records N` (default 200,000; 0 skips), `--round-trip-ms N` (default 20),
 * `--before path/to/prepare-file.ts`, `--enqueue-only` (skips the throughput and big-file parts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import { median, numberOption } from './bench-support';

const RECORDS = numberOption('--records', 1_000_000);
const RUNS = numberOption('--runs', 3);
const BIG_GB = numberOption('--big-gb', 1);
const STAGES = ['split', 'decode', 'read', 'validate', 'prepare'] as const;
const ENQUEUE_RECORDS = numberOption('--enqueue-records', 200_000);
const ROUND_TRIP_MS = numberOption('--round-trip-ms', 20);
const BEFORE = process.argv.includes('--before') ? process.argv[process.argv.indexOf('--before') + 1] : undefined;
const ENQUEUE_ONLY = process.argv.includes('--enqueue-only');

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const worker = join(__dirname, 'prepare-worker.ts');
const enqueueWorker = join(__dirname, 'enqueue-worker.ts');

interface Result {
  records: number;
  seconds: number;
  peakRssMb: number;
}

/** Runs a worker script pinned to one core and returns the JSON of its last line. */
function runPinned<T>(script: string, ...scriptArgs: string[]): T {
  const command = [process.execPath, '--import', 'tsx', script, ...scriptArgs];
  const [file, ...args] = hasTaskset ? ['taskset', '-c', '0', ...command] : command;
  const out = execFileSync(file as string, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop() as string) as T;
}

const runWorker = (stage: string, path: string, kind: string) => runPinned<Result>(worker, stage, path, kind);

function measure(stage: string, path: string, kind: string) {
  const results = Array.from({ length: RUNS }, () => runWorker(stage, path, kind));
  return {
    records: results[0]?.records ?? 0,
    perSecond: median(results.map((r) => r.records / r.seconds)),
    peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
  };
}

const k = (n: number) => `${Math.round(n / 1000)}k`;

async function throughput(dir: string) {
  console.log(
    `prepare benchmark: ${RECORDS} records a file, median of ${RUNS} runs, ${hasTaskset ? 'pinned to core 0' : 'not pinned (no taskset)'}`,
  );
  const plain = await generateFiles({
    users: RECORDS,
    transactions: RECORDS,
    outDir: join(dir, 'csv'),
    badRate: 0.01,
    seed: 42,
  });
  const gzipped = await generateFiles({
    users: RECORDS,
    transactions: RECORDS,
    outDir: join(dir, 'gz'),
    gzip: true,
    badRate: 0.01,
    seed: 42,
  });
  console.log(
    '\nfile                                   | ' +
      STAGES.map((s) => s.padStart(9)).join(' | ') +
      ' | prepare/split | peak RSS',
  );
  for (const file of [...plain, ...gzipped]) {
    const rates = STAGES.map((stage) => measure(stage, file.path, file.kind));
    const [splitRate, , , , prepareRate] = rates.map((r) => r.perSecond) as number[];
    const name = file.path.slice(dir.length + 1);
    console.log(
      `${name.padEnd(38)} | ${rates.map((r) => `${k(r.perSecond)}/s`.padStart(9)).join(' | ')} | ${((prepareRate as number) / (splitRate as number)).toFixed(2).padStart(13)} | ${Math.round(rates[4]?.peakRssMb ?? 0)} MB`,
    );
  }
  if (BIG_GB > 0) {
    // ~83 bytes a users row: enough rows for about BIG_GB gigabytes.
    const rows = Math.round((BIG_GB * 1024 ** 3) / 83);
    const [big] = await generateFiles({
      users: rows,
      transactions: 0,
      outDir: join(dir, 'big'),
      badRate: 0.01,
      seed: 7,
    });
    if (big) {
      const gb = statSync(big.path).size / 1024 ** 3;
      const result = runWorker('prepare', big.path, 'users');
      console.log(
        `\nbig file: ${gb.toFixed(2)} GB, ${result.records} users: prepare ${k(result.records / result.seconds)}/s, peak RSS ${Math.round(result.peakRssMb)} MB (target < 150 MB)`,
      );
    }
  }
  console.log(
    '\ntargets: prepare >= 500k records/s on one core for CSV; prepare/split >= 0.5; peak RSS < 150 MB for 1 GB',
  );
}

interface EnqueueResult {
  batches: number;
  requests: number;
  maxRequestsInFlight: number;
  seconds: number;
  peakRssMb: number;
}

async function enqueue(dir: string) {
  console.log(
    `\nenqueue benchmark: ${ENQUEUE_RECORDS} records a file, SqsCallQueue over an SQS whose SendMessageBatch takes ${ROUND_TRIP_MS} ms, median of ${RUNS} runs` +
      `\n  prepare+send: the whole prepare and its sends, timed together; sends only: the batches cut first (untimed), then sent`,
  );
  const files = await generateFiles({
    users: ENQUEUE_RECORDS,
    transactions: ENQUEUE_RECORDS,
    outDir: join(dir, 'enqueue'),
    badRate: 0.01,
    seed: 11,
  });
  const roundTrip = String(ROUND_TRIP_MS);
  const scenarios: { label: string; args: string[] }[] = [
    { label: 'prepare+send, no round trip (parsing bound)', args: ['prepare', '0'] },
    ...(BEFORE ? [{ label: 'prepare+send, before', args: ['prepare', roundTrip, BEFORE] }] : []),
    { label: 'prepare+send, now', args: ['prepare', roundTrip] },
    ...(BEFORE ? [{ label: 'sends only, before', args: ['sends', roundTrip, BEFORE] }] : []),
    { label: 'sends only, now', args: ['sends', roundTrip] },
  ];
  if (BEFORE) console.log(`  before: ${BEFORE}`);
  console.log(`\n${'file'.padEnd(12)} | ${'scenario'.padEnd(43)} | batches/s | requests | max out | peak RSS`);
  for (const file of files) {
    const rates = new Map<string, number>();
    for (const { label, args } of scenarios) {
      const [mode, ...rest] = args as [string, ...string[]];
      const results = Array.from({ length: RUNS }, () =>
        runPinned<EnqueueResult>(enqueueWorker, mode, file.path, file.kind, ...rest),
      );
      const perSecond = median(results.map((r) => r.batches / r.seconds));
      rates.set(label, perSecond);
      const r = results[0] as EnqueueResult;
      console.log(
        `${file.kind.padEnd(12)} | ${label.padEnd(43)} | ${Math.round(perSecond).toString().padStart(9)} | ${String(r.requests).padStart(8)} | ${String(r.maxRequestsInFlight).padStart(7)} | ${Math.round(Math.max(...results.map((x) => x.peakRssMb)))} MB`,
      );
    }
    const ratio = (now: string, then: string) => {
      const a = rates.get(now);
      const b = rates.get(then);
      return a && b ? `${(a / b).toFixed(1)}x` : '-';
    };
    console.log(
      `${file.kind.padEnd(12)} | now/before: prepare+send ${ratio('prepare+send, now', 'prepare+send, before')}, sends only ${ratio('sends only, now', 'sends only, before')} (target >= 10x); prepare+send now/parsing bound ${ratio('prepare+send, now', 'prepare+send, no round trip (parsing bound)')}`,
    );
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-bench-'));
  try {
    if (!ENQUEUE_ONLY) await throughput(dir);
    if (ENQUEUE_RECORDS > 0) await enqueue(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
