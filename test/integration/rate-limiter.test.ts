import { DynamoDbLimiterStore } from '../../lambdas/adapters/aws/dynamodb-limiter-store';
import { RateLimiter, type LimiterStore } from '../../lambdas/core/crm/rate-limiter';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';

/** The most times that fall in any window of `windowMs` (closed: both ends count). */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let start = 0, end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) > windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

describe('RateLimiter over DynamoDB (dynalite), several dispatchers', () => {
  let db: LocalDynamoDb;
  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('limiter', TABLES.limiter);
  });
  afterAll(() => db.close());

  it('never lets more than the limit through in any rolling window, and never outpaces it', async () => {
    const limit = 50;
    const windowMs = 1000;
    const workers = 6;
    const callsEach = 30;
    const slots: number[] = [];
    let intervalMs = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: workers }, async () => {
        // Each worker is its own "Lambda": its own client, store and limiter; only the table is shared.
        const limiter = new RateLimiter(new DynamoDbLimiterStore(db.client(), 'limiter', 'window-test'), {
          callsPerWindow: limit,
          windowMs,
          arrivalJitterMs: 20,
        });
        intervalMs = limiter.intervalMs;
        for (let i = 0; i < callsEach; i++) {
          const acquired = await limiter.acquire();
          slots.push(acquired.slotMs);
        }
      }),
    );
    const elapsed = Date.now() - started;
    const total = workers * callsEach;
    expect(slots).toHaveLength(total);
    // The invariant, whatever the machine's load: reserved slots are at least one interval apart, so any
    // window (+ the jitter allowance) holds at most `limit` of them.
    const sorted = [...slots].sort((a, b) => a - b);
    const gaps = sorted.slice(1).map((slot, i) => slot - (sorted[i] as number));
    // Within 1 µs: epoch milliseconds near 1.8e12 are doubles with about 0.2 µs resolution.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(intervalMs - 1e-3);
    expect(busiestWindow(slots, windowMs + 20)).toBeLessThanOrEqual(limit);
    // No call goes before its slot, so the calls can never outpace the limit (utilisation is bench:dispatch's).
    expect(elapsed).toBeGreaterThanOrEqual((total - 1) * intervalMs);
  });

  it('spreads a burst of concurrent callers over the window instead of letting them through together', async () => {
    const limiter = new RateLimiter(new DynamoDbLimiterStore(db.client(), 'limiter', 'burst-test'), {
      callsPerWindow: 10,
      windowMs: 500,
      arrivalJitterMs: 0,
    });
    const slots: number[] = [];
    await Promise.all(Array.from({ length: 25 }, async () => slots.push((await limiter.acquire()).slotMs)));
    expect(busiestWindow(slots, 500)).toBeLessThanOrEqual(10);
  });
});

describe('RateLimiter logic', () => {
  class MemoryStore implements LimiterStore {
    value: number | undefined;
    async advance(intervalMs: number, now: number) {
      if (this.value === undefined || this.value < now) return undefined;
      this.value += intervalMs;
      return this.value - intervalMs;
    }
    async restart(intervalMs: number, now: number) {
      if (this.value !== undefined && this.value >= now) return false;
      this.value = now + intervalMs;
      return true;
    }
  }

  it('spaces slots by (window + jitter) / (limit - 1) and sleeps until the reserved slot', async () => {
    let now = 1_000_000;
    const sleeps: number[] = [];
    const limiter = new RateLimiter(new MemoryStore(), {
      callsPerWindow: 1001,
      windowMs: 60_000,
      arrivalJitterMs: 500,
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    expect(limiter.intervalMs).toBe(60.5);
    expect((await limiter.acquire()).waitedMs).toBe(0);
    expect((await limiter.acquire()).waitedMs).toBe(60.5);
    expect((await limiter.acquire()).waitedMs).toBe(121);
    now += 10_000;
    // After an idle spell there is no stored-up burst: the next call goes now, the one after waits a slot.
    expect((await limiter.acquire()).waitedMs).toBe(0);
    expect((await limiter.acquire()).waitedMs).toBe(60.5);
    expect(sleeps).toEqual([60.5, 121, 60.5]);
  });

  it('drops a slot that is already past by more than half the jitter allowance when the store answers late', async () => {
    let now = 5_000;
    const store = new MemoryStore();
    const slow: LimiterStore = {
      // The store takes 300 ms to answer: the slot it returns is 300 ms old by then.
      advance: async (interval, at) => {
        const slot = await store.advance(interval, at);
        now += 300;
        return slot;
      },
      restart: async (interval, at) => {
        const done = await store.restart(interval, at);
        now += 300;
        return done;
      },
    };
    const limiter = new RateLimiter(slow, {
      callsPerWindow: 101,
      windowMs: 10_000,
      arrivalJitterMs: 400,
      now: () => now,
      sleep: async () => undefined,
    });
    const acquired = await limiter.acquire();
    // 300 ms late > 200 ms (half of 400): the first slot is dropped, and so is each next one until it is fresh.
    expect(acquired.conflicts).toBeGreaterThan(0);
    expect(store.value! - limiter.intervalMs).toBeGreaterThanOrEqual(now - 200);
  });

  it('gives up, with a clear error, only after losing the race many times in a row', async () => {
    const store: LimiterStore = { advance: async () => undefined, restart: async () => false };
    const limiter = new RateLimiter(store, { callsPerWindow: 10, maxConflicts: 3 });
    await expect(limiter.acquire()).rejects.toThrow('rate limiter: lost 4 reservation races in a row');
  });
});
