import { z } from 'zod';
import { defineContract, defineEnvironment } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';

/** What the SQS event source hands over: the fields the dispatcher reads. */
const Input = z.object({
  Records: z.array(
    z.looseObject({
      messageId: z.string(),
      receiptHandle: z.string(),
      body: z.string(),
      attributes: z.looseObject({ ApproximateReceiveCount: z.string().optional() }).optional(),
    }),
  ),
});

/**
 * SQS -> CRM: each message is one call, paced by the global limiter; its answer is stored once and counted
 * towards its phase, whose waiting workflow is resumed when the phase completes. Failures are reported per
 * message (partial batch response): the message stays queued, its records pending.
 */
export const dispatchCrmCallsContract = defineContract({
  name: 'dispatch-crm-calls',
  description: 'Sends batches to the CRM within the rate limit; records each answer once',
  timeoutSeconds: 120,
  input: Input,
  outputs: { default: z.object({ batchItemFailures: z.array(z.object({ itemIdentifier: z.string() })) }) },
  environment: defineEnvironment(
    {
      LEDGER_TABLE_NAME: z.string().min(1),
      LIMITER_TABLE_NAME: z.string().min(1),
      CRM_BASE_URL: z.url(),
      /** Either the token itself (a CRM_API_TOKEN variable) or the Secrets Manager secret holding it (AWS). */
      CRM_API_TOKEN: z.string().min(1).optional(),
      CRM_API_TOKEN_SECRET_ARN: z.string().min(1).optional(),
      /** The call queue: a transient failure sets its message's visibility for exponential back-off. */
      CALL_QUEUE_URL: z.string().min(1).optional(),
    },
    [
      'callsPerMinute',
      'limitWindowSeconds',
      'limiterJitterMs',
      'crmTimeoutMs',
      'crmRetryAttempts',
      'crmRetryBaseDelayMs',
      'crmRetryMaxDelayMs',
      'logLevel',
    ],
    (env) =>
      env.CRM_API_TOKEN || env.CRM_API_TOKEN_SECRET_ARN
        ? undefined
        : { variable: 'CRM_API_TOKEN', message: 'CRM_API_TOKEN or CRM_API_TOKEN_SECRET_ARN is required' },
  ),
  errors: [],
  metrics: metricsOf('dispatch-crm-calls'),
});

export type DispatchCrmCallsEnvironment = ReturnType<typeof dispatchCrmCallsContract.environment.read>;
