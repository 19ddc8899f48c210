import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import middy from '@middy/core';
import { z } from 'zod';
import { s3Client, sfnClient } from '../adapters/aws/clients';
import { readEnvironment } from '../adapters/aws/environment';
import { sweepLandingZone, type LandingZone, type WorkflowStarter } from '../core/workflow/sweep-landing-zone';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

const Environment = z.object({
  LANDING_BUCKET_NAME: z.string().min(1),
  LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
  STATE_MACHINE_ARN: z.string().min(1),
  /** Younger objects are left to their own event: longer than a classify step can take (a Lambda's 15 minutes). */
  SWEEP_MIN_AGE_S: z.coerce.number().int().min(0).default(960),
});

const environment = readEnvironment(Environment);
export const logger = new Logger({ serviceName: 'sweep-landing-zone' });
export const metrics = new Metrics({ namespace: 'CrmIngestion', serviceName: 'sweep-landing-zone' });
const s3 = s3Client();
const sfn = sfnClient();

const zone: LandingZone = {
  async *list(bucket, prefix) {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
      for (const object of page.Contents ?? []) {
        yield {
          key: object.Key ?? '',
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
          etag: object.ETag ?? '',
        };
      }
    }
  },
};

const starter: WorkflowStarter = {
  async start(name, input) {
    try {
      await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: environment.STATE_MACHINE_ARN,
          name,
          input: JSON.stringify(input),
        }),
      );
      return 'started';
    } catch (error) {
      if ((error as Error).name === 'ExecutionAlreadyExists') return 'already';
      throw error;
    }
  },
};

/** The scheduled sweep: starts the workflow for landed files whose event was missed. */
export const handler = middy(async () => {
  const result = await sweepLandingZone(zone, starter, {
    bucket: environment.LANDING_BUCKET_NAME,
    prefix: environment.LANDING_PREFIX,
    minAgeMs: environment.SWEEP_MIN_AGE_S * 1000,
  });
  metrics.addMetric('SweepStarted', MetricUnit.Count, result.started);
  logger.info('landing zone swept', { ...result });
  return result;
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
