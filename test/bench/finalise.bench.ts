/**
 * `npm run bench:finalise`: the finalise merge (reportFile: source records + every phase's answers -> results.csv,
 * failed records, summary) over records and answers generated in memory, so the figures are the merge's own, not
 * S3's or DynamoDB's. Users with 30% 8006 records (a UPD phase), transactions with 6% 4404 records (two RETRY
 * rounds), at each size of `--sizes` (millions, default 1,5,10). Prints records/s and seconds per million records
 * (CPU time, so other processes on a shared machine do not count; wall time beside it), their ratio to the
 * smallest size (linear: within 20%), peak RSS and peak heap used. Each run is a fresh process pinned to one core
 * (taskset, when present), its heap capped at the function's 1,024 MB; the input generation alone is measured
 * too (`floor`), so what the merge itself costs can be seen. Options: `--sizes 1,5,10`, `--runs N` (default 1).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { CallAnswer, RecordOutcome } from '../../lambdas/core/crm/dispatch-call';
import type { SourceRecord } from '../../lambdas/core/files/read-records';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import { reportFile, type ReportInput, type TextSink } from '../../lambdas/core/ledger/file-report';
import { answerBatcher, draw, mixedFates } from './answers';
import { median, numberOption } from './bench-support';

const CHUNK_RECORDS = 1000;
const HEAP_MB = 1024;

/** Where each record ends: its outcome in each phase it reaches (none: it fails VALIDATION). */
function fates(kind: FileKind, line: number): RecordOutcome[] {
  if (draw(line, 1) < 10) return [];
  return mixedFates(kind, line);
}

async function* sourceRecords(kind: FileKind, records: number): AsyncGenerator<SourceRecord[]> {
  for (let first = 0; first < records; first += CHUNK_RECORDS) {
    const chunk: SourceRecord[] = [];
    for (let i = first; i < Math.min(records, first + CHUNK_RECORDS); i++) {
      const line = i + 2;
      const valid = draw(line, 1) >= 10;
      chunk.push({
        line,
        fields:
          kind === 'users'
            ? {
                customer_id: `C${i}`,
                first_name: 'Ada',
                last_name: 'Alder',
                email: valid ? `user${i}@example.com` : 'not-an-email',
                phone: '',
                country: 'GB',
                created_at: '2026-01-01T00:00:00Z',
                notes: '',
              }
            : {
                transaction_id: `T${i}`,
                customer_id: `C${i}`,
                amount: '12.50',
                currency: valid ? 'EUR' : 'XXX',
                occurred_at: '2026-01-01T00:00:00Z',
              },
      });
    }
    yield chunk;
  }
}

/** One phase's answers in batch order (= line order), 100 records a batch, as the ledger gives them back. */
async function* phaseAnswers(kind: FileKind, records: number, phase: string, at: number): AsyncGenerator<CallAnswer> {
  const batches = answerBatcher(kind, phase, at);
  for (let line = 2; line < records + 2; line++) {
    const outcome = fates(kind, line)[at];
    const full = outcome && batches.add(outcome);
    if (full) yield full;
  }
  const rest = batches.rest();
  if (rest) yield rest;
}

/** The reportFile input for a generated file: the ADD phase and UPD (users) or RETRY1-2 (transactions). */
export function benchInput(kind: FileKind, records: number, sinks: { results: TextSink; failedRecords: TextSink }) {
  const later = kind === 'users' ? ['UPD'] : ['RETRY1', 'RETRY2'];
  return {
    name: kind === 'users' ? 'users_bench.csv' : 'transactions_bench.csv',
    sha256: 'f'.repeat(64),
    kind,
    format: 'csv',
    source: sourceRecords(kind, records),
    addAnswers: phaseAnswers(kind, records, 'ADD', 0),
    laterPhases: later.map((phase, i) => phaseAnswers(kind, records, phase, i + 1)),
    ...sinks,
  } satisfies ReportInput;
}

interface Result {
  records: number;
  seconds: number;
  /** User + system CPU time: what one core spent, whatever else the machine ran meanwhile. */
  cpuSeconds: number;
  peakRssMb: number;
  peakHeapMb: number;
  resultsMb: number;
}

/** One run in this process: `--worker <merge|floor> <kind> <records>`; prints one JSON line. */
async function worker(mode: string, kind: FileKind, records: number) {
  let peakHeap = 0;
  let resultsBytes = 0;
  const sampleHeap = () => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed));
  const timer = setInterval(sampleHeap, 20);
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  const input = benchInput(kind, records, {
    results: { write: (text) => void (resultsBytes += text.length) },
    failedRecords: { write: () => undefined },
  });
  if (mode === 'merge') {
    const summary = await reportFile(input);
    if (summary.received !== records) throw new Error(`received ${summary.received} of ${records}`);
  } else {
    // The floor: the same inputs generated and read through, nothing merged.
    const drain = async (stream: AsyncIterable<unknown>) => {
      for await (const _ of stream) sampleHeap();
    };
    await Promise.all([drain(input.source), drain(input.addAnswers), ...input.laterPhases.map(drain)]);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStarted);
  clearInterval(timer);
  sampleHeap();
  const result: Result = {
    records,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    peakHeapMb: peakHeap / 1024 ** 2,
    resultsMb: resultsBytes / 1024 ** 2,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

function runWorker(mode: string, kind: FileKind, records: number): Result {
  const command = [process.execPath, `--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', __filename];
  const args = [...command, '--worker', mode, kind, String(records)];
  const [file, ...rest] = hasTaskset ? ['taskset', '-c', '0', ...args] : args;
  const out = execFileSync(file as string, rest, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop() as string) as Result;
}

async function main() {
  const sizes = (process.argv[process.argv.indexOf('--sizes') + 1] ?? '')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const millions = process.argv.includes('--sizes') && sizes.length > 0 ? sizes : [1, 5, 10];
  const runs = numberOption('--runs', 1);
  console.log(
    `finalise benchmark: reportFile over generated records and answers, ${runs} run(s) each (median), heap capped at ${HEAP_MB} MB, ${hasTaskset ? 'pinned to core 0' : 'not pinned (no taskset)'}`,
  );
  console.log('users: 30% 8006 -> UPD; transactions: 6% 4404 -> RETRY1 -> RETRY2; 1% VALIDATION\n');
  console.log(
    'kind          | records | records/s | CPU s per 1M | floor CPU s/1M | x first size | wall s per 1M | peak RSS | peak heap',
  );
  for (const kind of ['users', 'transactions'] as const) {
    let firstPerMillion: number | undefined;
    for (const m of millions) {
      const records = Math.round(m * 1e6);
      const results = Array.from({ length: runs }, () => runWorker('merge', kind, records));
      const floor = runWorker('floor', kind, records);
      // Linearity is judged on CPU time: on a shared machine the wall clock also counts other processes' turns.
      const perMillion = median(results.map((r) => r.cpuSeconds)) / m;
      const wallPerMillion = median(results.map((r) => r.seconds)) / m;
      firstPerMillion ??= perMillion;
      console.log(
        [
          kind.padEnd(13),
          `${m}M`.padStart(7),
          `${Math.round(1000 / perMillion)}k`.padStart(9),
          `${perMillion.toFixed(2)} s`.padStart(12),
          `${(floor.cpuSeconds / m).toFixed(2)} s`.padStart(14),
          (perMillion / firstPerMillion).toFixed(2).padStart(12),
          `${wallPerMillion.toFixed(2)} s`.padStart(13),
          `${Math.round(Math.max(...results.map((r) => r.peakRssMb)))} MB`.padStart(8),
          `${Math.round(Math.max(...results.map((r) => r.peakHeapMb)))} MB`.padStart(9),
        ].join(' | '),
      );
    }
  }
  console.log(
    '\nrecords/s from CPU time on one core; target: CPU time per million records at every size within 20% of the first (x first size <= 1.20), memory flat',
  );
}

if (process.argv[2] === '--worker') {
  const [, , , mode = 'merge', kind = 'users', records = '1000000'] = process.argv;
  void worker(mode, kind as FileKind, Number(records));
} else if (require.main === module) {
  void main();
}
