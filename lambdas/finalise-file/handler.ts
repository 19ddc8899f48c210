import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import { asTransient, dynamoDbClient, eventBridgeClient, s3Client } from '../adapters/aws/clients';
import { DynamoDbCallLedger } from '../adapters/aws/dynamodb-call-ledger';
import { DynamoDbFileRegistry } from '../adapters/aws/dynamodb-file-registry';
import { readEnvironment } from '../adapters/aws/environment';
import { EventBridgePublisher } from '../adapters/aws/eventbridge-publisher';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { loadConfig } from '../core/config';
import { PipelineError } from '../core/errors';
import { FILE_KINDS } from '../core/files/record-schemas';
import { finaliseDuplicate, finaliseFile, quarantineFile, type FinalSummary } from '../core/workflow/finalise-file';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

const Environment = z.object({
  LEDGER_TABLE_NAME: z.string().min(1),
  ARCHIVE_BUCKET_NAME: z.string().min(1),
  FAILED_BUCKET_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1).default('default'),
  LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
});

const FileRef = z.object({ bucket: z.string().min(1), key: z.string().min(1) });
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Classification = z.object({ kind: z.enum(FILE_KINDS), sha256: Sha256, format: z.enum(['csv', 'jsonl']) });
/** The state machine's calls of this function (statemachines/file-ingestion.asl.json). */
const Input = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('finalise'),
    file: FileRef,
    classification: Classification,
    retryAttempts: z.number().int().min(0),
  }),
  z.object({
    action: z.literal('duplicate'),
    file: FileRef,
    classification: Classification,
    claim: z.object({ duplicateOf: z.string() }),
  }),
  z.object({
    action: z.literal('quarantine'),
    file: FileRef,
    error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }),
  }),
]);

const environment = readEnvironment(Environment);
const settings = loadConfig({ env: process.env });
export const logger = new Logger({ serviceName: 'finalise-file' });
export const metrics = new Metrics({ namespace: 'CrmIngestion', serviceName: 'finalise-file' });
const dynamodb = dynamoDbClient();
const registry = new DynamoDbFileRegistry(dynamodb, environment.LEDGER_TABLE_NAME);
const deps = {
  store: new S3ObjectStore(s3Client()),
  answers: new DynamoDbCallLedger(dynamodb, environment.LEDGER_TABLE_NAME),
  outcomes: registry,
  events: new EventBridgePublisher(eventBridgeClient(), environment.EVENT_BUS_NAME),
  archiveBucket: environment.ARCHIVE_BUCKET_NAME,
  failedBucket: environment.FAILED_BUCKET_NAME,
  landingPrefix: environment.LANDING_PREFIX,
  acceptedEncodings: settings.acceptedEncodings,
};

/** Per-file metrics: files by status, records by outcome and failure reason, and the time from claim to finish. */
async function reportMetrics(summary: FinalSummary, fileId?: string): Promise<void> {
  const file = metrics.singleMetric();
  file.addDimensions({ Kind: summary.kind, Status: summary.status });
  file.addMetric('Files', MetricUnit.Count, 1);
  const kind = metrics.singleMetric();
  kind.addDimensions({ Kind: summary.kind });
  kind.addMetric('RecordsReceived', MetricUnit.Count, summary.received);
  kind.addMetric('RecordsSucceeded', MetricUnit.Count, summary.succeeded);
  kind.addMetric('RecordsFailed', MetricUnit.Count, summary.failed);
  for (const [reason, count] of Object.entries(summary.failures)) {
    const failures = metrics.singleMetric();
    failures.addDimensions({ Kind: summary.kind, Reason: reason });
    failures.addMetric('RecordsFailedByReason', MetricUnit.Count, count);
  }
  const claimedAt = fileId ? (await registry.read(fileId))?.claimedAt : undefined;
  if (claimedAt) metrics.addMetric('FileDuration', MetricUnit.Seconds, (Date.now() - Date.parse(claimedAt)) / 1000);
}

async function run(input: z.infer<typeof Input>): Promise<FinalSummary> {
  if (input.action === 'quarantine') return quarantineFile(input, deps);
  const { kind, sha256, format } = input.classification;
  if (input.action === 'duplicate') {
    return finaliseDuplicate({ file: input.file, kind, fileId: sha256, duplicateOf: input.claim.duplicateOf }, deps);
  }
  return finaliseFile({ file: input.file, kind, fileId: sha256, format, retryPhases: input.retryAttempts }, deps);
}

/** finalise: reconcile, report and archive a processed file; duplicate and quarantine: the files not processed. */
export const handler = middy(async (event: unknown) => {
  const input = Input.parse(event);
  try {
    const summary = await run(input);
    await reportMetrics(summary, input.action === 'finalise' ? input.classification.sha256 : undefined);
    // Counts and reasons only: no record data in logs.
    const { reports: _reports, archived: _archived, ...counts } = summary;
    logger.info('file finished', { action: input.action, key: input.file.key, ...counts });
    return summary;
  } catch (error) {
    // Ledger.Mismatch fails the state (the alarm on failed executions fires); nothing is archived.
    if (error instanceof PipelineError) throw error;
    throw asTransient(error);
  }
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
