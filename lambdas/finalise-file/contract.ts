import { z } from 'zod';
import { defineContract, defineEnvironment, FileRefSchema, Sha256Schema } from '../contracts/function-contract';
import { WHOLE_FILE_MEMORY_MB } from '../contracts/infrastructure';
import { metricsOf } from '../contracts/telemetry';
import { ErrorNames } from '../core/errors';
import { FILE_KINDS } from '../core/files/record-schemas';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';
import { CheckpointSchema as PrepareCheckpointSchema } from '../prepare-file/contract';

const Classification = z.object({ kind: z.enum(FILE_KINDS), sha256: Sha256Schema, format: z.enum(['csv', 'jsonl']) });

const Count = z.number().int().min(0);
const AnswerPosition = z.object({ batch: Count, at: Count });
const UploadCheckpoint = z.object({
  uploadId: z.string().min(1).optional(),
  token: z.string().min(1).optional(),
  etags: z.array(z.string()),
  carry: z.string().min(1).optional(),
  staleCarry: z.string().min(1).optional(),
});

/**
 * Where the next finalise slice goes on (lambdas/core/workflow/finalise-file.ts FinaliseCheckpoint): a record
 * boundary of the source, the counts so far, each phase's answer stream's place, and the two uploads (UploadId,
 * parts' ETags, the key of the text after the last part). No record: a few KB.
 */
export const FinaliseCheckpointSchema = z.object({
  position: PrepareCheckpointSchema.shape.position,
  report: z.object({
    received: Count,
    succeeded: Count,
    failed: Count,
    failures: z.record(z.string(), Count),
    failedHeader: z.array(z.string()).optional(),
    add: AnswerPosition,
    later: z.array(AnswerPosition),
  }),
  results: UploadCheckpoint,
  failedRecords: UploadCheckpoint.optional(),
});

/** A finished file, as finalise returns it, `file.completed` carries it and summary.json holds it. */
export const FinalSummarySchema = z.object({
  name: z.string(),
  sha256: z.string(),
  kind: z.enum([...FILE_KINDS, 'unknown']),
  status: z.enum(['succeeded', 'partial', 'failed', 'duplicate', 'cancelled']),
  received: z.number().int().min(0),
  succeeded: z.number().int().min(0),
  failed: z.number().int().min(0),
  failures: z.record(z.string(), z.number().int().min(0)),
  reason: z.string().optional(),
  /** When the file landed, its first call was queued, and its reports were written (ISO 8601). */
  landedAt: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  /** CRM calls the file took (retries included); none remain once it is finished. */
  calls: z.object({ made: z.number().int().min(0), remaining: z.literal(0) }).optional(),
  reports: z.object({
    bucket: z.string().min(1),
    summary: z.string().min(1),
    results: z.string().optional(),
    failedRecords: z.string().optional(),
  }),
  archived: FileRefSchema.optional(),
  /** Redo rounds (retries by code) the summary includes. */
  redoRounds: z.number().int().min(1).optional(),
  /** The file was cancelled once (its first run or a round): kept in every later summary. */
  cancelled: z.literal(true).optional(),
});

/** A caught error, as a Catch's ResultPath holds it. */
const StateError = z.object({ Error: z.string().optional(), Cause: z.string().optional() });

const RedoRound = z.number().int().min(1);

/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('finalise'),
    file: FileRefSchema,
    classification: Classification,
    retryAttempts: z.number().int().min(0),
    /** A redo round (`$.redo`, null in a file's first execution): every phase the file has had is reported again. */
    redo: z.object({ round: RedoRound }).nullable().optional(),
    /**
     * Set by the definition that has the ArchiveFile step. An execution started under the definition before it
     * (running when that was deployed) leaves it out: its last slice then archives too, as it used to.
     */
    archiveStep: z.literal(true).optional(),
    /** The slice before's result (`$.summary`): absent, or `{done: false}` with no checkpoint, on the first. */
    resume: z
      .object({ done: z.literal(false), checkpoint: FinaliseCheckpointSchema.optional() })
      .nullable()
      .optional(),
  }),
  z.object({
    /** After the last finalise slice: the source moved to the archive (in parts above 5 GiB), then file.completed. */
    action: z.literal('archive'),
    file: FileRefSchema,
    summary: FinalSummarySchema.extend({ archived: FileRefSchema }),
  }),
  z.object({
    action: z.literal('duplicate'),
    file: FileRefSchema,
    classification: Classification,
    claim: z.object({ duplicateOf: z.string() }),
  }),
  z.object({
    action: z.literal('quarantine'),
    file: FileRefSchema,
    error: StateError,
  }),
  z.object({
    /**
     * A redo round's first step (SelectRedo): the failed records of results.csv with `codes`, streamed, their
     * lines written to `lines` for the round's prepare slices. Here, not in the API request: a large file's
     * results.csv takes longer to read than an API request may last.
     */
    action: z.literal('select-redo'),
    fileId: Sha256Schema,
    round: RedoRound,
    codes: z.array(z.string().min(1)).min(1),
    results: FileRefSchema,
    lines: FileRefSchema,
  }),
  z.object({
    /**
     * A redo round that failed (any state's Catch, after its retries) or found nothing to send (GiveUpRedo): the
     * file leaves the schedule and the round is marked given up on the claim, so a new retry may start. The
     * summary, reports and archived file are left untouched: a redo never quarantines.
     */
    action: z.literal('abandon-redo'),
    fileId: Sha256Schema,
    round: RedoRound,
    error: StateError,
  }),
]);

/**
 * finalise: reconcile and report a processed file, in slices; archive: then move it to the archive and emit
 * file.completed; duplicate and quarantine: the files not processed; select-redo and abandon-redo: a redo
 * round's first step and its end when it fails.
 */
export const finaliseFileContract = defineContract({
  name: 'finalise-file',
  description: 'Reconciles, reports and archives (or quarantines) a file',
  timeoutSeconds: 15 * 60,
  memoryMb: WHOLE_FILE_MEMORY_MB,
  input: Input,
  outputs: {
    // done: false while the file needs more slices (the state machine loops on it), true with the summary.
    finalise: z.union([
      FinalSummarySchema.extend({ done: z.literal(true) }),
      z.object({ done: z.literal(false), checkpoint: FinaliseCheckpointSchema }),
    ]),
    archive: FinalSummarySchema,
    duplicate: FinalSummarySchema,
    quarantine: FinalSummarySchema,
    // The records the round sends again: 0 ends it (given up, nothing sent).
    'select-redo': z.object({ lines: z.number().int().min(0) }),
    // False when the round had already ended (a repeated step).
    'abandon-redo': z.object({ abandoned: z.boolean() }),
  },
  environment: defineEnvironment(
    {
      LEDGER_TABLE_NAME: z.string().min(1),
      ARCHIVE_BUCKET_NAME: z.string().min(1),
      FAILED_BUCKET_NAME: z.string().min(1),
      EVENT_BUS_NAME: z.string().min(1).default('default'),
      LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
    },
    ['acceptedEncodings', 'maxDecompressedBytes', 'ledgerRetentionDays', 'logLevel'],
  ),
  // Ledger.Mismatch fails the state (the alarm on failed executions fires); nothing is archived.
  errors: [ErrorNames.ledgerMismatch, ErrorNames.fileGone, ErrorNames.transient, ErrorNames.failed],
  metrics: metricsOf('finalise-file'),
});

export type FinaliseFileInput = z.infer<typeof Input>;
export type FinaliseFileEnvironment = ReturnType<typeof finaliseFileContract.environment.read>;
