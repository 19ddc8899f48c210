/**
 * `npm run bench:scale`: each step that reads a whole file, as its use case (classify: identifyFile; prepare:
 * preparePhaseSlice; finalise: finaliseFile), on real generated partner files (users and transactions; CSV, gzip
 * CSV, JSON Lines) at each size of `--records`, served by an object store over local files with ranged reads.
 * Each step runs in a fresh process pinned to one core (taskset, when present) with the heap capped at the
 * functions' memory (1,769 MB, or `--memory MB`). Prints per step and file: records/s and MB/s of file bytes (CPU
 * time), peak RSS, then at Lambda's CPU share (1,769 MB is one vCPU, 1,024 MB 0.58) the records one invocation
 * takes in 840 s (15 minutes less the 60 s slice margin) and the invocations a 10 GiB file of that format needs; finalise's CPU seconds per million
 * records at each size against the smallest (linear: at most 20% more per record); for gzip, what resuming costs
 * (`resume-end`: the whole file inflated and dropped, as a slice resuming near the end does) and the invocations a
 * 10 GiB gzip file then needs per step. Files are generated once per size and removed.
 * Options: `--records 1000000,10000000`, `--formats csv,csv.gz,jsonl`, `--steps classify,prepare,finalise,resume-end`,
 * `--kinds users,transactions`, `--runs N` (median, default 1), `--memory MB` (default 1769), `--all-succeeded` (finalise's answers: every ADD
 * succeeds, instead of 30% 8006 -> UPD for users and 6% 4404 -> RETRY1 -> RETRY2 for transactions).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import { generateFiles } from '../../lambdas/local/cli/generate-files';
import { WHOLE_FILE_MEMORY_MB } from '../../lambdas/contracts/infrastructure';
import { median, numberOption } from './bench-support';

/**
 * The whole-file steps' memory (their contracts: WHOLE_FILE_MEMORY_MB) or `--memory MB`, as the heap cap, and the
 * CPU share Lambda gives it: memory / 1,769 MB of a vCPU, at most one (a second one does nothing for one thread).
 */
const HEAP_MB = numberOption('--memory', WHOLE_FILE_MEMORY_MB);
const LAMBDA_VCPU = Math.min(1, HEAP_MB / 1769);
/** One invocation's working time: the 15-minute timeout less the 60 s margin a slice keeps. */
const INVOCATION_S = 840;
/** The largest file accepted (MAX_FILE_SIZE_BYTES), as uploaded. */
const FILE_BYTES = 10 * 1024 ** 3;

function listOption(flag: string, fallback: readonly string[]): string[] {
  const at = process.argv.indexOf(flag);
  if (at === -1) return [...fallback];
  return (process.argv[at + 1] ?? '').split(',').filter(Boolean);
}

const SIZES = listOption('--records', ['1000000', '10000000']).map(Number);
const FORMATS = listOption('--formats', ['csv', 'csv.gz', 'jsonl']);
const STEPS = listOption('--steps', ['classify', 'prepare', 'finalise', 'resume-end']);
const KINDS = listOption('--kinds', ['users', 'transactions']) as FileKind[];
const RUNS = numberOption('--runs', 1);
const ANSWERS = process.argv.includes('--all-succeeded') ? 'ok' : 'mixed';

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const worker = join(__dirname, 'scale-worker.ts');

interface StepResult {
  records?: number;
  seconds: number;
  cpuSeconds: number;
  peakRssMb: number;
  writtenMb: number;
}

interface LinesResult {
  records: number;
  accepted: number;
  sha256: string;
}

/** Runs the worker, pinned with the heap cap for a measured step; returns the JSON of its last line. */
function runWorker<T>(pinned: boolean, ...args: string[]): T {
  const command = [process.execPath, `--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', worker, ...args];
  const [file, ...rest] = pinned && hasTaskset ? ['taskset', '-c', '0', ...command] : command;
  const out = execFileSync(file as string, rest, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop() as string) as T;
}

const k = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${Math.round(n / 1000)}k`);
const size = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1000}k`);

interface Row {
  step: string;
  kind: FileKind;
  format: string;
  records: number;
  bytes: number;
  perCpuSecond: number;
  cpuPerMillion: number;
  mbPerSecond: number;
  peakRssMb: number;
}

interface FileFacts {
  bytes: number;
  records: number;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-scale-'));
  const rows: Row[] = [];
  const facts = new Map<string, FileFacts>();
  console.log(
    `scale benchmark: steps ${STEPS.join(',')} on ${KINDS.join(',')} files (${FORMATS.join(',')}) of ${SIZES.map(size).join(',')} records; ` +
      `${RUNS} run(s) each (median), heap capped at ${HEAP_MB} MB, ${hasTaskset ? 'pinned to core 0' : 'not pinned (no taskset)'}; ` +
      `finalise answers: ${ANSWERS === 'mixed' ? 'users 30% 8006 -> UPD, transactions 6% 4404 -> RETRY1 -> RETRY2' : 'every ADD succeeded'}`,
  );
  console.log(
    `records/s and MB/s from CPU time on one core; at Lambda: x ${LAMBDA_VCPU.toFixed(2)} vCPU, ${INVOCATION_S} s an invocation; 10 GiB = ${FILE_BYTES} bytes as uploaded\n`,
  );
  console.log(
    'step     | kind         | format | records | bytes/rec | records/s |   MB/s | peak RSS | at Lambda r/s | per invocation | 10 GiB: records | invocations',
  );
  try {
    for (const records of SIZES) {
      const sizeDir = join(dir, String(records));
      const started = Date.now();
      const files = new Map<string, string>();
      for (const format of FORMATS) {
        const generated = await generateFiles({
          users: KINDS.includes('users') ? records : 0,
          transactions: KINDS.includes('transactions') ? records : 0,
          outDir: join(sizeDir, format),
          format: format === 'jsonl' ? 'jsonl' : 'csv',
          gzip: format === 'csv.gz',
          badRate: 0.01,
          seed: 42,
        });
        for (const file of generated) files.set(`${file.kind}:${format}`, file.path);
      }
      console.error(`  (generated ${size(records)}-record files in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
      for (const kind of KINDS) {
        for (const format of FORMATS) {
          const path = files.get(`${kind}:${format}`) as string;
          const key = relative(dir, path);
          const bytes = statSync(path).size;
          facts.set(`${kind}:${format}:${records}`, { bytes, records });
          const linesFile = `${path}.lines`;
          const needsLines = STEPS.includes('prepare') || STEPS.includes('finalise');
          const lines = needsLines ? runWorker<LinesResult>(false, 'lines', dir, key, kind, linesFile) : undefined;
          for (const step of STEPS) {
            // Resuming costs a plain file a ranged GET; only a gzip file pays for the text before the checkpoint.
            if (step === 'resume-end' && !format.endsWith('.gz')) continue;
            const results = Array.from({ length: RUNS }, () =>
              runWorker<StepResult>(true, step, dir, key, kind, linesFile, lines?.sha256 ?? '', ANSWERS),
            );
            if (lines && results.some((r) => r.records !== undefined && r.records !== lines.records)) {
              throw new Error(`${step} ${key}: records ${results.map((r) => r.records).join(',')} != ${lines.records}`);
            }
            const cpuSeconds = median(results.map((r) => r.cpuSeconds));
            const row: Row = {
              step,
              kind,
              format,
              records,
              bytes,
              perCpuSecond: records / cpuSeconds,
              cpuPerMillion: cpuSeconds / (records / 1e6),
              mbPerSecond: bytes / 1e6 / cpuSeconds,
              peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
            };
            rows.push(row);
            printRow(row);
          }
        }
      }
      rmSync(sizeDir, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printArithmetic(rows, facts);
  printGzipResume(rows);
}

/**
 * A gzip slice resuming at text position p first inflates and drops p (`resume-end` measures that rate), so each
 * later slice has less of its invocation left for records: slice n gets (840 s - p / skip rate) x step rate more.
 * Prints, per step at the largest size, the invocations a 10 GiB gzip file needs that way (against the flat
 * figure above) and the most text a slice can drop inside one invocation: past it a gzip file cannot be finished.
 */
function printGzipResume(rows: Row[]) {
  const largest = Math.max(...SIZES);
  const skips = rows.filter((r) => r.step === 'resume-end' && r.records === largest);
  if (skips.length === 0) return;
  console.log(
    `\ngzip slices inflate the text before their checkpoint again (resume-end: the rate it is dropped at), at ${size(largest)} records:`,
  );
  for (const skip of skips) {
    const skipPerSecond = skip.perCpuSecond * LAMBDA_VCPU;
    const fileRecords = atLambda(skip).fileRecords;
    console.log(
      `  ${skip.kind} ${skip.format}: dropped at ${k(skip.perCpuSecond)} records/s (${skip.mbPerSecond.toFixed(1)} MB/s of gzip), at Lambda ${k(skipPerSecond)}/s: ` +
        `one slice can drop at most ${k(skipPerSecond * INVOCATION_S)} records (${((skipPerSecond * INVOCATION_S) / fileRecords).toFixed(1)} x a 10 GiB gzip file's ${k(fileRecords)})`,
    );
    for (const row of rows.filter((r) => r.kind === skip.kind && r.format === skip.format && r.records === largest)) {
      if (row.step === 'resume-end') continue;
      const perSecond = row.perCpuSecond * LAMBDA_VCPU;
      let done = 0;
      let invocations = 0;
      while (done < fileRecords && invocations < 10_000) {
        const left = INVOCATION_S - done / skipPerSecond;
        if (left <= 0) break;
        done += left * perSecond;
        invocations++;
      }
      console.log(
        `    ${row.step}: ${done >= fileRecords ? `${invocations} invocations` : 'cannot finish'} (flat, without re-inflating: ${atLambda(row).invocations})`,
      );
    }
  }
}

/** Records one invocation takes at Lambda's CPU share, and invocations for a 10 GiB file of the row's format. */
function atLambda(row: Pick<Row, 'perCpuSecond' | 'bytes' | 'records'>) {
  const perSecond = row.perCpuSecond * LAMBDA_VCPU;
  const perInvocation = perSecond * INVOCATION_S;
  const bytesPerRecord = row.bytes / row.records;
  const fileRecords = FILE_BYTES / bytesPerRecord;
  return { perSecond, perInvocation, bytesPerRecord, fileRecords, invocations: Math.ceil(fileRecords / perInvocation) };
}

function printRow(row: Row) {
  const lambda = atLambda(row);
  console.log(
    [
      row.step.padEnd(8),
      row.kind.padEnd(12),
      row.format.padEnd(6),
      size(row.records).padStart(7),
      lambda.bytesPerRecord.toFixed(1).padStart(9),
      k(row.perCpuSecond).padStart(9),
      row.mbPerSecond.toFixed(1).padStart(6),
      `${Math.round(row.peakRssMb)} MB`.padStart(8),
      k(lambda.perSecond).padStart(13),
      k(lambda.perInvocation).padStart(14),
      k(lambda.fileRecords).padStart(15),
      String(lambda.invocations).padStart(11),
    ].join(' | '),
  );
}

function printArithmetic(rows: Row[], facts: Map<string, FileFacts>) {
  const largest = Math.max(...SIZES);
  console.log(
    '\nthe file sizes measured (bytes per record as uploaded; gzip ratio = plain CSV bytes / gzip CSV bytes):',
  );
  for (const kind of KINDS) {
    const csv = facts.get(`${kind}:csv:${largest}`);
    const gz = facts.get(`${kind}:csv.gz:${largest}`);
    if (!csv || !gz) continue;
    const perRecord = csv.bytes / csv.records;
    const ratio = csv.bytes / gz.bytes;
    console.log(
      `  ${kind}: ${perRecord.toFixed(1)} bytes a record in plain CSV, gzip ratio ${ratio.toFixed(2)} (${(gz.bytes / gz.records).toFixed(1)} bytes a record gzipped): ` +
        `10 GiB plain = ${FILE_BYTES} / ${perRecord.toFixed(1)} = ${k(FILE_BYTES / perRecord)} records; ` +
        `10 GiB gzip = ${FILE_BYTES} x ${ratio.toFixed(2)} / ${perRecord.toFixed(1)} = ${k((FILE_BYTES * ratio) / perRecord)} records (${((FILE_BYTES * ratio) / 1024 ** 3).toFixed(0)} GiB of text)`,
    );
  }
  console.log(
    `\ninvocations for a 10 GiB file (records / (records/s x ${LAMBDA_VCPU.toFixed(2)} x ${INVOCATION_S} s)), at ${size(largest)} records:`,
  );
  for (const row of rows.filter((r) => r.records === largest && r.format !== 'jsonl')) {
    const lambda = atLambda(row);
    console.log(
      `  ${row.step} ${row.kind} ${row.format}: ${k(lambda.fileRecords)} / (${k(row.perCpuSecond)} x ${LAMBDA_VCPU.toFixed(2)} x ${INVOCATION_S}) = ${k(lambda.fileRecords)} / ${k(lambda.perInvocation)} = ${(lambda.fileRecords / lambda.perInvocation).toFixed(1)} -> ${lambda.invocations}`,
    );
  }
  const finalise = rows.filter((r) => r.step === 'finalise');
  if (finalise.length > 0 && SIZES.length > 1) {
    console.log(
      '\nfinalise, CPU seconds per million records (linear: x <= 1.20 against the smallest size at every size):',
    );
    for (const kind of KINDS) {
      for (const format of FORMATS) {
        const mine = finalise.filter((r) => r.kind === kind && r.format === format);
        const first = mine[0];
        if (!first || mine.length < 2) continue;
        const ratios = mine.map(
          (r) =>
            `${size(r.records)} ${r.cpuPerMillion.toFixed(2)} s (x ${(r.cpuPerMillion / first.cpuPerMillion).toFixed(2)})`,
        );
        // As bench:finalise: no size may cost more than 20% more per record than the smallest. Below 1 is start-up
        // (module loading, JIT) that weighs on a run of a few CPU seconds, not a merge that gets cheaper.
        const linear = mine.every((r) => r.cpuPerMillion / first.cpuPerMillion <= 1.2);
        console.log(`  ${kind} ${format}: ${ratios.join(', ')}: ${linear ? 'linear' : 'NOT linear'}`);
      }
    }
  }
}

void main();
