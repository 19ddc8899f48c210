import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { S3ObjectStore } from '../adapters/aws/s3-object-store';
import { sourceCredentials, type DeployedSource } from '../adapters/aws/source-config';
import { connectSftpSource } from '../adapters/sftp/sftp-folder';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { deliverReports, type DeliverDeps } from '../core/workflow/deliver-reports';
import type { FinalSummary } from '../core/workflow/finalise-file';
import { deliverReportsContract as contract, type DeliverReportsEnvironment } from './contract';

export interface DeliverReportsDeps extends DeliverDeps {
  readonly telemetry: Telemetry<'deliver-reports'>;
}

/**
 * After finalise: the file's summary and failed-records file into the partner's reports/ folder (their
 * Transfer Family home), or to the results folder of the source it was collected from. A failure throws:
 * the asynchronous invocation is retried, then kept on the rule's dead-letter queue (alarmed).
 */
export function makeHandler(deps: DeliverReportsDeps) {
  const { logger, metrics, emit } = deps.telemetry;
  return middy(async (event: unknown) => {
    const summary = contract.input.parse(event).detail as unknown as FinalSummary;
    const delivery = await deliverReports(summary, deps);
    if (delivery.destination === 'none') {
      logger.info('reports not delivered', { name: summary.name, reason: delivery.reason });
    } else {
      emit('ReportsDelivered', 1, { Destination: delivery.destination });
      logger.info('reports delivered', { name: summary.name, ...delivery });
    }
    return delivery;
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(environment: DeliverReportsEnvironment, runtime: FunctionRuntime): DeliverReportsDeps {
  const { clients } = runtime;
  return {
    store: new S3ObjectStore(clients.s3),
    landingBucket: environment.LANDING_BUCKET_NAME,
    landingPrefix: environment.LANDING_PREFIX,
    sources: environment.POLL_SOURCES,
    openSource: async (source) =>
      connectSftpSource(source, await sourceCredentials(clients.secretsManager, source as DeployedSource)),
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
