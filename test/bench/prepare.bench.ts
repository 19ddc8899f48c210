/**
 * `npm run bench`: prepare throughput (read + validate + normalise + batch) for 1,000,000 users and
 * 1,000,000 transactions, CSV and CSV.gz, generated on the fly; the same bytes through a bare line splitter
 * as the floor; each stage on its own to show what costs what; and peak RSS preparing a ~1 GB file.
 * Every scenario runs in a fresh process pinned to one core (taskset, when present); figures are medians.
 * Options: `--records N` (default 1,000,000), `--runs N` (default 3), `--big-gb G` (default 1; 0 skips).
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

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const worker = join(__dirname, 'prepare-worker.ts');

interface Result {
  records: number;
  seconds: number;
  peakRssMb: number;
}

function runWorker(stage: string, path: string, kind: string): Result {
  const command = [process.execPath, '--import', 'tsx', worker, stage, path, kind];
  const [file, ...args] = hasTaskset ? ['taskset', '-c', '0', ...command] : command;
  const out = execFileSync(file as string, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop() as string) as Result;
}

function measure(stage: string, path: string, kind: string) {
  const results = Array.from({ length: RUNS }, () => runWorker(stage, path, kind));
  return {
    records: results[0]?.records ?? 0,
    perSecond: median(results.map((r) => r.records / r.seconds)),
    peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
  };
}

const k = (n: number) => `${Math.round(n / 1000)}k`;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-bench-'));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
