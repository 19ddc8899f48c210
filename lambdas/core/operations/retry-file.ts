import { z } from 'zod';
import { encodingFromName, type RecordFormat } from '../files/file-encoding';
import type { ObjectRef } from '../files/object-store';
import type { FileKind } from '../files/record-schemas';
import type { RedoMark, RedoMarks } from '../ledger/file-claim';
import type { FinalSummary } from '../workflow/finalise-file';
import { WorkflowStartRefused } from '../workflow/start-refused';
import type { WorkflowStarter } from '../workflow/sweep-landing-zone';
import { ApiError } from './api-error';
import type { FileView } from './file-view';
import { catalogued, fileView, parseParams, type FileQueries } from './files';
import type { CatalogEntry, FileCatalog } from './ports';

export type { RedoMarks } from '../ledger/file-claim';

export interface RetryDeps extends FileQueries {
  readonly catalog: FileCatalog & RedoMarks;
  /** StartExecution of the file workflow (SfnWorkflowStarter; on one machine the local endpoint's). */
  readonly workflow: WorkflowStarter;
  readonly now?: () => Date;
}

/**
 * The input of a redo round's execution (statemachines/file-ingestion.asl.json, IsRedo): the archived file and
 * what the first execution knew of it, where its results.csv is (SelectRedo picks the lines to send again from
 * it) and where those lines go.
 */
export interface RedoExecution {
  readonly redo: {
    readonly fileId: string;
    readonly round: number;
    readonly kind: FileKind;
    readonly format: 'csv' | 'jsonl';
    /** The source where it is archived (summary.archived): read, never moved again. */
    readonly file: ObjectRef;
    readonly name: string;
    readonly partner: string;
    readonly landedAt: string;
    /** The file's results.csv, as its last summary wrote it. */
    readonly results: ObjectRef;
    /** Where SelectRedo writes the round's lines, and its prepare slices read them. */
    readonly lines: ObjectRef;
    readonly codes: readonly string[];
  };
}

/** At most this many codes in one request. */
export const MAX_RETRY_CODES = 50;

/** Failures no redo can change: the record itself must be fixed and the file sent again. */
const NOT_RETRYABLE = 'VALIDATION';

const RetryBody = z.object(
  {
    codes: z
      .array(z.string({ error: 'codes: each a CRM code or failure reason, as text' }).min(1).max(64), {
        error: 'codes: a list of CRM codes or failure reasons, e.g. ["4404"]',
      })
      .min(1, { error: 'codes: at least one code' })
      .max(MAX_RETRY_CODES, { error: `codes: at most ${MAX_RETRY_CODES} codes` }),
  },
  { error: 'body: a JSON object {"codes": [...]}' },
);

/** Where a round's lines are written: beside the reports, in the archive bucket. */
export const redoLinesKey = (fileId: string, round: number) => `redo/${fileId}/${round}.lines`;

/** A round's execution name: unique per file and round (Step Functions refuses a name twice). */
export const redoExecutionName = (fileId: string, round: number) => `redo-${fileId.slice(0, 12)}-${round}`;

/**
 * POST /v1/files/{fileId}/retry: a finished file's failed records with the codes asked for (CRM codes,
 * CONFLICTING_PROFILE, CANCELLED; never VALIDATION) are sent again as a new redo round, REDO<round>, whose
 * idempotency keys are new. The request only checks (the summary's failure counts say whether any record has
 * those codes: nothing is read from results.csv here, whatever the file's size), takes the round on the claim
 * (refused while one is in flight: race-free) and starts the round's execution on the archived file, whose
 * first step picks the lines from results.csv; its reports, summary and counts are rewritten when the round
 * ends. Answers the file's view (202): the round queued, its records (those counts) pending.
 */
export async function retryFile(deps: RetryDeps, fileId: string, body: unknown): Promise<FileView> {
  const { codes } = parseParams(RetryBody, body);
  const wanted = new Set(codes);
  if (wanted.has(NOT_RETRYABLE)) {
    throw new ApiError(
      'BadRequest',
      `codes: ${NOT_RETRYABLE} cannot be retried: a record that failed validation is sent again in a fixed file (its failed-records file, corrected)`,
    );
  }
  const entry = await catalogued(deps, fileId);
  const { summary } = entry;
  if (!summary) {
    throw new ApiError('Conflict', `${entry.name} is still running: retry its failed records once it is finished`);
  }
  const source = roundSource(entry, summary);
  if (entry.redo && !entry.redo.done) {
    if (source) await restartInFlight(deps, entry, source, entry.redo);
    throw new ApiError('Conflict', `${entry.name} is being retried (round ${entry.redo.round}): wait for it to finish`);
  }
  if (!source) {
    throw new ApiError('Conflict', `${entry.name} has no records to retry (${summary.status}: none was sent)`);
  }
  const retried = Object.entries(summary.failures).filter(([reason, count]) => wanted.has(reason) && count > 0);
  if (retried.length === 0) {
    const has = Object.entries(summary.failures)
      .filter(([, count]) => count > 0)
      .map(([reason, count]) => `${reason} (${count})`);
    throw new ApiError(
      'Conflict',
      `${entry.name} has no failed record with ${codes.join(', ')}: its failures are ${has.length > 0 ? has.join(', ') : 'none'}`,
    );
  }
  const mark: RedoMark = {
    round: (entry.redo?.round ?? 0) + 1,
    codes: retried.map(([reason]) => reason),
    lines: retried.reduce((sum, [, count]) => sum + count, 0),
    requestedAt: (deps.now?.() ?? new Date()).toISOString(),
  };
  if (!(await deps.catalog.markRedo(entry.fileId, mark))) {
    throw new ApiError('Conflict', `${entry.name} is being retried already: wait for that round to finish`);
  }
  await startRound(deps, entry.fileId, mark.round, redoExecution(entry, source, mark));
  return fileView(deps, (await deps.catalog.get(entry.fileId)) ?? { ...entry, redo: { ...mark } });
}

/**
 * Starts the round's execution under its one name. A start that failed without a clear answer may have started
 * it (the answer lost, the SDK's retries spent): the same name again tells, `already` (or an idempotent success)
 * meaning it runs. Only a start the service refused gives the round up; otherwise the round stays taken, and
 * the next request starts it again by that name ({@link restartInFlight}): never a second round over the same
 * lines, whose new idempotency keys would send them twice.
 */
async function startRound(deps: RetryDeps, fileId: string, round: number, input: RedoExecution): Promise<void> {
  const name = redoExecutionName(fileId, round);
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.workflow.start(name, input);
      return;
    } catch (error) {
      if (error instanceof WorkflowStartRefused) {
        await deps.catalog.abandonRedo(fileId, round, error.message).catch(() => undefined);
        throw error;
      }
      // No clear answer twice: the round stays taken, and the next request starts it by its name.
      if (attempt === 2) throw error;
    }
  }
}

/**
 * A round taken whose execution may never have started (the request that took it was cut off, or could not
 * tell): started now by its name and the same input, which starts nothing when it exists (`already`, or
 * Step Functions' idempotent answer to the same name and input). Best effort: the answer is the 409 anyway.
 */
async function restartInFlight(deps: RetryDeps, entry: CatalogEntry, source: RoundSource, mark: RedoMark) {
  await deps.workflow
    .start(redoExecutionName(entry.fileId, mark.round), redoExecution(entry, source, mark))
    .catch(() => undefined);
}

/** What a round reads: the archived source, its kind and the results.csv its lines are picked from. */
interface RoundSource {
  readonly kind: FileKind;
  readonly file: ObjectRef;
  readonly results: ObjectRef;
  readonly format: 'csv' | 'jsonl';
  readonly landedAt?: string;
}

/** The file's round source; none for a file that sent nothing (a duplicate, refused, of no known kind). */
function roundSource(entry: CatalogEntry, summary: FinalSummary): RoundSource | undefined {
  const { results, bucket, failedRecords } = summary.reports;
  if (summary.status === 'duplicate' || !results || !summary.archived || entry.kind === 'unknown') return undefined;
  return {
    kind: entry.kind,
    file: summary.archived,
    results: { bucket, key: results },
    format: formatOf(failedRecords ?? entry.name),
    ...(summary.landedAt ? { landedAt: summary.landedAt } : {}),
  };
}

/** The round's execution input: the same for the same claim and mark, so a start repeated is the same start. */
function redoExecution(entry: CatalogEntry, source: RoundSource, mark: RedoMark): RedoExecution {
  return {
    redo: {
      fileId: entry.fileId,
      round: mark.round,
      kind: source.kind,
      format: source.format,
      file: source.file,
      name: entry.name,
      partner: entry.partner,
      landedAt: source.landedAt ?? entry.landedAt,
      results: source.results,
      lines: { bucket: source.results.bucket, key: redoLinesKey(entry.fileId, mark.round) },
      codes: [...mark.codes],
    },
  };
}

/** The file's record format, from its failed-records file's name (written in the source's format) or its own. */
const formatOf = (name: string): RecordFormat => encodingFromName(name).format ?? 'csv';
