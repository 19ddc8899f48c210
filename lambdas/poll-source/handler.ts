import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { dynamoDbClient, s3Client, secretsManagerClient } from '../adapters/aws/clients';
import { DynamoDbCollectionLedger } from '../adapters/aws/dynamodb-collection-ledger';
import { readEnvironment } from '../adapters/aws/environment';
import { S3LandingWriter } from '../adapters/aws/s3-landing-writer';
import { DeployedSourcesSchema, sourceCredentials } from '../adapters/aws/source-config';
import { connectSftpSource } from '../adapters/sftp/sftp-folder';
import { PipelineError } from '../core/errors';
import { pollSource, type PollResult } from '../core/polling/poll-source';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

const Environment = z.object({
  POLL_SOURCES: DeployedSourcesSchema,
  LANDING_BUCKET_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
});
/** The schedule of each source invokes this function with the source's name. */
const Input = z.object({ source: z.string().min(1) });

const environment = readEnvironment(Environment);
export const logger = new Logger({ serviceName: 'poll-sources' });
export const metrics = new Metrics({ namespace: 'CrmIngestion', serviceName: 'poll-sources' });
const secrets = secretsManagerClient();
const ledger = new DynamoDbCollectionLedger(dynamoDbClient(), environment.LEDGER_TABLE_NAME);
const landing = new S3LandingWriter(s3Client(), environment.LANDING_BUCKET_NAME);
/** Past the function's own timeout: a claim outlives the poll that took it. */
const LEASE_MARGIN_MS = 60_000;

export type PollOutcome =
  | ({ readonly status: 'polled' } & PollResult)
  | { readonly status: 'failed'; readonly source: string; readonly reason: string; readonly message: string };

/**
 * One poll of one source (its schedule's input names it). A source that cannot be reached, trusted or read
 * is not an invocation error: it is logged and counted (PollFailed, by Source; alarmed), and the next
 * scheduled poll tries again. What was collected is counted too.
 */
export const handler = middy(async (event: unknown, context: Context): Promise<PollOutcome> => {
  const { source: name } = Input.parse(event);
  const source = environment.POLL_SOURCES.find((candidate) => candidate.name === name);
  if (!source) throw new Error(`no source named ${name} in POLL_SOURCES`);
  metrics.addDimension('Source', source.name);
  try {
    const credentials = await sourceCredentials(secrets, source);
    const result = await pollSource(source, {
      connect: (s) => connectSftpSource(s, credentials),
      ledger,
      landing,
      owner: context.awsRequestId,
      leaseMs: context.getRemainingTimeInMillis() + LEASE_MARGIN_MS,
      landingPrefix: environment.LANDING_PREFIX,
      log: (message, details) => logger.info(message, { source: source.name, ...details }),
    });
    metrics.addMetric('PollSucceeded', MetricUnit.Count, 1);
    metrics.addMetric('PollFailed', MetricUnit.Count, 0);
    metrics.addMetric('FilesCollected', MetricUnit.Count, result.collected.length);
    metrics.addMetric(
      'BytesCollected',
      MetricUnit.Bytes,
      result.collected.reduce((sum, file) => sum + file.size, 0),
    );
    metrics.addMetric('FilesWaiting', MetricUnit.Count, result.waiting);
    metrics.addMetric('MoveFailures', MetricUnit.Count, result.moveFailures);
    logger.info('source polled', { ...result, collected: result.collected.length });
    return { status: 'polled', ...result };
  } catch (error) {
    const reason = error instanceof PipelineError ? error.name : 'Source.Error';
    const message = (error as Error).message;
    metrics.addMetric('PollFailed', MetricUnit.Count, 1);
    const byReason = metrics.singleMetric();
    byReason.addDimensions({ Source: source.name, Reason: reason });
    byReason.addMetric('PollFailedByReason', MetricUnit.Count, 1);
    logger.error('source not polled; tried again at the next poll', { source: source.name, reason, message });
    return { status: 'failed', source: source.name, reason, message };
  }
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
