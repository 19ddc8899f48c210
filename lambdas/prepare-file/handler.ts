import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { asTransient, dynamoDbClient, s3Client, sfnClient, sqsClient } from '../adapters/aws/clients';
import { DynamoDbCallLedger } from '../adapters/aws/dynamodb-call-ledger';
import { DynamoDbPhaseLedger } from '../adapters/aws/dynamodb-phase-ledger';
import { readEnvironment } from '../adapters/aws/environment';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { SqsCallQueue } from '../adapters/aws/sqs-call-queue';
import { PHASE_PATTERN } from '../core/crm/call-message';
import { loadConfig } from '../core/config';
import { ErrorNames, FileRejectedError, PipelineError } from '../core/errors';
import { FILE_KINDS } from '../core/files/record-schemas';
import { preparePhaseSlice } from '../core/workflow/prepare-phase';
import { DEFAULT_LANDING_PREFIX, segregatedKey } from '../core/workflow/storage-keys';

const Environment = z.object({
  LEDGER_TABLE_NAME: z.string().min(1),
  CALL_QUEUE_URL: z.string().min(1),
  LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
});

const FileRef = z.object({ bucket: z.string().min(1), key: z.string().min(1) });
/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({ action: z.literal('segregate'), file: FileRef, classification: z.object({ kind: z.enum(FILE_KINDS) }) }),
  z.object({
    action: z.literal('prepare'),
    file: FileRef,
    classification: z.object({ kind: z.enum(FILE_KINDS), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
    resume: z.object({
      phase: z.string().regex(PHASE_PATTERN),
      from: z.string().regex(PHASE_PATTERN).nullable().optional(),
      slices: z.number().int().min(0),
      batches: z.number().int().min(0),
    }),
  }),
]);

/** A slice ends this long before the Lambda's timeout, so the batches in hand are sent and the result returned. */
const SLICE_MARGIN_MS = 60_000;

const environment = readEnvironment(Environment);
const settings = loadConfig({ env: process.env });
export const logger = new Logger({ serviceName: 'prepare-file' });
const dynamodb = dynamoDbClient();
const store = new S3ObjectStore(s3Client());
const answers = new DynamoDbCallLedger(dynamodb, environment.LEDGER_TABLE_NAME);
const deps = {
  store,
  queue: new SqsCallQueue(sqsClient(), environment.CALL_QUEUE_URL),
  answers,
  phases: new DynamoDbPhaseLedger(dynamodb, environment.LEDGER_TABLE_NAME, answers),
  notifier: new SfnTaskNotifier(sfnClient()),
  limits: { maxRecords: settings.batchSize, maxBytes: settings.batchMaxBytes },
  acceptedEncodings: settings.acceptedEncodings,
};

async function run(input: z.infer<typeof Input>, context: Context) {
  if (input.action === 'segregate') {
    const to = {
      bucket: input.file.bucket,
      key: segregatedKey(input.file.key, input.classification.kind, environment.LANDING_PREFIX),
    };
    if (!(await store.move(input.file, to))) {
      throw new PipelineError(ErrorNames.fileGone, `s3://${input.file.bucket}/${input.file.key} is no longer there`);
    }
    logger.info('file segregated', { from: input.file.key, to: to.key });
    return to;
  }
  const { resume, classification } = input;
  const started = Date.now();
  const result = await preparePhaseSlice(
    {
      file: input.file,
      kind: classification.kind,
      fileId: classification.sha256,
      phase: resume.phase,
      ...(resume.from ? { from: resume.from } : {}),
      firstBatch: resume.batches,
    },
    deps,
    () => context.getRemainingTimeInMillis() < SLICE_MARGIN_MS,
  );
  logger.info('phase slice enqueued', {
    fileId: classification.sha256,
    phase: resume.phase,
    slice: resume.slices + 1,
    batches: result.nextBatch - resume.batches,
    complete: result.complete,
    ms: Date.now() - started,
  });
  return {
    phase: resume.phase,
    from: resume.from ?? null,
    done: result.complete,
    slices: resume.slices + 1,
    batches: result.nextBatch,
  };
}

/** segregate: the move under users/ or transactions/; prepare: one slice of a phase into the call queue. */
export const handler = middy(async (event: unknown, context: Context) => {
  const input = Input.parse(event);
  try {
    return await run(input, context);
  } catch (error) {
    // File rejections and our own named errors keep their names; AWS hiccups become retryable.
    if (error instanceof FileRejectedError || error instanceof PipelineError) throw error;
    throw asTransient(error);
  }
}).use(injectLambdaContext(logger));
