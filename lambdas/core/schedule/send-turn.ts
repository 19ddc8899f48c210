import type { RecordTotals } from '../files/prepare-file';
import type { PhaseCounters } from '../ledger/phase-counters';
import {
  turnOf,
  wakeWaiting,
  type Schedule,
  type ScheduledFile,
  type ScheduleRules,
  type Turn,
  type TurnNotifier,
} from './schedule';

/** The schedule's ports and rules, as prepare sees them. */
export interface TurnDeps {
  readonly schedule: Schedule;
  readonly rules: ScheduleRules;
  /** How often the phase's answered count is read while the window is full. @default 500 ms */
  readonly pollMs?: number;
  /** How often the view of the files in flight is read again (a pause, a users file landing). @default 2 s */
  readonly viewMs?: number;
  readonly now?: () => number;
  /** Wakes the files a users file held once it stops refilling (AwaitTurn's tokens); none: they ask on their own. */
  readonly notifier?: TurnNotifier;
}

export interface TurnSlice {
  readonly fileId: string;
  readonly phase: string;
  /** Batches of the phase queued by earlier slices. */
  readonly firstBatch: number;
  /** For a file that the schedule does not know yet (claimed before the schedule existed). */
  readonly name: string;
  readonly partner: string;
  readonly kind: ScheduledFile['kind'];
}

/** Why a slice stopped sending before its end, as the state machine hears it. */
export type Stopped = Extract<Turn, { send: false }>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * One prepare slice's turn at the CRM budget: asked once before the slice reads anything ({@link SendTurn.begin}),
 * then before each hand-off of batches ({@link SendTurn.admit}), which waits while the file's window is full
 * (its queued batches not yet answered) and lets them go as answers come. Every few seconds it reads the
 * schedule again: a pause, a cancel, or a rule that now holds the file (a users file landed) ends the slice at
 * the next hand-off, which is not sent: nothing is queued past the window. What it sees is written back to the file's schedule entry, for the others' rules, the ETA and people.
 * An ADD slice also writes there the records read so far ({@link SendTurn.records}), before each hand-off that read
 * on and at its end, so the entry's `received` never lags the records answered (the file view's
 * `succeeded + failed <= received`).
 */
export class SendTurn {
  private sent: number;
  private answered = 0;
  private window = 0;
  private lastPoll = 0;
  private lastView = 0;
  private queue: Promise<void> = Promise.resolve();
  private stop: Stopped | { readonly state: 'deadline' } | undefined;
  /** Set when this slice ended a wait: how long and for which rule (for the waiting-time metric). */
  waited: { readonly rule: string; readonly seconds: number } | undefined;
  /** The phase's batches in all, as far as known yet (for the ETA): set by the slice. */
  estimate: ((sent: number) => number | undefined) | undefined;
  /**
   * The ADD phase's records read and refused so far, over all its slices (for the file view's `received`): set by
   * an ADD slice. Undefined while not known.
   */
  records: (() => RecordTotals | undefined) | undefined;
  /** The counts the entry holds: written counts only go up (a slice run again re-reads what one before counted). */
  private written: RecordTotals | undefined;

  private constructor(
    private readonly deps: TurnDeps,
    private readonly phases: Pick<PhaseCounters, 'read'>,
    private readonly slice: TurnSlice,
    private readonly shouldStop: () => boolean,
    private entry: ScheduledFile,
  ) {
    this.sent = slice.firstBatch;
    if (entry.received !== undefined) this.written = { received: entry.received, rejected: entry.rejected ?? 0 };
  }

  private now() {
    return (this.deps.now ?? Date.now)();
  }

  /**
   * Reads the schedule and decides. `send: false`: the slice sends nothing now (`state` says whether to wait, or
   * that the file is cancelled, or with `giveUp` that a RETRY phase waited too long).
   */
  static async begin(
    deps: TurnDeps,
    phases: Pick<PhaseCounters, 'read'>,
    slice: TurnSlice,
    shouldStop: () => boolean,
  ): Promise<{ turn: SendTurn; first: Turn }> {
    let entry = await deps.schedule.read(slice.fileId);
    if (!entry) {
      const now = iso((deps.now ?? Date.now)());
      await deps.schedule.register({ ...slice, landedAt: now });
      entry = (await deps.schedule.read(slice.fileId)) ?? {
        ...slice,
        landedAt: now,
        state: 'queued',
        updatedAt: now,
      };
    }
    const turn = new SendTurn(deps, phases, slice, shouldStop, entry);
    const first = await turn.decide();
    if (first.send) {
      turn.window = first.window;
      await turn.readAnswered();
      await turn.publish({ state: 'sending' });
    }
    return { turn, first };
  }

  /** Why the slice must stop early, once something said so. */
  get stopped(): Stopped | undefined {
    return this.stop && this.stop.state !== 'deadline' ? this.stop : undefined;
  }

  private async decide(): Promise<Turn> {
    const view = await this.deps.schedule.view();
    this.lastView = this.now();
    this.entry = view.files.find((file) => file.fileId === this.slice.fileId) ?? this.entry;
    const sameWait = this.entry.phase === this.slice.phase && this.entry.waitingSince !== undefined;
    const turn = turnOf(this.entry, this.slice.phase, view, this.deps.rules, this.now());
    if (!turn.send) {
      this.stop = turn;
      const wasSending = this.entry.state === 'sending';
      await this.deps.schedule.update(this.slice.fileId, {
        state: 'waiting',
        phase: this.slice.phase,
        waitingFor: turn.reason,
        waitingRule: turn.rule,
        // From the phase's first wait, whatever holds it since (the waiting-time metric).
        ...(sameWait ? {} : { waitingSince: iso(this.now()) }),
        // Where RETRY_LATER_MAX_WAIT_S counts from (turnOf): the first hold of any RETRY phase of the file.
        ...(this.slice.phase.startsWith('RETRY') && !this.entry.retryWaitingSince
          ? { retryWaitingSince: iso(this.now()) }
          : {}),
      });
      if (wasSending) await this.wakeTransactions();
    } else if (this.entry.waitingSince !== undefined) {
      this.waited = {
        rule: this.entry.waitingRule ?? 'Ordering',
        seconds: (this.now() - Date.parse(this.entry.waitingSince)) / 1000,
      };
    }
    return turn;
  }

  private async readAnswered() {
    this.answered = (await this.phases.read(this.slice.fileId, this.slice.phase)).answered;
    this.lastPoll = this.now();
  }

  /** The record counts, when they are ahead of those the entry holds. */
  private recordsAhead(): RecordTotals | undefined {
    const now = this.records?.();
    const held = this.written;
    if (
      !now ||
      (held && (now.received < held.received || (now.received === held.received && now.rejected <= held.rejected)))
    ) {
      return undefined;
    }
    return now;
  }

  /** Writes the record counts if they moved: before a hand-off, so the entry counts every record sent. */
  private async writeRecords() {
    const records = this.recordsAhead();
    if (!records) return;
    await this.deps.schedule.update(this.slice.fileId, { received: records.received, rejected: records.rejected });
    this.written = records;
  }

  private async publish(changes: { state: ScheduledFile['state']; batchesEstimate?: number }) {
    const startedAt = this.entry.startedAt ?? iso(this.now());
    const estimate = this.estimate?.(this.sent);
    const records = this.recordsAhead();
    await this.deps.schedule.update(this.slice.fileId, {
      ...(estimate === undefined ? {} : { batchesEstimate: estimate }),
      ...(records ? { received: records.received, rejected: records.rejected } : {}),
      ...changes,
      phase: this.slice.phase,
      sent: this.sent,
      answered: this.answered,
      waitingFor: null,
      waitingSince: null,
      waitingRule: null,
      ...(this.entry.startedAt ? {} : { startedAt }),
    });
    // Kept as first written: a later write in this slice, before the view is read again, leaves it alone.
    this.entry = { ...this.entry, startedAt };
    if (records) this.written = records;
  }

  /**
   * Waits until `batches` more fit in the window, then counts them as sent: true. False, with nothing counted,
   * once the slice must stop instead (a hold, a pause, a cancel, or its invocation's end while it waited): the
   * slice then ends before those batches, and nothing past the window is ever queued.
   */
  admit(batches: number): Promise<boolean> {
    const admitted = this.queue.then(() => this.waitForRoom(batches));
    this.queue = admitted.then(
      () => undefined,
      () => undefined,
    );
    return admitted;
  }

  private async waitForRoom(batches: number): Promise<boolean> {
    const pollMs = this.deps.pollMs ?? 500;
    const viewMs = this.deps.viewMs ?? 2000;
    for (;;) {
      if (this.stop) return false;
      if (this.now() - this.lastView >= viewMs) {
        const turn = await this.decide();
        if (!turn.send) return false;
        this.window = turn.window;
        await this.publish({ state: 'sending' });
      }
      if (this.sent + batches - this.answered <= this.window) break;
      if (this.shouldStop()) {
        this.stop = { state: 'deadline' };
        return false;
      }
      if (this.now() - this.lastPoll < pollMs) await sleep(pollMs - (this.now() - this.lastPoll));
      await this.readAnswered();
    }
    // The batches come from records already read: counted before they go, the entry's `received` is never behind
    // the records answered (one small write per hand-off that read on, beside the CRM calls it lets go).
    await this.writeRecords();
    this.sent += batches;
    return true;
  }

  /** A users file that stops refilling no longer holds transactions files back (users' calls first). */
  private async wakeTransactions() {
    if (this.slice.kind !== 'users' || !this.deps.notifier) return;
    await wakeWaiting(this.deps.schedule, this.deps.notifier, (file) => file.kind === 'transactions');
  }

  /** The slice is over: `complete` once the phase's last batch is queued (it then awaits its answers). */
  async end(result: { complete: boolean; nextBatch: number }): Promise<void> {
    if (this.stopped) {
      await this.writeRecords();
      return;
    }
    this.sent = result.nextBatch;
    if (result.complete) this.entry = { ...this.entry, state: 'awaiting' };
    await this.publish({
      state: result.complete ? 'awaiting' : 'sending',
      ...(result.complete ? { batchesEstimate: result.nextBatch } : {}),
    });
    if (result.complete) await this.wakeTransactions();
  }
}
