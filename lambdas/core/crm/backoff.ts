/**
 * The one back-off policy of the pipeline: full jitter (a random wait between 0 and a ceiling) under a ceiling
 * that doubles with each attempt from `baseMs`, capped at `maxMs`. The CRM client waits it between retries in
 * an invocation; the dispatcher hides a failed message from the queue for it between deliveries.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

/** SQS caps a message's visibility timeout at 12 hours; the redelivery back-off stops well before. */
export const MAX_REDELIVERY_BACKOFF_S = 900;

/**
 * Seconds a message whose call failed transiently stays hidden before its next delivery: the same policy, in
 * whole seconds (at least 1), from ten times the client's first retry delay, doubling with each receive.
 */
export function redeliveryBackoffSeconds(receiveCount: number, retryBaseDelayMs: number, random = Math.random): number {
  const baseSeconds = Math.ceil(retryBaseDelayMs / 1000) * 10;
  return Math.max(
    1,
    Math.round(backoffMs(receiveCount, baseSeconds * 1000, MAX_REDELIVERY_BACKOFF_S * 1000, random) / 1000),
  );
}
