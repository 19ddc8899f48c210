import { ErrorNames } from '../errors';
import type { Encoding } from '../config';
import type { RecordFormat } from '../files/file-encoding';
import { sha256Of } from '../files/file-identity';
import { metadataValue, type ObjectRef, type ObjectStore, type TextUpload } from '../files/object-store';
import { readRecords } from '../files/read-records';
import type { FileKind } from '../files/record-schemas';
import type { FileOutcomes } from '../ledger/file-claim';
import { reportFile, type FileSummary, type TextSink } from '../ledger/file-report';
import type { AnswerSource } from './prepare-phase';
import { duplicateKey, failedRecordsName, quarantineKey, reportPrefix } from './storage-keys';

/** Where a finished file's reports are (the `file.completed` event and summary.json carry it). */
export interface ReportLocation {
  readonly bucket: string;
  readonly summary: string;
  readonly results?: string;
  readonly failedRecords?: string;
}

export type FinalSummary = FileSummary & { readonly reports: ReportLocation; readonly archived?: ObjectRef };

/** The port to the event bus: `file.completed` with the summary, for whoever watches (EventBridge). */
export interface EventPublisher {
  fileCompleted(summary: FinalSummary): Promise<void>;
}

export interface FinaliseDeps {
  readonly store: ObjectStore;
  readonly answers: AnswerSource;
  readonly outcomes: FileOutcomes;
  readonly events: EventPublisher;
  readonly archiveBucket: string;
  readonly failedBucket: string;
  readonly landingPrefix: string;
  readonly acceptedEncodings: readonly Encoding[];
  /** Bytes of text (after gunzip) past which the file is refused (`MAX_DECOMPRESSED_BYTES`). @default no limit */
  readonly maxDecompressedBytes?: number;
}

export interface FinishedFile {
  /** The source where it was processed (under users/ or transactions/). */
  readonly file: ObjectRef;
  readonly kind: FileKind;
  readonly fileId: string;
  readonly format: RecordFormat;
  /** RETRY phases that ran (transactions). */
  readonly retryPhases: number;
}

const fileName = (key: string) => key.split('/').pop() ?? key;
const JSON_TYPE = 'application/json';

/** Opens the upload on the first write only: no failed-records file when nothing failed. */
function lazyUpload(open: () => TextUpload) {
  let upload: TextUpload | undefined;
  const sink: TextSink = { write: (text) => (upload ??= open()).write(text) };
  return { sink, used: () => upload !== undefined, end: () => upload?.end(), abort: () => upload?.abort() };
}

/**
 * The finalise step of a processed file: reconciles it (every record succeeded or failed, nothing pending,
 * else Ledger.Mismatch and nothing is archived), writes summary.json, results.csv and the failed-records file,
 * keeps the summary on the claim, archives the source, and emits `file.completed`. Safe to repeat: a second
 * run finds the summary kept and only completes the move and the event.
 */
export async function finaliseFile(input: FinishedFile, deps: FinaliseDeps): Promise<FinalSummary> {
  const prefix = reportPrefix(input.file.key, deps.landingPrefix, input.fileId);
  const archived = { bucket: deps.archiveBucket, key: input.file.key };
  const kept = (await deps.outcomes.read(input.fileId))?.summary as FinalSummary | undefined;
  let summary: FinalSummary;
  if (kept) {
    summary = kept;
  } else {
    const laterPhases =
      input.kind === 'users' ? ['UPD'] : Array.from({ length: input.retryPhases }, (_, i) => `RETRY${i + 1}`);
    const failedKey = `${prefix}${failedRecordsName(input.file.key, input.format)}`;
    const results = deps.store.upload({ bucket: deps.archiveBucket, key: `${prefix}results.csv` }, 'text/csv');
    const failed = lazyUpload(() =>
      deps.store.upload(
        { bucket: deps.archiveBucket, key: failedKey },
        input.format === 'jsonl' ? 'application/x-ndjson' : 'text/csv',
      ),
    );
    let reported: FileSummary;
    try {
      reported = await reportFile({
        name: fileName(input.file.key),
        sha256: input.fileId,
        kind: input.kind,
        format: input.format,
        source: readRecords(deps.store.read(input.file), {
          name: input.file.key,
          acceptedEncodings: deps.acceptedEncodings,
          ...(deps.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: deps.maxDecompressedBytes }),
        }),
        // Every phase read as a stream in batch (= line) order and merged with the source: nothing held whole.
        addAnswers: deps.answers.answers(input.fileId, 'ADD'),
        laterPhases: laterPhases.map((phase) => deps.answers.answers(input.fileId, phase)),
        results,
        failedRecords: failed.sink,
      });
      await results.end();
      await failed.end();
    } catch (error) {
      await Promise.all([results.abort(), failed.abort()]);
      throw error;
    }
    summary = {
      ...reported,
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
    await deps.outcomes.recordSummary(input.fileId, summary);
  }
  await deps.store.move(input.file, archived);
  await deps.events.fileCompleted(summary);
  return summary;
}

/** Same bytes as a file already claimed: nothing sent; archived under duplicates/ with the original named. */
export async function finaliseDuplicate(
  input: { file: ObjectRef; kind: FileKind; fileId: string; duplicateOf: string },
  deps: FinaliseDeps,
): Promise<FinalSummary> {
  const prefix = reportPrefix(input.file.key, deps.landingPrefix, input.fileId);
  const archived = { bucket: deps.archiveBucket, key: duplicateKey(input.file.key, deps.landingPrefix) };
  const summary: FinalSummary = {
    name: fileName(input.file.key),
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
  const summary: FinalSummary = {
    name: fileName(input.file.key),
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
  };
  await deps.store.put(
    { bucket: deps.archiveBucket, key: summary.reports.summary },
    JSON.stringify(summary, null, 2),
    JSON_TYPE,
  );
  await deps.store.move(input.file, quarantined, { 'failure-reason': metadataValue(reason) });
  await deps.events.fileCompleted(summary);
  return summary;
}
