import { randomUUID } from 'node:crypto';
import { ErrorNames } from '../errors';
import type { Encoding } from '../config';
import type { RecordFormat } from '../files/file-encoding';
import { sha256Of } from '../files/file-identity';
import {
  metadataValue,
  type ObjectRef,
  type ObjectStore,
  type PartUploads,
  type TextUpload,
} from '../files/object-store';
import { readFromPosition } from '../files/read-from';
import { readRecords, type ReadPosition } from '../files/read-records';
import type { FileKind } from '../files/record-schemas';
import { REDO_PHASE } from '../crm/call-message';
import { CANCELLED, type CallAnswer } from '../crm/dispatch-call';
import type { FileOutcomes } from '../ledger/file-claim';
import {
  reportFileSlice,
  type FileSummary,
  type RecordResult,
  type ReportProgress,
  type TextSink,
} from '../ledger/file-report';
import type { PhaseCounters } from '../ledger/phase-counters';
import { RecordIndexBuffer, type IndexBufferOptions, type RecordIndexWriter } from '../ledger/record-index';
import { leaveSchedule, partnerOf, type Schedule, type TurnNotifier } from '../schedule/schedule';
import { duplicateKey, failedRecordsName, fileNameOf, quarantineKey, reportPrefix } from './storage-keys';

/** Where a finished file's reports are (the `file.completed` event and summary.json carry it). */
export interface ReportLocation {
  readonly bucket: string;
  readonly summary: string;
  readonly results?: string;
  readonly failedRecords?: string;
}

export type FinalSummary = FileSummary & {
  readonly reports: ReportLocation;
  readonly archived?: ObjectRef;
  /** When the file landed, its first call was queued, and its reports were written (ISO 8601). */
  readonly landedAt?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** CRM calls the file took, retries included. */
  readonly calls?: { readonly made: number; readonly remaining: 0 };
  /** Redo rounds (retries by code) this summary includes: absent before the first. */
  readonly redoRounds?: number;
  /**
   * The file was cancelled once (its first run or a redo round), kept in every later summary: its records a
   * cancelled run never sent have no answer before the round that sent them, which a later round's report must
   * know even when no CANCELLED failure is left.
   */
  readonly cancelled?: true;
};

/** The port to the event bus: `file.completed` with the summary, for whoever watches (EventBridge). */
export interface EventPublisher {
  fileCompleted(summary: FinalSummary): Promise<void>;
}

/** A phase's answers in batch order; `fromBatch` lets a resumed slice skip the batches before it. */
export interface FinaliseAnswerSource {
  answers(fileId: string, phase: string, fromBatch?: number): AsyncIterable<CallAnswer>;
}

export interface FinaliseDeps {
  readonly store: ObjectStore;
  readonly answers: FinaliseAnswerSource;
  readonly outcomes: FileOutcomes;
  readonly events: EventPublisher;
  readonly archiveBucket: string;
  readonly failedBucket: string;
  readonly landingPrefix: string;
  readonly acceptedEncodings: readonly Encoding[];
  /** Bytes of text (after gunzip) past which the file is refused (`MAX_DECOMPRESSED_BYTES`). @default no limit */
  readonly maxDecompressedBytes?: number;
  /** The schedule: whether the file was cancelled, its times; it leaves the schedule once finished. */
  readonly schedule?: Pick<Schedule, 'read' | 'update' | 'finish' | 'view' | 'takeTurnToken'>;
  /** The phases' counters, for the calls the file took. */
  readonly phases?: Pick<PhaseCounters, 'read'>;
  /** Wakes the files this one held (customers first), once it leaves the schedule. */
  readonly turnNotifier?: TurnNotifier;
  /** The record lookup index: every record's id, line and outcome, a chunk at a time. @default not indexed */
  readonly recordIndex?: RecordIndexWriter;
}

export interface FinishedFile {
  /** The source where it was processed (under users/ or transactions/). */
  readonly file: ObjectRef;
  readonly kind: FileKind;
  readonly fileId: string;
  readonly format: RecordFormat;
  /** RETRY phases that ran (transactions). */
  readonly retryPhases: number;
  /**
   * A redo round (POST /v1/files/{fileId}/retry): the file, already archived, is reported again with every
   * phase it has had, this round's last: ADD, UPD or RETRY1..k, then REDO1 (REDO1UPD) ... REDO<round>.
   */
  readonly redo?: { readonly round: number };
}

const JSON_TYPE = 'application/json';

/** Where a report upload stands between slices: its parts so far, and the text after them. */
export interface UploadCheckpoint {
  /** Set once the first part is sent; a report shorter than a part is written whole at the end. */
  readonly uploadId?: string;
  /**
   * With `uploadId`: the finished object's `finalise-upload` metadata, so a retried last slice knows the upload
   * was completed (S3 then no longer knows the UploadId) and writes nothing again.
   */
  readonly token?: string;
  /** The parts' ETags, part n at n - 1. */
  readonly etags: readonly string[];
  /** Key (archive bucket) of the text written since the last part: under a part, so not sendable yet. */
  readonly carry?: string;
  /** The carry the slice before read: kept until the next checkpoint, so a slice retried can still read it. */
  readonly staleCarry?: string;
}

/**
 * Where the next finalise slice goes on, at a record boundary: the source's position, the counts and each
 * answer stream's place (ReportProgress), and the two uploads. A few KB: no record and no report text.
 */
export interface FinaliseCheckpoint {
  readonly position: ReadPosition;
  readonly report: ReportProgress;
  readonly results: UploadCheckpoint;
  /** Absent until a record failed (no failed-records file when none did). */
  readonly failedRecords?: UploadCheckpoint;
}

export type FinaliseSlice =
  | { readonly done: true; readonly summary: FinalSummary }
  | { readonly done: false; readonly checkpoint: FinaliseCheckpoint };

export interface FinaliseOptions {
  /** An earlier slice's checkpoint to go on from. @default the start */
  readonly from?: FinaliseCheckpoint;
  /** Asked after each chunk of records: true ends the slice there (with a store that has part uploads). */
  readonly shouldStop?: () => boolean;
  /** Bytes of report text per part (S3: at least 5 MiB). @default 8 MiB */
  readonly partBytes?: number;
  /** How the record index is buffered (records per chunk, shards). @default record-index.ts's */
  readonly indexBuffer?: IndexBufferOptions;
}

/** The metadata by which a completed report upload is recognised (its checkpoint's token). */
const UPLOAD_TOKEN = 'finalise-upload';

/** 8 MiB parts: 10 GB of results is ~1,200 ETags (~45 KB of checkpoint), well under Step Functions' 256 KiB. */
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

/** A report being written by a slice: text in, parts (or a stream) out. */
interface ReportUpload extends TextSink {
  used(): boolean;
  /** Saves what the next slice needs; `at` names this slice's carry. */
  checkpoint(at: number): Promise<UploadCheckpoint>;
  end(): Promise<void>;
  /** On a failure: `final` when no retry will go on with this upload (a mismatch, or one this slice began). */
  abort(final: boolean): Promise<void>;
  /** Once the summary is kept (no retry needs them): deletes the carries this slice read. */
  cleanUp(): Promise<void>;
}

/** Opens the upload on the first write only: no failed-records file when nothing failed. Not resumable. */
function streamedUpload(open: () => TextUpload): ReportUpload {
  let upload: TextUpload | undefined;
  return {
    write: (text) => (upload ??= open()).write(text),
    used: () => upload !== undefined,
    checkpoint: () => Promise.reject(new Error('a streamed upload has no checkpoint')),
    end: async () => upload?.end(),
    abort: async () => upload?.abort(),
    cleanUp: async () => undefined,
  };
}

/**
 * A report written as multipart parts that later slices go on with. The text after the last part (under a
 * part, which S3 refuses unless it is the last) goes to a small carry object at a checkpoint and is read back
 * by the next slice: a slice cannot end on a part boundary (records do not line up with 5 MiB), and up to a
 * part of text is too large for the state's 256 KiB. Each carry has its own key, so a retried slice still
 * finds the one it began from; the one before is deleted at the next checkpoint, the rest once the summary is
 * kept (a last slice cut off after completing the upload is retried from the same checkpoint: it finds the
 * object there with its token, writes nothing again, and still has its carry to read).
 */
class PartedUpload implements ReportUpload {
  private texts: string[] = [];
  private bytes = 0;
  private uploadId: string | undefined;
  private token: string | undefined;
  /** The upload this slice went on with was completed by an earlier try of it: nothing more to write. */
  private completed = false;
  private readonly etags: string[];
  /** The part being sent: one at a time, while the merge writes the next. */
  private sending: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: ObjectStore,
    private readonly parts: PartUploads,
    private readonly ref: ObjectRef,
    private readonly contentType: string,
    private readonly carryRef: (at: number) => ObjectRef,
    private readonly partBytes: number,
    private readonly from: UploadCheckpoint | undefined,
  ) {
    this.uploadId = from?.uploadId;
    this.token = from?.token;
    this.etags = [...(from?.etags ?? [])];
  }

  static async open(
    store: ObjectStore,
    parts: PartUploads,
    target: { ref: ObjectRef; contentType: string; carryRef: (at: number) => ObjectRef; partBytes: number },
    from: UploadCheckpoint | undefined,
  ): Promise<PartedUpload> {
    const upload = new PartedUpload(
      store,
      parts,
      target.ref,
      target.contentType,
      target.carryRef,
      target.partBytes,
      from,
    );
    if (from?.uploadId && from.token) {
      // Not there: the upload is still open. Any other failure is the store's, for the retry to meet again.
      const head = await store.head(target.ref).catch((error: unknown) => {
        if ((error as { name?: string }).name === ErrorNames.fileGone) return undefined;
        throw error;
      });
      upload.completed = head?.metadata[UPLOAD_TOKEN] === from.token;
      if (upload.completed) return upload;
    }
    if (from?.carry) {
      const bytes: Uint8Array[] = [];
      for await (const chunk of store.read({ bucket: target.ref.bucket, key: from.carry })) bytes.push(chunk);
      const text = Buffer.concat(bytes).toString('utf8');
      upload.texts.push(text);
      upload.bytes = Buffer.byteLength(text);
    }
    return upload;
  }

  used(): boolean {
    return this.from !== undefined || this.bytes > 0 || this.uploadId !== undefined;
  }

  async write(text: string): Promise<void> {
    if (!text || this.completed) return;
    this.texts.push(text);
    this.bytes += Buffer.byteLength(text);
    if (this.bytes >= this.partBytes) await this.sendPart();
  }

  async checkpoint(at: number): Promise<UploadCheckpoint> {
    if (this.completed) return this.from as UploadCheckpoint;
    await this.sending;
    let carry: string | undefined;
    if (this.bytes > 0) {
      const ref = this.carryRef(at);
      await this.store.put(ref, this.texts.join(''), 'text/plain; charset=utf-8');
      carry = ref.key;
    }
    if (this.from?.staleCarry) await this.parts.remove(this.carried(this.from.staleCarry));
    return {
      ...(this.uploadId ? { uploadId: this.uploadId } : {}),
      ...(this.token ? { token: this.token } : {}),
      etags: [...this.etags],
      ...(carry ? { carry } : {}),
      ...(this.from?.carry && this.from.carry !== carry ? { staleCarry: this.from.carry } : {}),
    };
  }

  async end(): Promise<void> {
    if (this.completed) return;
    if (this.uploadId === undefined) {
      await this.store.put(this.ref, this.texts.join(''), this.contentType);
    } else {
      if (this.bytes > 0) await this.sendPart();
      await this.sending;
      await this.parts.complete(this.ref, this.uploadId, this.etags);
    }
  }

  async cleanUp(): Promise<void> {
    for (const key of [this.from?.carry, this.from?.staleCarry]) {
      if (key) await this.parts.remove(this.carried(key));
    }
  }

  async abort(final: boolean): Promise<void> {
    // An upload a checkpoint holds is left for the retry that goes on with it, unless none will.
    await this.sending.catch(() => undefined);
    if (this.completed || this.uploadId === undefined || (this.from?.uploadId !== undefined && !final)) return;
    await this.parts.abort(this.ref, this.uploadId).catch(() => undefined);
  }

  private carried(key: string): ObjectRef {
    return { bucket: this.ref.bucket, key };
  }

  private async sendPart(): Promise<void> {
    const body = Buffer.from(this.texts.join(''), 'utf8');
    this.texts = [];
    this.bytes = 0;
    await this.sending;
    if (this.uploadId === undefined) {
      this.token = randomUUID();
      this.uploadId = await this.parts.create(this.ref, this.contentType, { [UPLOAD_TOKEN]: this.token });
    }
    this.sending = this.parts.uploadPart(this.ref, this.uploadId, this.etags.length + 1, body).then((etag) => {
      this.etags.push(etag);
    });
    // Seen by the next part, the checkpoint or the end; not an unhandled rejection meanwhile.
    this.sending.catch(() => undefined);
  }
}

/** A report upload that opens on its first write (or goes on from a checkpoint's). */
function lazyReportUpload(open: () => Promise<ReportUpload>, from: boolean): Promise<ReportUpload> | ReportUpload {
  if (from) return open();
  let upload: Promise<ReportUpload> | undefined;
  let opened: ReportUpload | undefined;
  const get = async () => (opened ??= await (upload ??= open()));
  return {
    write: async (text) => (await get()).write(text),
    used: () => opened?.used() ?? false,
    checkpoint: async (at) => (await get()).checkpoint(at),
    end: async () => opened?.end(),
    abort: async (final) => opened?.abort(final),
    cleanUp: async () => opened?.cleanUp(),
  };
}

/**
 * The finalise step of a processed file: reconciles it (every record succeeded or failed, nothing pending,
 * else Ledger.Mismatch and nothing is archived), writes summary.json, results.csv and the failed-records file,
 * keeps the summary on the claim, archives the source, and emits `file.completed`. Safe to repeat: a second
 * run finds the summary kept and only completes the move and the event. In one invocation: see
 * {@link finaliseFileSlice} for a file that needs several.
 */
export async function finaliseFile(input: FinishedFile, deps: FinaliseDeps): Promise<FinalSummary> {
  const slice = await finaliseFileSlice(input, deps);
  if (!slice.done) throw new Error('finalise without shouldStop stopped');
  return archiveFinished(input.file, slice.summary, deps);
}

/**
 * The archive step, after the last finalise slice: the source moved to the archive (S3 copies an object over
 * 5 GiB in parts, minutes for 10 GB, so it has its own invocation), then `file.completed`. Safe to repeat: a
 * move whose source is gone and target there is done, and delivering the reports again replaces them.
 */
export async function archiveFinished(
  file: ObjectRef,
  summary: FinalSummary,
  deps: Pick<FinaliseDeps, 'store' | 'events'>,
): Promise<FinalSummary> {
  if (!summary.archived) throw new Error(`${summary.name}: a summary with nowhere to archive the file`);
  // A redo round reads the file where it is archived: there is nothing to move (a move onto itself would delete it).
  const archived = file.bucket === summary.archived.bucket && file.key === summary.archived.key;
  if (!archived) await deps.store.move(file, summary.archived);
  await deps.events.fileCompleted(summary);
  return summary;
}

/**
 * {@link finaliseFile} across invocations: from `options.from`, until the end of the file (then the reports are
 * completed and the summary written and kept, for {@link archiveFinished}) or until `shouldStop` says so after a
 * chunk of records, returning the checkpoint to go on from. The reports are byte for byte those of one run.
 */
export async function finaliseFileSlice(
  input: FinishedFile,
  deps: FinaliseDeps,
  options: FinaliseOptions = {},
): Promise<FinaliseSlice> {
  const prefix = reportPrefix(input.file.key, deps.landingPrefix, input.fileId);
  const archived = { bucket: deps.archiveBucket, key: input.file.key };
  const round = input.redo?.round ?? 0;
  const stored = (await deps.outcomes.read(input.fileId))?.summary as FinalSummary | undefined;
  // A redo round reports again: the summary kept before it is not this round's (it has fewer rounds).
  const kept = stored && (stored.redoRounds ?? 0) >= round ? stored : undefined;
  const previous = round > 0 ? stored : undefined;
  // Sticky: a summary before the flag was kept says it by its status or its CANCELLED failures.
  const cancelledBefore =
    previous !== undefined &&
    (previous.cancelled === true || previous.status === 'cancelled' || previous.failures[CANCELLED] !== undefined);
  let summary: FinalSummary;
  const laterPhases = await laterPhasesOf(input, deps);
  // Marked finalising before its control is read: from then on no pause or cancel is taken (setControl refuses),
  // so every slice of the report sees the control the first one saw.
  if (!kept && !options.from) await deps.schedule?.update(input.fileId, { state: 'finalising', phase: 'FINALISE' });
  const scheduled = kept ? undefined : await deps.schedule?.read(input.fileId);
  if (kept) {
    summary = kept;
  } else {
    const failedKey = `${prefix}${failedRecordsName(input.file.key, input.format)}`;
    const { parts } = deps.store;
    const from = parts ? options.from : undefined;
    const partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
    const open = (key: string, contentType: string, state: UploadCheckpoint | undefined): Promise<ReportUpload> => {
      const ref = { bucket: deps.archiveBucket, key };
      if (!parts) return Promise.resolve(streamedUpload(() => deps.store.upload(ref, contentType)));
      const carryRef = (at: number) => ({
        bucket: deps.archiveBucket,
        key: `finalise/${input.fileId}/${fileNameOf(key)}.${at}.carry`,
      });
      return PartedUpload.open(deps.store, parts, { ref, contentType, carryRef, partBytes }, state);
    };
    const results = await open(`${prefix}results.csv`, 'text/csv', from?.results);
    const failed = await lazyReportUpload(
      () => open(failedKey, input.format === 'jsonl' ? 'application/x-ndjson' : 'text/csv', from?.failedRecords),
      from?.failedRecords !== undefined,
    );
    // Buffered by shard and written a chunk at a time: at most indexBuffer.flushRecords records held.
    const indexedFile = {
      fileId: input.fileId,
      name: fileNameOf(input.file.key),
      partner: scheduled?.partner ?? partnerOf(input.file.key, deps.landingPrefix),
      kind: input.kind,
    };
    const index = deps.recordIndex && new RecordIndexBuffer(deps.recordIndex, indexedFile, options.indexBuffer);
    let end: ReadPosition | undefined;
    let reported: FileSummary;
    let finishedAt: string;
    try {
      const answers = (phase: string, at: { batch: number } | undefined) =>
        deps.answers.answers(input.fileId, phase, at?.batch ?? 0);
      const slice = await reportFileSlice({
        name: fileNameOf(input.file.key),
        sha256: input.fileId,
        kind: input.kind,
        format: input.format,
        source: readRecords(await readFromPosition(deps.store, input.file, from?.position), {
          name: input.file.key,
          acceptedEncodings: deps.acceptedEncodings,
          ...(deps.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: deps.maxDecompressedBytes }),
          ...(from ? { from: from.position } : {}),
          onPositions: (positions) => {
            end = { ...positions.end };
          },
        }),
        // Every phase read as a stream in batch (= line) order and merged with the source: nothing held whole.
        addAnswers: answers('ADD', from?.report.add),
        laterPhases: laterPhases.map((phase, i) => answers(phase, from?.report.later[i])),
        results,
        failedRecords: failed,
        ...(from ? { from: from.report } : {}),
        ...(parts && options.shouldStop ? { shouldStop: options.shouldStop } : {}),
        ...(scheduled?.control === 'cancelled' ? { cancelled: true } : {}),
        ...(cancelledBefore
          ? { cancelledBefore: { redoFrom: laterPhases.findIndex((phase) => REDO_PHASE.test(phase)) } }
          : {}),
        ...(index ? { onRecord: (result: RecordResult) => index.add(result) } : {}),
      });
      if (!slice.done) {
        // Written before the checkpoint is given: the next slice starts where this one's index ends.
        await index?.flush();
        const position = end as ReadPosition;
        return {
          done: false,
          checkpoint: {
            position,
            report: slice.progress,
            results: await results.checkpoint(position.line),
            ...(failed.used() ? { failedRecords: await failed.checkpoint(position.line) } : {}),
          },
        };
      }
      reported = slice.summary;
      finishedAt = new Date().toISOString();
      // Before the summary is kept: a finished file's records can be looked up.
      await index?.flush({ finishedAt });
      await results.end();
      await failed.end();
    } catch (error) {
      const final = (error as { name?: string }).name === ErrorNames.ledgerMismatch;
      await Promise.all([results.abort(final), failed.abort(final)]);
      throw error;
    }
    let made = 0;
    if (deps.phases) {
      for (const phase of ['ADD', ...laterPhases]) made += (await deps.phases.read(input.fileId, phase)).calls ?? 0;
    }
    // A redo round keeps the file's first times: when it landed and its first call was queued.
    const landedAt = previous?.landedAt ?? scheduled?.landedAt;
    const startedAt = previous?.startedAt ?? scheduled?.startedAt;
    summary = {
      ...reported,
      ...(landedAt ? { landedAt } : {}),
      ...(startedAt ? { startedAt } : {}),
      finishedAt,
      ...(deps.phases ? { calls: { made, remaining: 0 as const } } : {}),
      ...(round > 0 ? { redoRounds: round } : {}),
      // A first run says it by its status; a round's summary, whose status is the round's, by this flag.
      ...(round > 0 && (cancelledBefore || scheduled?.control === 'cancelled') ? { cancelled: true as const } : {}),
      reports: {
        bucket: deps.archiveBucket,
        summary: `${prefix}summary.json`,
        results: `${prefix}results.csv`,
        ...(failed.used() ? { failedRecords: failedKey } : {}),
      },
      archived,
    };
    await deps.store.put(
      { bucket: deps.archiveBucket, key: summary.reports.summary },
      JSON.stringify(summary, null, 2),
      JSON_TYPE,
    );
    // A redo round in which nothing failed leaves no failed-records file: the one before is no report of it.
    const stale = previous?.reports.failedRecords;
    if (stale && !summary.reports.failedRecords) {
      const ref = { bucket: previous.reports.bucket, key: stale };
      await (deps.store.parts ? deps.store.parts.remove(ref) : deps.store.put(ref, '', 'text/plain'));
    }
    await deps.outcomes.recordSummary(input.fileId, summary);
    // Kept until now so that a retry of this slice could still read them (the lifecycle expires any left).
    await Promise.all([results.cleanUp(), failed.cleanUp()]).catch(() => undefined);
  }
  // Out of the schedule (again, for a retried slice): a transactions file waiting for it may go.
  if (deps.schedule) {
    const partner = scheduled?.partner ?? partnerOf(input.file.key, deps.landingPrefix);
    const file = { fileId: input.fileId, kind: input.kind, partner };
    await leaveSchedule(deps.schedule, deps.turnNotifier, file, summary.finishedAt ?? new Date().toISOString());
  }
  return { done: true, summary };
}

/**
 * The phases after ADD whose answers the report merges, in order. A redo round lists every phase the file has
 * had: its RETRY phases are counted from the ledger (its execution ran them, this one did not), then each
 * round's REDO<n> (and, for users, REDO<n>UPD: an empty stream where it never ran).
 */
async function laterPhasesOf(input: FinishedFile, deps: Pick<FinaliseDeps, 'phases'>): Promise<string[]> {
  const round = input.redo?.round ?? 0;
  let retries = input.retryPhases;
  if (round > 0 && input.kind === 'transactions' && deps.phases) {
    retries = 0;
    while ((await deps.phases.read(input.fileId, `RETRY${retries + 1}`)).batches !== undefined) retries++;
  }
  const first = input.kind === 'users' ? ['UPD'] : Array.from({ length: retries }, (_, i) => `RETRY${i + 1}`);
  const redo = Array.from({ length: round }, (_, i) =>
    input.kind === 'users' ? [`REDO${i + 1}`, `REDO${i + 1}UPD`] : [`REDO${i + 1}`],
  );
  return [...first, ...redo.flat()];
}

/** Same bytes as a file already claimed: nothing sent; archived under duplicates/ with the original named. */
export async function finaliseDuplicate(
  input: { file: ObjectRef; kind: FileKind; fileId: string; duplicateOf: string },
  deps: FinaliseDeps,
): Promise<FinalSummary> {
  const prefix = reportPrefix(input.file.key, deps.landingPrefix, input.fileId);
  const archived = { bucket: deps.archiveBucket, key: duplicateKey(input.file.key, deps.landingPrefix) };
  const summary: FinalSummary = {
    name: fileNameOf(input.file.key),
    sha256: input.fileId,
    kind: input.kind,
    status: 'duplicate',
    received: 0,
    succeeded: 0,
    failed: 0,
    failures: {},
    reason: `same bytes as ${input.duplicateOf}, already taken: not processed again`,
    reports: { bucket: deps.archiveBucket, summary: `${prefix}summary.json` },
    archived,
  };
  await deps.store.put(
    { bucket: deps.archiveBucket, key: summary.reports.summary },
    JSON.stringify(summary, null, 2),
    JSON_TYPE,
  );
  await deps.store.move(input.file, archived, {
    'duplicate-of': metadataValue(input.duplicateOf),
    'file-sha256': input.fileId,
  });
  await deps.events.fileCompleted(summary);
  return summary;
}

/** The reason a failed state gives: Step Functions wraps a Lambda's error as JSON in `Cause`. */
export function failureReason(error: { Error?: string; Cause?: string }): string {
  let cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') cause = parsed.errorMessage;
  } catch {
    // A plain-text cause (our own Pass states) stays as it is.
  }
  return `${error.Error ?? 'File.Rejected'}: ${cause}`;
}

/** The SHA-256 of the first of `refs` that exists (a repeat finds the object already moved), streamed. */
async function objectSha256(store: ObjectStore, refs: readonly ObjectRef[]): Promise<string | undefined> {
  for (const ref of refs) {
    try {
      return await sha256Of(store.read(ref));
    } catch (error) {
      if ((error as { name?: string }).name !== ErrorNames.fileGone) throw error;
    }
  }
  return undefined;
}

/** A file failed as a whole (unknown, unreadable, too large, encoding refused): quarantined with the reason, nothing sent. */
export async function quarantineFile(
  input: { file: ObjectRef; error: { Error?: string; Cause?: string }; kind?: FileKind; fileId?: string },
  deps: FinaliseDeps,
): Promise<FinalSummary> {
  const reason = failureReason(input.error);
  const quarantined = { bucket: deps.failedBucket, key: quarantineKey(input.file.key, deps.landingPrefix) };
  // Refused before its hash was taken (unknown, too large): hashed here, so the report names the bytes too.
  const fileId = input.fileId ?? (await objectSha256(deps.store, [input.file, quarantined]));
  const prefix = reportPrefix(input.file.key, deps.landingPrefix, fileId);
  // A file refused after its claim (unreadable past its head, too large once inflated) has a schedule entry and a
  // claim: its times come from them (a repeat of this step finds the claim only).
  const scheduled = fileId ? await deps.schedule?.read(fileId) : undefined;
  const claim = fileId ? await deps.outcomes.read(fileId) : undefined;
  const landedAt = scheduled?.landedAt ?? claim?.claimedAt;
  const summary: FinalSummary = {
    name: fileNameOf(input.file.key),
    sha256: fileId ?? '',
    kind: input.kind ?? 'unknown',
    status: 'failed',
    received: 0,
    succeeded: 0,
    failed: 0,
    failures: {},
    reason,
    reports: { bucket: deps.archiveBucket, summary: `${prefix}summary.json` },
    archived: quarantined,
    ...(landedAt ? { landedAt } : {}),
    ...(scheduled?.startedAt ? { startedAt: scheduled.startedAt } : {}),
    finishedAt: new Date().toISOString(),
  };
  await deps.store.put(
    { bucket: deps.archiveBucket, key: summary.reports.summary },
    JSON.stringify(summary, null, 2),
    JSON_TYPE,
  );
  await deps.store.move(input.file, quarantined, { 'failure-reason': metadataValue(reason) });
  // A file refused after its claim keeps its summary there too, as a finished file does: the catalogue (the
  // operations API's list) shows it failed, not in flight for ever. One refused before its claim has none.
  if (claim) await deps.outcomes.recordSummary(fileId as string, summary);
  if (scheduled && deps.schedule) {
    await leaveSchedule(deps.schedule, deps.turnNotifier, scheduled, summary.finishedAt as string);
  }
  await deps.events.fileCompleted(summary);
  return summary;
}
