import { z } from 'zod';
import { defineContract, defineEnvironment } from '../contracts/function-contract';
import { metricsOf } from '../contracts/telemetry';
import type { Config } from '../core/config';
import { backoffMs } from '../core/crm/backoff';

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

/** The settings one call's worst case depends on. */
export type DispatchTimingSettings = Pick<
  Config,
  | 'callsPerMinute'
  | 'limitWindowSeconds'
  | 'limiterJitterMs'
  | 'crmTimeoutMs'
  | 'crmRetryAttempts'
  | 'crmRetryBaseDelayMs'
  | 'crmRetryMaxDelayMs'
>;

/** Reading the message, storing and counting the answer, resuming the workflow: a few AWS requests, with SDK retries. */
const DISPATCH_OVERHEAD_SECONDS = 30;

/**
 * The longest one dispatcher invocation can take, in seconds. Its messages are processed in parallel (Powertools'
 * BatchProcessor), so it takes as long as its slowest call, which makes `retries + 1` attempts, each one waiting
 * for the limiter and then for the CRM (at most CRM_TIMEOUT_MS), with a wait between attempts: the back-off's
 * ceiling (base x 2^(retry-1), at most CRM_RETRY_MAX_DELAY_MS) or, after a 429, Retry-After, at most the CRM's
 * window (its rolling count frees a call within it). The limiter hands out slots one interval apart and each
 * call in flight holds at most one, so a slot is at most `callsInFlight` intervals away.
 * @param callsInFlight calls that may wait for the limiter at once: invocations at once x messages each
 */
export function dispatchWorstCaseSeconds(settings: DispatchTimingSettings, callsInFlight: number): number {
  const windowMs = settings.limitWindowSeconds * 1000;
  // The limiter's spacing (lambdas/core/crm/rate-limiter.ts).
  const intervalMs = (windowMs + settings.limiterJitterMs) / Math.max(1, settings.callsPerMinute - 1);
  const attempts = settings.crmRetryAttempts + 1;
  let waitsMs = 0;
  for (let retry = 1; retry <= settings.crmRetryAttempts; retry++) {
    const ceiling = backoffMs(retry, settings.crmRetryBaseDelayMs, settings.crmRetryMaxDelayMs, () => 1);
    waitsMs += Math.max(ceiling, windowMs);
  }
  const attemptMs = callsInFlight * intervalMs + settings.crmTimeoutMs;
  return Math.ceil((attempts * attemptMs + waitsMs) / 1000) + DISPATCH_OVERHEAD_SECONDS;
}

/**
 * SQS -> CRM: each message is one call, paced by the global limiter; its answer is stored once and counted
 * towards its phase, whose waiting workflow is resumed when the phase completes. Failures are reported per
 * message (partial batch response): the message stays queued, its records pending.
 */
export const dispatchCrmCallsContract = defineContract({
  name: 'dispatch-crm-calls',
  description: 'Sends batches to the CRM within the rate limit; records each answer once',
  // Covers dispatchWorstCaseSeconds with the defaults: 8 invocations x 10 messages = 80 calls in flight, each
  // slot at most 80 x 60.56 ms = 4.8 s away; 7 attempts x (4.8 s + 15 s CRM timeout) = 139 s, 6 waits of at
  // most 60 s (Retry-After within the window; the back-off's ceilings 0.5-16 s are below it) = 360 s, + 30 s of
  // ledger and workflow requests = 529 s. lib/config.ts refuses a deployment whose settings need more.
  timeoutSeconds: 600,
  // I/O-bound: it waits on the limiter's slot and the CRM's answer; 512 MB holds its batch of calls.
  memoryMb: 512,
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
      'ledgerRetentionDays',
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
