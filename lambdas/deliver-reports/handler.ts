import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { z } from 'zod';
import { s3Client, secretsManagerClient } from '../adapters/aws/clients';
import { readEnvironment } from '../adapters/aws/environment';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { DeployedSourcesSchema, sourceCredentials, type DeployedSource } from '../adapters/aws/source-config';
import { connectSftpSource } from '../adapters/sftp/sftp-folder';
import { deliverReports } from '../core/workflow/deliver-reports';
import type { FinalSummary } from '../core/workflow/finalise-file';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

const Environment = z.object({
  LANDING_BUCKET_NAME: z.string().min(1),
  LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
  POLL_SOURCES: DeployedSourcesSchema.default([]),
});

/** `file.completed` from finalise (EventBridge): the fields delivery needs; the rest of the summary passes. */
const Event = z.object({
  'detail-type': z.literal('file.completed'),
  detail: z.looseObject({
    name: z.string(),
    sha256: z.string(),
    status: z.string(),
    reports: z.object({
      bucket: z.string().min(1),
      summary: z.string().regex(/^reports\/[^/]+\/.+\/summary\.json$/),
      results: z.string().optional(),
      failedRecords: z.string().optional(),
    }),
    archived: z.object({ bucket: z.string(), key: z.string() }).optional(),
  }),
});

const environment = readEnvironment(Environment);
export const logger = new Logger({ serviceName: 'deliver-reports' });
export const metrics = new Metrics({ namespace: 'CrmIngestion', serviceName: 'deliver-reports' });
const secrets = secretsManagerClient();
const deps = {
  store: new S3ObjectStore(s3Client()),
  landingBucket: environment.LANDING_BUCKET_NAME,
  landingPrefix: environment.LANDING_PREFIX,
  sources: environment.POLL_SOURCES,
  openSource: async (source: DeployedSource) => connectSftpSource(source, await sourceCredentials(secrets, source)),
};

/**
 * After finalise: the file's summary and failed-records file into the partner's reports/ folder (their
 * Transfer Family home), or to the results folder of the source it was collected from. A failure throws:
 * the asynchronous invocation is retried, then kept on the rule's dead-letter queue (alarmed).
 */
export const handler = middy(async (event: unknown) => {
  const summary = Event.parse(event).detail as unknown as FinalSummary;
  const delivery = await deliverReports(summary, {
    ...deps,
    openSource: (source) => deps.openSource(source as DeployedSource),
  });
  if (delivery.destination === 'none') {
    logger.info('reports not delivered', { name: summary.name, reason: delivery.reason });
  } else {
    metrics.addDimension('Destination', delivery.destination);
    metrics.addMetric('ReportsDelivered', MetricUnit.Count, 1);
    logger.info('reports delivered', { name: summary.name, ...delivery });
  }
  return delivery;
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
