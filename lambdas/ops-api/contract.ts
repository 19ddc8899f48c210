import { z } from 'zod';
import { defineContract, defineEnvironment, jsonVariable } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';
import { ErrorNames } from '../core/errors';
import { FILE_KINDS } from '../core/files/record-schemas';
import { FILE_STATUSES } from '../core/operations/file-view';
import { SCHEDULE_SETTINGS } from '../core/schedule/schedule';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

/**
 * The operations API (../shared/ops-api.md): one handler module for every route, deployed as one Lambda per
 * group of routes (each with only the permissions its group needs, lib/constructs/ops-api.ts), and served on one
 * machine by `ingest up` from the same code. OPS_ROUTES names the groups a function answers.
 */
export const ROUTE_GROUPS = ['read', 'control', 'retry', 'validate', 'uploads', 'stats'] as const;
export type RouteGroup = (typeof ROUTE_GROUPS)[number];

/** POST /v1/validate: a larger body is 413. */
export const MAX_VALIDATE_BYTES = 5 * 1024 * 1024;
/**
 * Text a file to validate may inflate to (a gzip body): past it the answer is File.TooLarge, as a run past
 * MAX_DECOMPRESSED_BYTES says, so a 5 MB gzip bomb costs seconds, not the function's whole time.
 */
export const VALIDATE_MAX_TEXT_BYTES = 256 * 1024 * 1024;
/** How long a pre-signed upload URL stays valid. */
export const UPLOAD_URL_SECONDS = 15 * 60;

const Iso = z.string();
const Counts = z.record(z.string(), z.number().int().min(0));

/** The file view (ops-api.md): what every file route answers, and the dashboard shows. */
export const FileViewSchema = z.object({
  fileId: z.string(),
  name: z.string(),
  partner: z.string(),
  kind: z.enum([...FILE_KINDS, 'unknown']),
  status: z.enum(FILE_STATUSES),
  phase: z.string().nullable(),
  waitingFor: z.string().nullable(),
  received: z.number().int().min(0),
  succeeded: z.number().int().min(0),
  failed: z.number().int().min(0),
  pending: z.number().int().min(0),
  failures: Counts,
  calls: z.object({ made: z.number().int().min(0), remaining: z.number().int().min(0) }),
  progress: z.number().min(0).max(1),
  etaSeconds: z.number().min(0).nullable(),
  landedAt: Iso,
  startedAt: Iso.nullable(),
  finishedAt: Iso.nullable(),
  reports: z.object({
    summary: z.string().nullable(),
    results: z.string().nullable(),
    failedRecords: z.string().nullable(),
  }),
});

export const FileDetailSchema = FileViewSchema.extend({
  phases: z.array(
    z.object({
      phase: z.string(),
      batches: z.number().int().min(0).nullable(),
      answered: z.number().int().min(0),
      calls: z.number().int().min(0),
    }),
  ),
});

export const FileListSchema = z.object({ files: z.array(FileViewSchema), next: z.string().nullable() });

export const FileRecordSchema = z.object({
  line: z.number().int().min(1),
  recordId: z.string(),
  operations: z.array(z.string()),
  outcome: z.enum(['succeeded', 'failed']),
  code: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.number().int().min(0),
});
export const FileRecordsSchema = z.object({ records: z.array(FileRecordSchema), next: z.string().nullable() });

export const RecordLookupSchema = z.object({
  records: z.array(
    z.object({
      fileId: z.string(),
      name: z.string(),
      partner: z.string(),
      line: z.number().int().min(1),
      outcome: z.enum(['succeeded', 'failed']),
      code: z.string().nullable(),
      error: z.string().nullable(),
      finishedAt: Iso.nullable(),
    }),
  ),
});

export const ValidationSchema = z.union([
  z.object({
    kind: z.enum([...FILE_KINDS, 'unknown']),
    format: z.enum(['csv', 'jsonl']),
    received: z.number().int().min(0),
    valid: z.number().int().min(0),
    invalid: z.number().int().min(0),
    failures: Counts,
    problems: z.array(z.object({ line: z.number().int().min(1), reason: z.string() })).max(100),
  }),
  z.object({ kind: z.enum([...FILE_KINDS, 'unknown']), error: z.string() }),
]);

export const UploadSchema = z.object({
  url: z.string(),
  method: z.literal('PUT'),
  headers: z.record(z.string(), z.string()),
  expiresAt: Iso,
});

export const StatsSchema = z.object({
  limitPerMinute: z.number().int().min(1),
  callsPerMinute: z.array(z.number().min(0)),
  recordsPerMinute: z.object({ succeeded: z.array(z.number().min(0)), failed: z.array(z.number().min(0)) }),
  latencyMs: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }),
  errorsByCode: Counts,
  queue: z.object({ waiting: z.number().int().min(0), inFlight: z.number().int().min(0) }),
  files: z.object({
    running: z.number().int().min(0),
    waiting: z.number().int().min(0),
    paused: z.number().int().min(0),
  }),
});

export const ErrorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** API Gateway's proxy event, as far as the router reads it (the local server builds the same). */
const Input = z.looseObject({
  httpMethod: z.string(),
  path: z.string(),
  queryStringParameters: z.record(z.string(), z.string().optional()).nullable().optional(),
  body: z.string().nullable().optional(),
  isBase64Encoded: z.boolean().optional(),
});

export const opsApiContract = defineContract({
  name: 'ops-api',
  description: 'The operations API: files, records, pause/resume/cancel, retry, validate, uploads, stats',
  timeoutSeconds: 29,
  memoryMb: 1024,
  input: Input,
  outputs: {
    default: z.object({
      statusCode: z.number().int(),
      headers: z.record(z.string(), z.string()),
      body: z.string(),
    }),
  },
  environment: defineEnvironment(
    {
      OPS_ROUTES: jsonVariable(z.array(z.enum(ROUTE_GROUPS)).min(1)),
      LEDGER_TABLE_NAME: z.string().min(1),
      ARCHIVE_BUCKET_NAME: z.string().min(1),
      LANDING_BUCKET_NAME: z.string().min(1),
      LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
      CALL_QUEUE_URL: z.string().min(1).optional(),
      STATE_MACHINE_ARN: z.string().min(1).optional(),
    },
    [
      'callsPerMinute',
      'acceptedEncodings',
      'maxFileSizeBytes',
      'maxDecompressedBytes',
      'ledgerRetentionDays',
      'logLevel',
      ...SCHEDULE_SETTINGS,
    ],
  ),
  errors: [ErrorNames.transient],
  metrics: metricsOf('ops-api'),
});

export type OpsApiEnvironment = ReturnType<typeof opsApiContract.environment.read>;
