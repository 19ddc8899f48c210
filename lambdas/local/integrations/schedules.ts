/** An EventBridge schedule (`rate(n minutes)`): `target` every interval, until stopped; a failure waits for the next. */
export function everyMinutes(minutes: number, target: () => Promise<unknown>): { stop(): void } {
  const timer = setInterval(() => void target().catch(() => undefined), minutes * 60_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
