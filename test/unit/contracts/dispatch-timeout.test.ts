import { CALL_QUEUE } from '../../../lambdas/contracts/infrastructure';
import { loadConfig } from '../../../lambdas/core/config';
import { RateLimiter } from '../../../lambdas/core/crm/rate-limiter';
import {
  dispatchCrmCallsContract,
  dispatchWorstCaseSeconds,
  type DispatchTimingSettings,
} from '../../../lambdas/dispatch-crm-calls/contract';

const defaults: DispatchTimingSettings = loadConfig();
const noStore = { advance: () => Promise.resolve(undefined), restart: () => Promise.resolve(false) };

describe("the dispatcher's worst case", () => {
  it('is 529 s with the defaults: 80 calls in flight, 7 attempts, 6 waits of up to a window, 30 s of requests', () => {
    // 80 x 60.56 ms = 4.84 s for a slot; 7 x (4.84 + 15) = 138.9 s; 6 x 60 s = 360 s; + 30 s, rounded up.
    expect(dispatchWorstCaseSeconds(defaults, 8 * CALL_QUEUE.eventSourceBatchSize)).toBe(529);
  });

  it("spaces the limiter's slots as the limiter does", () => {
    for (const settings of [defaults, { ...defaults, callsPerMinute: 60, limiterJitterMs: 0 }]) {
      const limiter = new RateLimiter(noStore, {
        callsPerWindow: settings.callsPerMinute,
        windowMs: settings.limitWindowSeconds * 1000,
        arrivalJitterMs: settings.limiterJitterMs,
      });
      // With one call in flight and no retry, the case is one slot, one CRM timeout and the overhead.
      const oneAttempt = { ...settings, crmRetryAttempts: 0, crmTimeoutMs: 0 };
      expect(dispatchWorstCaseSeconds(oneAttempt, 1000)).toBe(Math.ceil(limiter.intervalMs) + 30);
    }
  });

  it('counts the back-off ceilings where they pass the window, capped at CRM_RETRY_MAX_DELAY_MS', () => {
    const noWait = { ...defaults, crmTimeoutMs: 100, limitWindowSeconds: 1, callsPerMinute: 1_000_000 };
    // Ceilings 0.5, 1, 2, 4, 8, 16 s against a 1 s window: 1 + 1 + 2 + 4 + 8 + 16 = 32 s.
    const seconds = dispatchWorstCaseSeconds(noWait, 1) - 30;
    expect(seconds).toBe(Math.ceil((7 * (100 + 1001 / 999_999) + 32_000) / 1000));
    expect(dispatchWorstCaseSeconds({ ...noWait, crmRetryMaxDelayMs: 3000 }, 1) - 30).toBe(
      Math.ceil((7 * (100 + 1001 / 999_999) + 1000 + 1000 + 2000 + 3 * 3000) / 1000),
    );
  });

  it("fits the contract's timeout, and the queue hides a message six times that (AWS's rule for event sources)", () => {
    expect(dispatchCrmCallsContract.timeoutSeconds).toBeGreaterThanOrEqual(dispatchWorstCaseSeconds(defaults, 80));
    expect(dispatchCrmCallsContract.timeoutSeconds).toBeLessThanOrEqual(900);
    expect(CALL_QUEUE.visibilityTimeoutSeconds).toBe(6 * dispatchCrmCallsContract.timeoutSeconds);
  });
});
