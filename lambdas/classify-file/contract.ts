import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';
import { z } from 'zod';
import { defineContract, defineEnvironment, FileRefSchema, Sha256Schema } from '../contracts/function-contract';
import { WHOLE_FILE_MEMORY_MB } from '../contracts/infrastructure';
import { metricsOf } from '../contracts/telemetry';
import { ErrorNames } from '../core/errors';
import { FILE_KINDS } from '../core/files/record-schemas';

export const ClassificationSchema = z.object({
  kind: z.enum(FILE_KINDS),
  by: z.string(),
  sha256: Sha256Schema,
  size: z.number().int().min(0),
  format: z.enum(['csv', 'jsonl']),
  versionId: z.string().optional(),
});

const Offset = z.number().int().min(0);
const PositionBase = { bytes: Offset, line: z.number().int().min(1), gzip: z.boolean() };

/**
 * Where the next slice of the identity and readability pass goes on (lambdas/core/files/identify-file.ts
 * IdentifyCheckpoint): what the head decided, the reader's position (a line boundary) and, for a plain file,
 * the SHA-256 state of the bytes before it.
 */
export const IdentifyCheckpointSchema = z.object({
  kind: z.enum(FILE_KINDS),
  by: z.enum(['metadata', 'tag', 'name', 'header']),
  format: z.enum(['csv', 'jsonl']),
  position: z.discriminatedUnion('format', [
    z.object({ ...PositionBase, format: z.literal('csv'), columns: z.array(z.string()) }),
    z.object({ ...PositionBase, format: z.literal('jsonl'), seenRecord: z.boolean() }),
  ]),
  sha256State: z.string().max(1024).optional(),
});

/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('classify'),
    file: FileRefSchema,
    /** The slice before's result (`$.classification`): absent, or `{done: false}` with no checkpoint, on the first. */
    resume: z
      .object({ done: z.literal(false), checkpoint: IdentifyCheckpointSchema.optional() })
      .nullable()
      .optional(),
  }),
  z.object({
    action: z.literal('claim'),
    file: FileRefSchema,
    classification: ClassificationSchema.pick({ kind: true, sha256: true, versionId: true }),
    /** When the file landed (the execution's start): the schedule orders files by it. */
    landedAt: z.iso.datetime({ offset: true }).optional(),
  }),
  z.object({
    /**
     * A redo round of a finished file (POST /v1/files/{fileId}/retry): the file back in the schedule, with the
     * time it first landed, so pause, cancel, the ETA and the ordering rules hold for its calls as for any file's.
     */
    action: z.literal('register'),
    redo: z.object({
      fileId: Sha256Schema,
      kind: z.enum(FILE_KINDS),
      name: z.string().min(1),
      partner: z.string(),
      landedAt: z.iso.datetime({ offset: true }),
    }),
  }),
]);

/** classify: kind and SHA-256 of a landed file (or why it is of no known kind), in resumable slices; claim: its claim by SHA-256. */
export const classifyFileContract = defineContract({
  name: 'classify-file',
  description: 'Classifies a landed file and claims it by SHA-256',
  timeoutSeconds: 15 * 60,
  memoryMb: WHOLE_FILE_MEMORY_MB,
  input: Input,
  outputs: {
    /** `done: false` with a checkpoint while the pass goes on in another invocation; the last slice's is `done: true`. */
    classify: z.union([
      ClassificationSchema.extend({ done: z.literal(true) }),
      z.object({
        kind: z.literal('unknown'),
        reason: z.string(),
        size: z.number().int().min(0),
        done: z.literal(true),
      }),
      z.object({ done: z.literal(false), checkpoint: IdentifyCheckpointSchema }),
    ]),
    claim: z.discriminatedUnion('outcome', [
      z.object({ outcome: z.literal('claimed') }),
      z.object({ outcome: z.literal('duplicate'), duplicateOf: z.string() }),
      z.object({ outcome: z.literal('redelivered') }),
    ]),
    register: z.object({ registered: z.literal(true) }),
  },
  environment: defineEnvironment(
    { LEDGER_TABLE_NAME: z.string().min(1), LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX) },
    ['maxFileSizeBytes', 'maxDecompressedBytes', 'acceptedEncodings', 'ledgerRetentionDays', 'logLevel'],
  ),
  errors: [
    ErrorNames.fileUnreadable,
    ErrorNames.fileTooLarge,
    ErrorNames.fileEncodingNotAccepted,
    ErrorNames.fileGone,
    ErrorNames.transient,
    ErrorNames.failed,
  ],
  metrics: metricsOf('classify-file'),
});

export type ClassifyFileInput = z.infer<typeof Input>;
export type ClassifyFileEnvironment = ReturnType<typeof classifyFileContract.environment.read>;
