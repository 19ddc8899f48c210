import { z } from 'zod';
import { DeployedSourcesSchema } from '../adapters/aws/source-config';
import { defineContract, defineEnvironment } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

/** A poll's result: what it collected, or why the source could not be polled (tried again next schedule). */
export const PollOutcomeSchema = z.union([
  z.object({
    status: z.literal('polled'),
    source: z.string(),
    listed: z.number().int().min(0),
    collected: z.array(z.object({ path: z.string(), key: z.string(), size: z.number().int().min(0) })),
    waiting: z.number().int().min(0),
    alreadyCollected: z.number().int().min(0),
    moveFailures: z.number().int().min(0),
  }),
  z.object({ status: z.literal('failed'), source: z.string(), reason: z.string(), message: z.string() }),
]);
export type PollOutcome = z.infer<typeof PollOutcomeSchema>;

/** One poll of one partner SFTP source: the schedule of each source invokes it with the source's name. */
export const pollSourceContract = defineContract({
  name: 'poll-source',
  description: 'Collects complete files from a partner SFTP server into the landing zone',
  timeoutSeconds: 15 * 60,
  memoryMb: 1024,
  input: z.object({ source: z.string().min(1) }),
  outputs: { default: PollOutcomeSchema },
  environment: defineEnvironment(
    {
      POLL_SOURCES: DeployedSourcesSchema,
      LANDING_BUCKET_NAME: z.string().min(1),
      LEDGER_TABLE_NAME: z.string().min(1),
      LANDING_PREFIX: z.string().min(1).default(DEFAULT_LANDING_PREFIX),
    },
    ['logLevel'],
  ),
  errors: [],
  metrics: metricsOf('poll-source'),
});

export type PollSourceEnvironment = ReturnType<typeof pollSourceContract.environment.read>;
