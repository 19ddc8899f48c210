import { z } from 'zod';
import { defineContract, defineEnvironment } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

/** Younger objects are left to their own event: longer than a classify step can take (a Lambda's 15 minutes). */
export const DEFAULT_SWEEP_MIN_AGE_S = 960;

/** The scheduled sweep: starts the workflow for landed files whose event was missed. */
export const sweepLandingZoneContract = defineContract({
  name: 'sweep-landing-zone',
  description: 'Starts the workflow of files an event missed',
  timeoutSeconds: 15 * 60,
  memoryMb: 1024,
  // The schedule's event: nothing in it is read.
  input: z.unknown(),
  outputs: {
    default: z.object({
      listed: z.number().int().min(0),
      started: z.number().int().min(0),
      alreadyStarted: z.number().int().min(0),
      young: z.number().int().min(0),
    }),
  },
  environment: defineEnvironment(
    {
      LANDING_BUCKET_NAME: z.string().min(1),
      LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
      STATE_MACHINE_ARN: z.string().min(1),
      SWEEP_MIN_AGE_S: z.coerce.number().int().min(0).default(DEFAULT_SWEEP_MIN_AGE_S),
    },
    ['logLevel'],
  ),
  errors: [],
  metrics: metricsOf('sweep-landing-zone'),
});

export type SweepLandingZoneEnvironment = ReturnType<typeof sweepLandingZoneContract.environment.read>;
