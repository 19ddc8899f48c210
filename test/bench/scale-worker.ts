/**
 * One step of `npm run bench:scale` in its own process, so its time and peak RSS are its own:
 * `scale-worker.ts <step> <root> <key> <kind> [linesFile] [fileId] [answers]` prints one JSON line.
 * Steps: `classify` (identifyFile), `prepare` (preparePhaseSlice, ADD phase, one slice to the end, the call queue
 * a no-op sink), `finalise` (finaliseFile: the source re-read and merged with generated answers, results.csv and
 * the failed-records file written to byte-counting sinks), and `lines` (not timed: the lines the ADD phase would
 * send, i.e. those that pass validation, written as uint32 to `linesFile`, and the file's SHA-256, from which
 * finalise's answers are generated, so the answers match the real file line for line), and `resume-end` (a slice
 * resuming at the file's last checkpoint: for gzip, the whole file inflated again and dropped).
 */
import { createReadStream, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { CallAnswer, RecordOutcome } from '../../lambdas/core/crm/dispatch-call';
import type { Encoding } from '../../lambdas/core/config';
import { ErrorNames, PipelineError } from '../../lambdas/core/errors';
import { encodingFromName } from '../../lambdas/core/files/file-encoding';
import { sha256Of } from '../../lambdas/core/files/file-identity';
import { identifyFile } from '../../lambdas/core/files/identify-file';
import type { ObjectHead, ObjectRef, ObjectStore, TextUpload } from '../../lambdas/core/files/object-store';
import { readFromPosition } from '../../lambdas/core/files/read-from';
import { readRecords, type ReadPosition } from '../../lambdas/core/files/read-records';
import { invalid, validateRecord, type FileKind } from '../../lambdas/core/files/record-schemas';
import type { PhaseState } from '../../lambdas/core/ledger/phase-counters';
import { finaliseFile } from '../../lambdas/core/workflow/finalise-file';
import { preparePhaseSlice } from '../../lambdas/core/workflow/prepare-phase';
import { answerBatcher, mixedFates } from './answers';

const ACCEPTED: readonly Encoding[] = ['csv', 'jsonl', 'gzip'];
const TEN_GIB = 10 * 1024 ** 3;

/**
 * The object store port over local files (`<root>/<key>`, whatever the bucket), reads streamed with ranges as S3's
 * ranged GET; writes go to byte-counting sinks, and `move`/`copy` only record the call (the archive copy is S3's
 * server-side work, not the step's), so the figures are the steps' own.
 */
export class LocalFileStore implements ObjectStore {
  writtenBytes = 0;

  constructor(private readonly root: string) {}

  private path(ref: ObjectRef) {
    return join(this.root, ref.key);
  }

  async head(ref: ObjectRef): Promise<ObjectHead> {
    try {
      return { size: statSync(this.path(ref)).size, metadata: {} };
    } catch {
      throw new PipelineError(ErrorNames.fileGone, `${ref.key} is not there`);
    }
  }

  async tags(): Promise<Readonly<Record<string, string>>> {
    return {};
  }

  read(ref: ObjectRef, range?: { start: number; end: number }): AsyncIterable<Uint8Array> {
    return createReadStream(this.path(ref), { highWaterMark: 64 * 1024, ...(range ?? {}) });
  }

  async move(): Promise<boolean> {
    return true;
  }

  async copy(): Promise<void> {}

  async put(_ref: ObjectRef, body: string): Promise<void> {
    this.writtenBytes += Buffer.byteLength(body);
  }

  upload(): TextUpload {
    return {
      write: async (text) => void (this.writtenBytes += Buffer.byteLength(text)),
      end: async () => undefined,
      abort: async () => undefined,
    };
  }
}

/** The outcome of an accepted record in each phase it reaches. `mixed`: see mixedFates; `ok`: every ADD succeeds. */
function fates(kind: FileKind, line: number, answers: string): RecordOutcome[] {
  if (answers !== 'mixed') return [{ line, status: 'succeeded', code: 200 }];
  return mixedFates(kind, line);
}

/** The accepted lines, streamed from the uint32 file `lines` wrote: O(1) memory whatever the file's size. */
async function* acceptedLines(linesFile: string): AsyncGenerator<number> {
  const handle = await open(linesFile, 'r');
  const buffer = Buffer.alloc(64 * 1024);
  try {
    for (let position = 0; ;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      for (let at = 0; at + 4 <= bytesRead; at += 4) yield buffer.readUInt32LE(at);
    }
  } finally {
    await handle.close();
  }
}

/** One phase's answers in batch (= line) order, 100 records a batch, as the ledger gives them back. */
async function* phaseAnswers(
  linesFile: string,
  kind: FileKind,
  phase: string,
  at: number,
  answers: string,
): AsyncGenerator<CallAnswer> {
  const batches = answerBatcher(kind, phase, at);
  for await (const line of acceptedLines(linesFile)) {
    const outcome = fates(kind, line, answers)[at];
    const full = outcome && batches.add(outcome);
    if (full) yield full;
  }
  const rest = batches.rest();
  if (rest) yield rest;
}

/** Which of a record's fates each phase answers. */
const PHASE_AT: Record<string, number> = { ADD: 0, UPD: 1, RETRY1: 1, RETRY2: 2 };

/** Writes the accepted lines (uint32 LE) and returns the record counts and the SHA-256: the untimed setup. */
async function acceptedLinesOf(store: LocalFileStore, ref: ObjectRef, kind: FileKind, linesFile: string) {
  const fd = openSync(linesFile, 'w');
  const buffer = Buffer.alloc(64 * 1024);
  let used = 0;
  let records = 0;
  let accepted = 0;
  for await (const chunk of readRecords(store.read(ref), { name: ref.key })) {
    for (const record of chunk) {
      records++;
      const result = record.problem
        ? invalid(record.problem.column, record.problem.rule)
        : validateRecord(kind, record.fields);
      if (!result.ok) continue;
      accepted++;
      buffer.writeUInt32LE(record.line, used);
      used += 4;
      if (used === buffer.length) {
        writeSync(fd, buffer, 0, used);
        used = 0;
      }
    }
  }
  writeSync(fd, buffer, 0, used);
  closeSync(fd);
  return { records, accepted, sha256: await sha256Of(store.read(ref)) };
}

/**
 * What a slice resuming at the end of the file pays before its first record: for a gzip file the whole file
 * inflated and its text dropped unparsed (what each later slice pays for the text before its checkpoint), for a
 * plain one a ranged GET of nothing. The position is found by an untimed read first; only the resume is timed.
 */
async function resumeAtEnd(store: LocalFileStore, ref: ObjectRef) {
  let end: ReadPosition | undefined;
  for await (const _chunk of readRecords(store.read(ref), {
    name: ref.key,
    onPositions: (positions) => (end = positions.end),
  }));
  if (!end) throw new Error('no records');
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  let records = 0;
  for await (const chunk of readRecords(await readFromPosition(store, ref, end), { name: ref.key, from: end })) {
    records += chunk.length;
  }
  if (records !== 0) throw new Error(`resumed at the end, read ${records} records`);
  const cpu = process.cpuUsage(cpuStarted);
  return {
    records: undefined,
    textBytes: end.bytes,
    timed: { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6 },
  };
}

async function runStep(step: string, store: LocalFileStore, ref: ObjectRef, kind: FileKind, rest: string[]) {
  const [linesFile = '', fileId = '', answers = 'mixed'] = rest;
  switch (step) {
    case 'classify': {
      const identified = await identifyFile(store, ref, { maxFileSizeBytes: TEN_GIB, acceptedEncodings: ACCEPTED });
      if (identified.kind !== kind) throw new Error(`classified as ${identified.kind}`);
      return { records: undefined };
    }
    case 'prepare': {
      let batches = 0;
      const result = await preparePhaseSlice(
        { file: ref, kind, fileId, phase: 'ADD', firstBatch: 0 },
        {
          store,
          queue: { send: async (calls) => void (batches += calls.length) },
          phases: {
            setBatchTotal: async (id: string, phase: string, total: number): Promise<PhaseState> => ({
              fileId: id,
              phase,
              batches: total,
              answered: 0,
              update: 0,
              retryLater: 0,
            }),
          } as never,
          answers: { answers: () => (async function* () {})() },
          notifier: { succeed: async () => undefined },
          limits: { maxRecords: 100, maxBytes: 200 * 1024 },
          acceptedEncodings: ACCEPTED,
        },
        () => false,
      );
      if (!result.complete || result.nextBatch !== batches) throw new Error('prepare did not finish');
      return { records: result.received };
    }
    case 'finalise': {
      const retryPhases = kind === 'transactions' && answers === 'mixed' ? 2 : 0;
      const fromName = encodingFromName(ref.key);
      const summary = await finaliseFile(
        { file: ref, kind, fileId, format: fromName.format ?? 'csv', retryPhases },
        {
          store,
          answers: {
            answers: (_id, phase) => phaseAnswers(linesFile, kind, phase, PHASE_AT[phase] ?? 0, answers),
          },
          outcomes: { read: async () => undefined, recordSummary: async () => undefined },
          events: { fileCompleted: async () => undefined },
          archiveBucket: 'archive',
          failedBucket: 'failed',
          landingPrefix: '',
          acceptedEncodings: ACCEPTED,
        },
      );
      return { records: summary.received, succeeded: summary.succeeded, failed: summary.failed };
    }
    case 'lines':
      return acceptedLinesOf(store, ref, kind, linesFile);
    case 'resume-end':
      return resumeAtEnd(store, ref);
    default:
      throw new Error(`unknown step ${step}`);
  }
}

async function main() {
  const [step = 'classify', root = '', key = '', kind = 'users', ...rest] = process.argv.slice(2);
  const store = new LocalFileStore(root);
  const ref = { bucket: 'landing', key };
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  const { timed, ...result } = (await runStep(step, store, ref, kind as FileKind, rest)) as {
    timed?: { seconds: number; cpuSeconds: number };
  };
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStarted);
  process.stdout.write(
    `${JSON.stringify({
      ...result,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      ...timed,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      writtenMb: store.writtenBytes / 1024 ** 2,
    })}\n`,
  );
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
