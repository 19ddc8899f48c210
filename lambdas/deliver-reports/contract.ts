import { z } from 'zod';
import { DeployedSourcesSchema } from '../adapters/aws/source-config';
import { defineContract, defineEnvironment } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

/** `file.completed` from finalise (EventBridge): the fields delivery needs; the rest of the summary passes. */
const Input = z.object({
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

/** After finalise: the file's summary and failed records back to the partner. */
export const deliverReportsContract = defineContract({
  name: 'deliver-reports',
  description: "Puts each file's summary and failed records where its partner looks",
  timeoutSeconds: 5 * 60,
  memoryMb: 512,
  input: Input,
  outputs: {
    default: z.union([
      z.object({ destination: z.literal('home'), partner: z.string(), files: z.array(z.string()) }),
      z.object({ destination: z.literal('source'), source: z.string(), files: z.array(z.string()) }),
      z.object({ destination: z.literal('none'), reason: z.string() }),
    ]),
  },
  environment: defineEnvironment(
    {
      LANDING_BUCKET_NAME: z.string().min(1),
      LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
      POLL_SOURCES: DeployedSourcesSchema.default([]),
    },
    ['logLevel'],
  ),
  errors: [],
  metrics: metricsOf('deliver-reports'),
});

export type DeliverReportsEnvironment = ReturnType<typeof deliverReportsContract.environment.read>;
