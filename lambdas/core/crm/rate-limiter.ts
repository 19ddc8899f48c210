/**
 * Where the limiter keeps its one number, the next free call slot (epoch ms): DynamoDB on AWS and locally.
 * Both operations must be atomic single-item writes.
 */
export interface LimiterStore {
  /**
   * Takes the next slot if the schedule is not behind `now`: moves it on by `intervalMs` and returns the slot
   * taken. Returns undefined when the schedule is behind `now` (the limiter was idle) or does not exist yet.
   */
  advance(intervalMs: number, now: number): Promise<number | undefined>;
  /** Restarts a schedule that is behind `now` (or absent) with slot `now` taken; false if another caller moved it first. */
  restart(intervalMs: number, now: number): Promise<boolean>;
}

export interface RateLimiterOptions {
  /** Calls the CRM allows in any rolling window. */
  readonly callsPerWindow: number;
  /** The CRM's window. @default 60000 */
  readonly windowMs?: number;
  /**
   * The most a call's arrival at the CRM may lag behind its slot (timer and network jitter). The spacing
   * allows for it, so the CRM's own count holds even when some calls arrive late. @default 500
   */
  readonly arrivalJitterMs?: number;
  /** Attempts at a reservation when other dispatchers keep winning the race. @default 100 */
  readonly maxConflicts?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface Acquired {
  /** The slot reserved (epoch ms): the call may go from then on. */
  readonly slotMs: number;
  /** Time waiting for the reserved slot (pacing, by design). */
  readonly waitedMs: number;
  /** Time spent reserving (store round trips and lost races): the limiter's own cost. */
  readonly overheadMs: number;
  /** Races lost to other dispatchers before the reservation held. */
  readonly conflicts: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The global CRM rate limiter: a reservation scheme (GCRA, "virtual scheduling") over one shared number.
 * Each call takes the next free slot, then sleeps until it. Slots are `interval` apart, with
 * `interval = (window + jitter) / (limit - 1)`, and calls arrive at the CRM at most `jitter` after their
 * slots, so any closed window of `window` ms holds at most `limit` calls: the bound holds in every rolling
 * window, not only per calendar minute. Utilisation is `(limit - 1) / limit * window / (window + jitter)`:
 * 99.1% at 1000 calls a minute with 500 ms jitter. While work is waiting the schedule runs ahead of the
 * clock and each slot is one atomic increment, so concurrent dispatchers never lose races; only a schedule
 * left behind by an idle spell is restarted, with a conditional write.
 */
export class RateLimiter {
  readonly intervalMs: number;
  /** Half the arrival jitter allowance: the most a slot may be past when its reservation returns. */
  private readonly maxSlotLatenessMs: number;
  /** Moving average of the store's round trip. */
  private storeLatencyMs = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxConflicts: number;

  constructor(
    private readonly store: LimiterStore,
    options: RateLimiterOptions,
  ) {
    if (!(options.callsPerWindow >= 2)) throw new RangeError('callsPerWindow must be at least 2');
    const windowMs = options.windowMs ?? 60_000;
    const jitterMs = options.arrivalJitterMs ?? 500;
    // Rounded up to whole microseconds: stored sums stay short decimals, and rounding up only widens the gaps.
    this.intervalMs = Math.ceil(((windowMs + jitterMs) / (options.callsPerWindow - 1)) * 1000) / 1000;
    this.maxSlotLatenessMs = jitterMs / 2;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
    this.maxConflicts = options.maxConflicts ?? 100;
  }

  /** Waits until this caller may make one CRM call. */
  async acquire(): Promise<Acquired> {
    const started = this.now();
    for (let conflicts = 0; conflicts <= this.maxConflicts; conflicts++) {
      const asked = this.now();
      // Aim at when the answer will be back, so that the slot is not already past on arrival.
      const earliest = asked + this.storeLatencyMs;
      let slot = await this.store.advance(this.intervalMs, earliest);
      if (slot === undefined && (await this.store.restart(this.intervalMs, earliest))) slot = earliest;
      const reserved = this.now();
      this.storeLatencyMs = 0.8 * this.storeLatencyMs + 0.2 * (reserved - asked);
      if (slot === undefined) continue;
      // A slow store can hand back a slot that is already past: using it late would eat the arrival jitter
      // the spacing allows for. Such a slot is dropped (a call less, never one too many) and another taken.
      if (reserved - slot > this.maxSlotLatenessMs) continue;
      const waitedMs = Math.max(0, slot - reserved);
      if (waitedMs > 0) await this.sleep(waitedMs);
      // The same for a wake-up that comes late (a busy event loop, a starved CPU).
      if (this.now() - slot > this.maxSlotLatenessMs) continue;
      return { slotMs: slot, waitedMs, overheadMs: reserved - started, conflicts };
    }
    throw new Error(`rate limiter: lost ${this.maxConflicts + 1} reservation races in a row`);
  }
}
