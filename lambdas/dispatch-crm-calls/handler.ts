import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { dynamoDbClient, secretsManagerClient, sfnClient, sqsClient } from '../adapters/aws/clients';
import { DynamoDbCallLedger } from '../adapters/aws/dynamodb-call-ledger';
import { DynamoDbLimiterStore } from '../adapters/aws/dynamodb-limiter-store';
import { DynamoDbPhaseLedger } from '../adapters/aws/dynamodb-phase-ledger';
import { SfnTaskNotifier } from '../adapters/aws/sfn-task-notifier';
import { readEnvironment } from '../adapters/aws/environment';
import { CallMessageSchema } from '../core/crm/call-message';
import { CrmCallError, CrmClient, type AttemptReport } from '../core/crm/crm-client';
import { dispatchCall, type CallAnswer } from '../core/crm/dispatch-call';
import { RateLimiter } from '../core/crm/rate-limiter';
import { countAnswer } from '../core/ledger/phase-ledger';
import { loadConfig } from '../core/config';
import { ErrorNames } from '../core/errors';

/** The function's own environment; the shared settings (limits, retries, timeouts) come through loadConfig. */
const Environment = z
  .object({
    LEDGER_TABLE_NAME: z.string().min(1),
    LIMITER_TABLE_NAME: z.string().min(1),
    CRM_BASE_URL: z.url(),
    /** Either the token itself (local runs) or the Secrets Manager secret holding it (AWS). */
    CRM_API_TOKEN: z.string().min(1).optional(),
    CRM_API_TOKEN_SECRET_ARN: z.string().min(1).optional(),
    /** The call queue: when given, a transient failure sets its message's visibility for exponential back-off. */
    CALL_QUEUE_URL: z.string().min(1).optional(),
  })
  .refine((env) => env.CRM_API_TOKEN || env.CRM_API_TOKEN_SECRET_ARN, {
    path: ['CRM_API_TOKEN'],
    error: 'CRM_API_TOKEN or CRM_API_TOKEN_SECRET_ARN is required',
  });

export const logger = new Logger({ serviceName: 'crm-dispatch' });
export const metrics = new Metrics({ namespace: 'CrmIngestion', serviceName: 'crm-dispatch' });
const processor = new BatchProcessor(EventType.SQS);

const environment = readEnvironment(Environment);
const settings = loadConfig({ env: process.env });
const dynamodb = dynamoDbClient();
const ledger = new DynamoDbCallLedger(dynamodb, environment.LEDGER_TABLE_NAME);
const phases = new DynamoDbPhaseLedger(dynamodb, environment.LEDGER_TABLE_NAME, ledger);
const notifier = new SfnTaskNotifier(sfnClient());
const limiter = new RateLimiter(new DynamoDbLimiterStore(dynamodb, environment.LIMITER_TABLE_NAME), {
  callsPerWindow: settings.callsPerMinute,
  windowMs: settings.limitWindowSeconds * 1000,
  arrivalJitterMs: settings.limiterJitterMs,
});

/** Emits one attempt's metrics: calls by operation and status, latency, limiter wait, throttles. No record data. */
function reportAttempt(report: AttemptReport): void {
  const call = metrics.singleMetric();
  call.addDimensions({ Operation: report.operation, Status: String(report.status) });
  call.addMetric('CrmCalls', MetricUnit.Count, 1);
  metrics.addMetric('CrmLatency', MetricUnit.Milliseconds, report.latencyMs);
  metrics.addMetric('LimiterWait', MetricUnit.Milliseconds, report.limiterWaitMs);
  if (report.status === 429) metrics.addMetric('CrmThrottled', MetricUnit.Count, 1);
  if (report.replayed) metrics.addMetric('CrmReplays', MetricUnit.Count, 1);
}

function reportAnswer(answer: CallAnswer): void {
  const counts = new Map<string, number>();
  for (const outcome of answer.outcomes) {
    const key = `${outcome.status}|${outcome.reason ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [key, count] of counts) {
    const [outcome = '', code = ''] = key.split('|');
    const records = metrics.singleMetric();
    records.addDimensions({ Outcome: outcome, Code: code || 'none' });
    records.addMetric('Records', MetricUnit.Count, count);
  }
}

const sqs = sqsClient();
/** SQS caps a message's visibility timeout at 12 hours; our back-off stops well before. */
const MAX_BACKOFF_S = 900;

/**
 * Back-off for a message whose call failed transiently: full jitter under an exponential ceiling that
 * doubles with each receive (ApproximateReceiveCount), so a CRM outage is not hammered.
 */
export function backoffSeconds(receiveCount: number, baseSeconds: number, random = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_S, baseSeconds * 2 ** Math.max(0, receiveCount - 1));
  return Math.max(1, Math.round(random() * ceiling));
}

async function delayRedelivery(record: SQSRecord): Promise<void> {
  if (!environment.CALL_QUEUE_URL) return;
  const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
  const seconds = backoffSeconds(receiveCount, Math.ceil(settings.crmRetryBaseDelayMs / 1000) * 10);
  await sqs
    .send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: environment.CALL_QUEUE_URL,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: seconds,
      }),
    )
    .catch((error: unknown) => logger.warn('could not delay the redelivery', { error: (error as Error).message }));
}

let client: CrmClient | undefined;

/** The CRM client, created on first use: the token may have to be read from Secrets Manager. */
async function crmClient(): Promise<CrmClient> {
  if (client) return client;
  let token = environment.CRM_API_TOKEN;
  if (!token) {
    const secret = await secretsManagerClient().send(
      new GetSecretValueCommand({ SecretId: environment.CRM_API_TOKEN_SECRET_ARN }),
    );
    token = secret.SecretString;
    if (!token) throw new Error('the CRM token secret is empty');
  }
  client = new CrmClient({
    baseUrl: environment.CRM_BASE_URL,
    token,
    timeoutMs: settings.crmTimeoutMs,
    retryAttempts: settings.crmRetryAttempts,
    retryBaseDelayMs: settings.crmRetryBaseDelayMs,
    retryMaxDelayMs: settings.crmRetryMaxDelayMs,
    acquire: () => limiter.acquire(),
    onAttempt: reportAttempt,
  });
  return client;
}

async function handleRecord(record: SQSRecord): Promise<void> {
  const parsed = CallMessageSchema.safeParse(JSON.parse(record.body));
  if (!parsed.success) {
    // A malformed message is a pipeline bug: fail it so it reaches the DLQ, where support can see it.
    throw new Error(`invalid call message ${record.messageId}: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
  }
  const message = parsed.data;
  const where = {
    fileId: message.fileId,
    phase: message.phase,
    batchIndex: message.batchIndex,
    operation: message.operation,
  };
  try {
    // ApproximateReceiveCount 1: a first delivery (absent, e.g. locally: treat as a possible redelivery).
    const firstDelivery = record.attributes?.ApproximateReceiveCount === '1';
    const result = await dispatchCall(message, { client: await crmClient(), ledger }, { firstDelivery });
    if (result.status === 'already-answered') {
      logger.info('batch already answered; redelivery skipped', where);
      return;
    }
    reportAnswer(result.answer);
    // Only the delivery that stored the answer counts it, so a batch is never counted twice.
    const resumed = result.recorded === 'recorded' && (await countAnswer(result.answer, phases, notifier));
    logger.info('batch answered', {
      ...where,
      attempts: result.answer.attempts,
      replayed: result.answer.replayed,
      recorded: result.recorded,
      phaseComplete: resumed,
    });
  } catch (error) {
    if (error instanceof CrmCallError) {
      metrics.addMetric(
        error.name === ErrorNames.crmAuthRejected ? 'CrmAuthRejected' : 'CrmCallFailed',
        MetricUnit.Count,
        1,
      );
      logger.error('CRM call failed; the batch stays queued and its records pending', {
        ...where,
        error: error.name,
        reason: error.message,
      });
      if (error.name === ErrorNames.crmUnavailable || error.name === ErrorNames.crmThrottled)
        await delayRedelivery(record);
    }
    throw error;
  }
}

/** SQS -> CRM: each message is one call; failed messages are reported back (partial batch response). */
export const handler = middy(async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  // Every failure is reported per message (ReportBatchItemFailures), also when all of them failed.
  processPartialResponse(event, handleRecord, processor, { context, throwOnFullBatchFailure: false }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
