import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { FunctionRuntime } from '../adapters/aws/lambda-entry';
import { S3LandingZone, SfnWorkflowStarter } from '../adapters/aws/landing-zone-adapters';
import { createTelemetry, type Telemetry } from '../adapters/aws/telemetry';
import { sweepLandingZone, type LandingZone, type WorkflowStarter } from '../core/workflow/sweep-landing-zone';
import { sweepLandingZoneContract as contract, type SweepLandingZoneEnvironment } from './contract';

export interface SweepLandingZoneDeps {
  readonly zone: LandingZone;
  readonly starter: WorkflowStarter;
  readonly bucket: string;
  readonly prefix: string;
  readonly minAgeMs: number;
  readonly telemetry: Telemetry<'sweep-landing-zone'>;
}

/** The scheduled sweep: starts the workflow for landed files whose event was missed. */
export function makeHandler(deps: SweepLandingZoneDeps) {
  const { logger, metrics, emit } = deps.telemetry;
  return middy(async () => {
    const result = await sweepLandingZone(deps.zone, deps.starter, deps);
    emit('SweepStarted', result.started, {});
    logger.info('landing zone swept', { ...result });
    return result;
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics));
}

/** The function's adapters on AWS (or on the embedded services, with their clients). */
export function awsDependencies(
  environment: SweepLandingZoneEnvironment,
  runtime: FunctionRuntime,
): SweepLandingZoneDeps {
  return {
    zone: new S3LandingZone(runtime.clients.s3),
    starter: new SfnWorkflowStarter(runtime.clients.sfn, environment.STATE_MACHINE_ARN),
    bucket: environment.LANDING_BUCKET_NAME,
    prefix: environment.LANDING_PREFIX,
    minAgeMs: environment.SWEEP_MIN_AGE_S * 1000,
    telemetry: createTelemetry(contract.name, runtime.telemetry),
  };
}
