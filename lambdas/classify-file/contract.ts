import { z } from 'zod';
import { defineContract, defineEnvironment, FileRefSchema, Sha256Schema } from '../contracts/function-contract';
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

/** The state machine's two calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({ action: z.literal('classify'), file: FileRefSchema }),
  z.object({
    action: z.literal('claim'),
    file: FileRefSchema,
    classification: ClassificationSchema.pick({ kind: true, sha256: true, versionId: true }),
  }),
]);

/** classify: kind and SHA-256 of a landed file (or why it is of no known kind); claim: its claim by SHA-256. */
export const classifyFileContract = defineContract({
  name: 'classify-file',
  description: 'Classifies a landed file and claims it by SHA-256',
  timeoutSeconds: 15 * 60,
  input: Input,
  outputs: {
    classify: z.union([
      ClassificationSchema,
      z.object({ kind: z.literal('unknown'), reason: z.string(), size: z.number().int().min(0) }),
    ]),
    claim: z.discriminatedUnion('outcome', [
      z.object({ outcome: z.literal('claimed') }),
      z.object({ outcome: z.literal('duplicate'), duplicateOf: z.string() }),
      z.object({ outcome: z.literal('redelivered') }),
    ]),
  },
  environment: defineEnvironment({ LEDGER_TABLE_NAME: z.string().min(1) }, [
    'maxFileSizeBytes',
    'maxDecompressedBytes',
    'acceptedEncodings',
    'ledgerRetentionDays',
    'logLevel',
  ]),
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
