import { z } from 'zod';
import { defineContract, defineEnvironment, FileRefSchema, Sha256Schema } from '../contracts/function-contract';
import { WHOLE_FILE_MEMORY_MB } from '../contracts/infrastructure';
import { metricsOf } from '../contracts/telemetry';
import { PHASE_PATTERN } from '../core/crm/call-message';
import { ErrorNames } from '../core/errors';
import { FILE_KINDS } from '../core/files/record-schemas';
import { SCHEDULE_SETTINGS } from '../core/schedule/schedule';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

const Phase = z.string().regex(PHASE_PATTERN);

const Offset = z.number().int().min(0);
const PositionBase = { bytes: Offset, line: z.number().int().min(1), gzip: z.boolean() };

/**
 * Where a phase's next slice reads on (lambdas/core/files/prepare-file.ts PrepareCheckpoint): a batch boundary
 * in the file's text, the reader's state there, for a plain file the SHA-256 state of the bytes before it, and the
 * records read and refused before it (so a retried slice counts none twice). No records: a few hundred bytes (a
 * CSV header's column names are the largest part).
 */
export const CheckpointSchema = z.object({
  position: z.discriminatedUnion('format', [
    z.object({ ...PositionBase, format: z.literal('csv'), columns: z.array(z.string()) }),
    z.object({ ...PositionBase, format: z.literal('jsonl'), seenRecord: z.boolean() }),
  ]),
  nextBatch: Offset,
  sha256State: z.string().max(1024).optional(),
  /** The phase's records before `position`, over its slices so far (optional: older executions' checkpoints lack it). */
  totals: z.object({ received: Offset, rejected: Offset }).optional(),
});

/** A checkpoint larger than this is not carried (a header of huge column names): the next slice re-reads from byte 0. */
export const MAX_CHECKPOINT_CHARS = 64 * 1024;

/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('segregate'),
    file: FileRefSchema,
    classification: z.object({ kind: z.enum(FILE_KINDS) }),
  }),
  z.object({
    action: z.literal('prepare'),
    file: FileRefSchema,
    classification: z.object({ kind: z.enum(FILE_KINDS), sha256: Sha256Schema }),
    resume: z.object({
      phase: Phase,
      from: Phase.nullable().optional(),
      /** A redo round's first phase: the object that lists its lines (instead of a phase before's answers). */
      lines: FileRefSchema.optional(),
      slices: z.number().int().min(0),
      batches: z.number().int().min(0),
      checkpoint: CheckpointSchema.nullable().optional(),
    }),
  }),
]);

/** segregate: the move under users/ or transactions/; prepare: one slice of a phase into the call queue. */
export const prepareFileContract = defineContract({
  name: 'prepare-file',
  description: 'Segregates a file and enqueues its CRM calls in slices',
  timeoutSeconds: 15 * 60,
  memoryMb: WHOLE_FILE_MEMORY_MB,
  input: Input,
  outputs: {
    segregate: FileRefSchema,
    prepare: z.object({
      phase: Phase,
      from: Phase.nullable(),
      /** Passed on to the phase's next slice. */
      lines: FileRefSchema.optional(),
      done: z.boolean(),
      slices: z.number().int().min(1),
      batches: z.number().int().min(0),
      /** Where the next slice goes on from (only while not done); passed back as `resume.checkpoint`. */
      checkpoint: CheckpointSchema.optional(),
      /** Present while the file may not send now (IsPrepared then waits SCHEDULE_CHECK_S): why. */
      waiting: z.string().optional(),
      /** With `waiting`: AwaitTurn's timeout, when the file asks again if nothing woke it. */
      recheckSeconds: z.number().int().min(1).optional(),
      /** The file was cancelled: the phase was closed with what was queued; NextPhase goes to finalise. */
      cancelled: z.literal(true).optional(),
    }),
  },
  environment: defineEnvironment(
    {
      LEDGER_TABLE_NAME: z.string().min(1),
      CALL_QUEUE_URL: z.string().min(1),
      LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
    },
    [
      'batchSize',
      'batchMaxBytes',
      'acceptedEncodings',
      'maxDecompressedBytes',
      'ledgerRetentionDays',
      'logLevel',
      ...SCHEDULE_SETTINGS,
    ],
  ),
  errors: [
    ErrorNames.fileUnreadable,
    ErrorNames.fileTooLarge,
    ErrorNames.fileEncodingNotAccepted,
    ErrorNames.fileGone,
    ErrorNames.transient,
    ErrorNames.failed,
  ],
  metrics: metricsOf('prepare-file'),
});

export type PrepareFileInput = z.infer<typeof Input>;
export type PrepareFileEnvironment = ReturnType<typeof prepareFileContract.environment.read>;
