import { DynamoDbLimiterStore } from '../../lambdas/adapters/aws/dynamodb-limiter-store';
import { RateLimiter, type LimiterStore } from '../../lambdas/core/crm/rate-limiter';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/local-dynamodb';

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

  it('never lets more than the limit through in any rolling window, and uses nearly all of it', async () => {
    const limit = 50;
    const windowMs = 1000;
    const workers = 6;
    const callsEach = 30;
    const granted: number[] = [];
    let conflicts = 0;
    let intervalMs = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: workers }, async () => {
        // Each worker is its own "Lambda": its own client, store and limiter; only the table is shared.
        const limiter = new RateLimiter(new DynamoDbLimiterStore(db.client(), 'limiter', 'window-test'), {
          callsPerWindow: limit,
          windowMs,
          // Grants are stamped when the timer fires, with dynalite busy in this same event loop: allow 100 ms.
          arrivalJitterMs: 100,
        });
        intervalMs = limiter.intervalMs;
        for (let i = 0; i < callsEach; i++) {
          const acquired = await limiter.acquire();
          conflicts += acquired.conflicts;
          granted.push(Date.now());
        }
      }),
    );
    const elapsed = Date.now() - started;
    const total = workers * callsEach;
    expect(granted).toHaveLength(total);
    expect(busiestWindow(granted, windowMs)).toBeLessThanOrEqual(limit);
    // Paced, not bursty and not idle: the calls take (calls - 1) slots, give or take the store's latency.
    const paced = (total - 1) * intervalMs;
    expect(elapsed).toBeGreaterThanOrEqual(paced * 0.97);
    expect(elapsed).toBeLessThan(paced * 1.1);
    // While work waits, each slot is one atomic increment: races are lost only when an idle schedule restarts.
    expect(conflicts).toBeLessThan(workers);
  });

  it('spreads a burst of concurrent callers over the window instead of letting them through together', async () => {
    const limiter = new RateLimiter(new DynamoDbLimiterStore(db.client(), 'limiter', 'burst-test'), {
      callsPerWindow: 10,
      windowMs: 500,
      arrivalJitterMs: 0,
    });
    const granted: number[] = [];
    await Promise.all(Array.from({ length: 25 }, async () => granted.push((await limiter.acquire(), Date.now()))));
    expect(busiestWindow(granted, 500)).toBeLessThanOrEqual(10);
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
