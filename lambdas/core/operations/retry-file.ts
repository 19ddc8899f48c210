import { z } from 'zod';
import type { ObjectRef, ObjectStore } from '../files/object-store';
import type { FileKind } from '../files/record-schemas';
import type { RedoMark } from '../ledger/file-claim';
import { lineSetText } from '../workflow/prepare-phase';
import type { WorkflowStarter } from '../workflow/sweep-landing-zone';
import { ApiError } from './api-error';
import { resultRows } from './file-records';
import type { FileView } from './file-view';
import { catalogued, fileView, parseParams, type FileQueries } from './files';
import type { FileCatalog } from './ports';

/** The claim's redo mark (DynamoDbFileRegistry): one conditional write takes a round. */
export interface RedoMarks {
  /** False when refused: the file is not finished, a round is in flight, or `mark.round` is not the next. */
  markRedo(fileId: string, mark: RedoMark): Promise<boolean>;
  /** Ends a round whose execution could not be started, so the next request may go on. */
  abandonRedo(fileId: string, round: number): Promise<void>;
}

export interface RetryDeps extends FileQueries {
  readonly catalog: FileCatalog & RedoMarks;
  /** The archive bucket: results.csv read, the round's lines written. */
  readonly reports: Pick<ObjectStore, 'read' | 'put'>;
  /** StartExecution of the file workflow (SfnWorkflowStarter; on one machine the local endpoint's). */
  readonly workflow: WorkflowStarter;
  readonly now?: () => Date;
}

/**
 * The input of a redo round's execution (statemachines/file-ingestion.asl.json, IsRedo): the archived file and
 * what the first execution knew of it, and the object that lists the lines to send again.
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
 * idempotency keys are new. Its lines are picked from results.csv and written to the archive bucket, the round
 * is taken on the claim (refused while one is in flight: race-free), and the file's workflow is started on the
 * archived file; its reports, summary and counts are rewritten when the round ends. Answers the file's view
 * (202): the round in flight.
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
  if (entry.redo && !entry.redo.done) {
    throw new ApiError('Conflict', `${entry.name} is being retried (round ${entry.redo.round}): wait for it to finish`);
  }
  if (summary.status === 'duplicate' || !summary.reports.results || !summary.archived || entry.kind === 'unknown') {
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
  const bucket = summary.reports.bucket;
  const lines: number[] = [];
  for await (const record of resultRows(deps.reports, { bucket, key: summary.reports.results })) {
    if (record.outcome === 'failed' && record.code !== null && wanted.has(record.code)) lines.push(record.line);
  }
  const round = (entry.redo?.round ?? 0) + 1;
  const mark: RedoMark = {
    round,
    codes: retried.map(([reason]) => reason),
    lines: lines.length,
    requestedAt: (deps.now?.() ?? new Date()).toISOString(),
  };
  if (!(await deps.catalog.markRedo(entry.fileId, mark))) {
    throw new ApiError('Conflict', `${entry.name} is being retried already: wait for that round to finish`);
  }
  try {
    const linesRef = { bucket, key: redoLinesKey(entry.fileId, round) };
    await deps.reports.put(linesRef, lineSetText(lines), 'text/plain; charset=utf-8');
    const input: RedoExecution = {
      redo: {
        fileId: entry.fileId,
        round,
        kind: entry.kind,
        format: formatOf(summary.reports.failedRecords ?? entry.name),
        file: summary.archived,
        name: entry.name,
        partner: entry.partner,
        landedAt: summary.landedAt ?? entry.landedAt,
        lines: linesRef,
        codes: mark.codes,
      },
    };
    // `already`: this round's execution exists (a request repeated after a lost answer): it is the one.
    await deps.workflow.start(redoExecutionName(entry.fileId, round), input);
  } catch (error) {
    await deps.catalog.abandonRedo(entry.fileId, round).catch(() => undefined);
    throw error;
  }
  return fileView(deps, (await deps.catalog.get(entry.fileId)) ?? { ...entry, redo: { ...mark } });
}

/** The file's record format, from its failed-records file's name (written in the source's format) or its own. */
const formatOf = (name: string): 'csv' | 'jsonl' => (/\.(jsonl|ndjson)(\.gz)?$/i.test(name) ? 'jsonl' : 'csv');
