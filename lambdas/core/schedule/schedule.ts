import type { FileKind } from '../files/record-schemas';
import { relativeKey } from '../workflow/storage-keys';

/**
 * How files share the CRM budget (docs/design.md, Scheduling). Each file keeps at most a window of its batches
 * queued and unanswered, refilled as answers come, so files in progress share the calls in proportion to their
 * windows and nothing waits behind a whole backfill. Before each refill the file asks {@link turnOf} whether it
 * may send: an operator's pause or cancel, customers before their transactions, users' calls before
 * transactions' calls. The same rules run on AWS and on one machine: they read one view of the files in flight.
 */

/** An operator's hold on a file: paused (resumable) or cancelled (final). */
export type FileControl = 'paused' | 'cancelled';

/**
 * Where a file stands in the schedule: `queued` (claimed, not yet asking), `waiting` (may not send now:
 * `waitingFor` says why), `sending` (refilling its window), `awaiting` (every batch of its phase queued, answers
 * to come), `finalising` (its calls are over).
 */
export type ScheduleState = 'queued' | 'waiting' | 'sending' | 'awaiting' | 'finalising';

/** A file in flight, as the schedule keeps it (one item per file, gone once the file is finished). */
export interface ScheduledFile {
  readonly fileId: string;
  readonly name: string;
  readonly partner: string;
  readonly kind: FileKind;
  /** When the file landed (its execution's start), ISO 8601. */
  readonly landedAt: string;
  /** When its first call was queued. */
  readonly startedAt?: string;
  readonly state: ScheduleState;
  readonly phase?: string;
  readonly waitingFor?: string;
  /** Since when it has been waiting for that (ISO), for the waiting-time metric and the 4404 bound. */
  readonly waitingSince?: string;
  /**
   * When its 4404 records were first held (the first RETRY phase that waited): RETRY_LATER_MAX_WAIT_S counts from
   * here across all its RETRY phases.
   */
  readonly retryWaitingSince?: string;
  /** The rule it waits on (Ordering, Priority, RetryLater, Paused, Cancelled). */
  readonly waitingRule?: string;
  readonly control?: FileControl;
  /** The waiting execution's task token (AwaitTurn), sent back when something that held it changes. */
  readonly turnToken?: string;
  /** The current phase's batches queued so far and answered. */
  readonly sent?: number;
  readonly answered?: number;
  /** The current phase's batches in all: known once enqueued, else estimated from the bytes read. */
  readonly batchesEstimate?: number;
  /** Records read so far by its ADD phase (all of them once that phase is queued), and those refused (VALIDATION). */
  readonly received?: number;
  readonly rejected?: number;
  /** Last written (ISO): an entry not refreshed for {@link ScheduleRules.staleAfterSeconds} is ignored. */
  readonly updatedAt: string;
}

/** Every file in flight, the partners an operator paused, and when the last users file of each partner ended. */
export interface ScheduleView {
  readonly files: readonly ScheduledFile[];
  readonly pausedPartners: readonly string[];
  /** Partner -> when its last users file finished (ISO). */
  readonly usersFinishedAt: Readonly<Record<string, string>>;
  /** Set by a one-machine run once every file it uploads has been claimed: nothing more will land (ISO). */
  readonly landingsClosedAt?: string;
}

export type NewScheduledFile = Pick<ScheduledFile, 'fileId' | 'name' | 'partner' | 'kind' | 'landedAt'>;

export type ScheduleChanges = Partial<
  Omit<
    ScheduledFile,
    | 'fileId'
    | 'name'
    | 'partner'
    | 'kind'
    | 'landedAt'
    | 'control'
    | 'waitingFor'
    | 'waitingSince'
    | 'waitingRule'
    | 'turnToken'
  >
> & {
  /** `null` clears the wait. */
  readonly waitingFor?: string | null;
  readonly waitingSince?: string | null;
  readonly waitingRule?: string | null;
  readonly turnToken?: string | null;
};

/** The port to the schedule (items in the ledger table on AWS and on one machine). */
export interface Schedule {
  view(): Promise<ScheduleView>;
  /** Adds a claimed file (again: nothing changes). */
  register(file: NewScheduledFile): Promise<void>;
  read(fileId: string): Promise<ScheduledFile | undefined>;
  /** Updates a file still in flight (one that is gone stays gone); stamps `updatedAt`. */
  update(fileId: string, changes: ScheduleChanges): Promise<void>;
  /** Removes the file's turn token if it is still `taskToken` (a newer one stays): true when it was. */
  takeTurnToken(fileId: string, taskToken: string): Promise<boolean>;
  /** Sets or clears a file's control; undefined when the file is not in flight. */
  setControl(fileId: string, control: FileControl | null): Promise<ScheduledFile | undefined>;
  setPartnerPaused(partner: string, paused: boolean): Promise<void>;
  /** The file is finished: it leaves the schedule (a users file stamps its partner's `usersFinishedAt`). */
  finish(file: Pick<ScheduledFile, 'fileId' | 'partner' | 'kind'>, at: string): Promise<void>;
  closeLandings(at: string): Promise<void>;
}

export interface ScheduleRules {
  /** Batches one file keeps queued and unanswered, before its partner's weight. */
  readonly windowBatches: number;
  readonly partnerWeights: Readonly<Record<string, number>>;
  readonly orderingWindowSeconds: number;
  readonly orderingScope: 'partner' | 'any';
  readonly retryLaterDelaySeconds: number;
  readonly retryLaterMaxWaitSeconds: number;
  /** An entry not written for this long belongs to an execution that stopped (failed): it blocks nobody. */
  readonly staleAfterSeconds: number;
  /** A waiting file asks again after this long even if nothing woke it (SCHEDULE_CHECK_S). */
  readonly checkSeconds: number;
}

/** The rules from the settings. An entry is stale once two phase checks (each refreshes it) have not come. */
export function scheduleRules(settings: {
  sendWindowBatches: number;
  partnerWeights: Readonly<Record<string, number>>;
  orderingWindowSeconds: number;
  orderingScope: 'partner' | 'any';
  retryLaterDelaySeconds: number;
  retryLaterMaxWaitSeconds: number;
  phaseCheckSeconds: number;
  scheduleCheckSeconds: number;
}): ScheduleRules {
  return {
    windowBatches: settings.sendWindowBatches,
    partnerWeights: settings.partnerWeights,
    orderingWindowSeconds: settings.orderingWindowSeconds,
    orderingScope: settings.orderingScope,
    retryLaterDelaySeconds: settings.retryLaterDelaySeconds,
    retryLaterMaxWaitSeconds: settings.retryLaterMaxWaitSeconds,
    staleAfterSeconds: 2 * settings.phaseCheckSeconds + 900,
    checkSeconds: settings.scheduleCheckSeconds,
  };
}

/** The settings the rules read: the functions that schedule name them in their contracts. */
export const SCHEDULE_SETTINGS = [
  'sendWindowBatches',
  'partnerWeights',
  'orderingWindowSeconds',
  'orderingScope',
  'retryLaterDelaySeconds',
  'retryLaterMaxWaitSeconds',
  'phaseCheckSeconds',
  'scheduleCheckSeconds',
] as const;

export type Turn =
  | { readonly send: true; readonly window: number }
  | {
      readonly send: false;
      /** `waiting`: a rule holds it; `paused`; `cancelled`: send nothing more. */
      readonly state: 'waiting' | 'paused' | 'cancelled';
      readonly reason: string;
      /** Its metric's dimension: Ordering, Priority, RetryLater, Paused, Cancelled. */
      readonly rule: 'Ordering' | 'Priority' | 'RetryLater' | 'Paused' | 'Cancelled';
      /** A RETRY phase waited past RETRY_LATER_MAX_WAIT_S: its records fail as 4404 without being sent. */
      readonly giveUp?: boolean;
      /** A hold that ends by itself (the ordering hold, the retry delay): seconds until it does. */
      readonly endsInSeconds?: number;
    };

type Stopped = Extract<Turn, { send: false }>;

const seconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : Number.NaN);

export const weightOf = (partner: string, rules: Pick<ScheduleRules, 'partnerWeights'>) =>
  rules.partnerWeights[partner] ?? 1;

export const windowOf = (partner: string, rules: Pick<ScheduleRules, 'windowBatches' | 'partnerWeights'>) =>
  rules.windowBatches * weightOf(partner, rules);

/** The partner of a landed object: the first folder below the landing prefix (the SFTP home). */
export function partnerOf(key: string, landingPrefix: string): string {
  const relative = relativeKey(key, landingPrefix);
  const slash = relative.indexOf('/');
  return slash > 0 ? relative.slice(0, slash) : '';
}

/**
 * May `file` queue more calls of `phase` now, and how many may be unanswered? In order: a cancel, a pause (of the
 * file or its partner), then for transactions: customers first (a users file of the partner, or of any partner
 * with ORDERING_SCOPE=any, that landed before it or up to ORDERING_WINDOW_S after it and is still in flight;
 * before its first call, the file holds that long for such files to land, unless a one-machine run has closed
 * its landings or a users file in flight when it landed has finished since), users' calls first (no users file of
 * any partner is refilling its window), and for a RETRY phase the retry delay after the partner's last users file
 * ended; a RETRY phase held past RETRY_LATER_MAX_WAIT_S since the file's 4404 records were first held
 * (`retryWaitingSince`) gives up.
 */
export function turnOf(
  file: ScheduledFile,
  phase: string,
  view: ScheduleView,
  rules: ScheduleRules,
  now: number,
): Turn {
  if (file.control === 'cancelled')
    return { send: false, state: 'cancelled', rule: 'Cancelled', reason: 'cancelled by an operator' };
  if (file.control === 'paused')
    return { send: false, state: 'paused', rule: 'Paused', reason: 'paused by an operator' };
  if (view.pausedPartners.includes(file.partner)) {
    return { send: false, state: 'paused', rule: 'Paused', reason: `partner ${file.partner} paused by an operator` };
  }
  const window = windowOf(file.partner, rules);
  if (file.kind !== 'transactions') return { send: true, window };

  const nowS = now / 1000;
  const live = view.files.filter(
    (other) =>
      other.fileId !== file.fileId &&
      other.kind === 'users' &&
      other.state !== 'finalising' &&
      nowS - seconds(other.updatedAt) <= rules.staleAfterSeconds,
  );
  const ours = live.filter((other) => rules.orderingScope === 'any' || other.partner === file.partner);
  const retry = phase.startsWith('RETRY');
  // The 4404 bound counts across the RETRY phases, from the first time one was held.
  const overdue = retry && nowS - seconds(file.retryWaitingSince) >= rules.retryLaterMaxWaitSeconds;
  const hold = (rule: 'Ordering' | 'Priority' | 'RetryLater', reason: string): Stopped =>
    overdue
      ? { send: false, state: 'waiting', rule, reason: `${reason}; waited past RETRY_LATER_MAX_WAIT_S`, giveUp: true }
      : { send: false, state: 'waiting', rule, reason };

  // Customers before their transactions.
  const landed = seconds(file.landedAt);
  const before = ours.filter((other) => retry || seconds(other.landedAt) <= landed + rules.orderingWindowSeconds);
  if (before.length > 0) {
    return hold('Ordering', `customers first: ${names(before)} still sending`);
  }
  // The hold ends early once nothing more can land (a one-machine run's uploads are over), or once a users
  // file that was in flight when this one landed has finished: the partner's customers came with it.
  const closed = seconds(view.landingsClosedAt);
  const usersDone = Math.max(
    ...Object.entries(view.usersFinishedAt)
      .filter(([partner]) => rules.orderingScope === 'any' || partner === file.partner)
      .map(([, at]) => seconds(at)),
    Number.NEGATIVE_INFINITY,
  );
  if (
    !retry &&
    !file.startedAt &&
    nowS < landed + rules.orderingWindowSeconds &&
    !(closed >= landed) &&
    !(usersDone > landed)
  ) {
    const left = Math.ceil(landed + rules.orderingWindowSeconds - nowS);
    return {
      ...hold('Ordering', `holding up to ${left} s for users files landing with it (ORDERING_WINDOW_S)`),
      endsInSeconds: left,
    };
  }
  if (retry) {
    const lastUsers = seconds(view.usersFinishedAt[file.partner]);
    if (nowS < lastUsers + rules.retryLaterDelaySeconds) {
      return {
        ...hold('RetryLater', `retry delay after ${file.partner}'s last users file`),
        endsInSeconds: Math.ceil(lastUsers + rules.retryLaterDelaySeconds - nowS),
      };
    }
  }
  // Users' calls before transactions' calls, whoever's they are.
  const refilling = live.filter((other) => other.state === 'sending');
  if (refilling.length > 0) return hold('Priority', `users files first: ${names(refilling)} sending`);
  return { send: true, window };
}

const names = (files: readonly ScheduledFile[]) => {
  const shown = files.slice(0, 3).map((f) => f.name);
  return files.length > 3 ? `${shown.join(', ')} and ${files.length - 3} more` : shown.join(', ');
};

/**
 * Seconds a file still needs: its calls left at its share of the budget (its weight over the weights of the
 * files sending in its class: users first, then transactions). Undefined when nothing is known yet, or the file
 * does not send now (its ETA is then "after what it waits for").
 */
export function etaSeconds(
  file: ScheduledFile,
  view: ScheduleView,
  rules: Pick<ScheduleRules, 'partnerWeights'>,
  callsPerMinute: number,
): number | undefined {
  if (file.batchesEstimate === undefined || file.answered === undefined) return undefined;
  if (file.state !== 'sending' && file.state !== 'awaiting') return undefined;
  const remaining = Math.max(0, file.batchesEstimate - file.answered);
  const sending = view.files.filter(
    (other) => (other.state === 'sending' || other.state === 'awaiting') && other.kind === file.kind,
  );
  const total = sending.reduce((sum, other) => sum + weightOf(other.partner, rules), 0) || 1;
  const share = weightOf(file.partner, rules) / total;
  return Math.ceil((remaining / (callsPerMinute * share)) * 60);
}

/** How long a held file waits before it asks again unwoken: SCHEDULE_CHECK_S, or less when its hold ends sooner. */
export const recheckSeconds = (turn: Stopped, rules: Pick<ScheduleRules, 'checkSeconds'>) =>
  Math.max(1, Math.min(rules.checkSeconds, turn.endsInSeconds ?? rules.checkSeconds));

/** The port that sends a waiting execution on (Step Functions' SendTaskSuccess; an in-process call locally). */
export interface TurnNotifier {
  /** A token already used or timed out is not an error. */
  wake(taskToken: string): Promise<void>;
}

/**
 * Sends every waiting file on to ask again whether it may send: called by whatever may have released one (a
 * file finished, a users file stopped refilling, a pause lifted, a cancel). Each asks again, and waits again
 * if it still may not; a wake that races another is harmless (the token is spent once).
 */
export async function wakeWaiting(
  schedule: Pick<Schedule, 'view' | 'takeTurnToken'>,
  notifier: TurnNotifier,
  only?: (file: ScheduledFile) => boolean,
): Promise<number> {
  const view = await schedule.view();
  const waiting = view.files.filter((file) => file.turnToken && (!only || only(file)));
  let woken = 0;
  await Promise.all(
    waiting.map(async (file) => {
      const token = file.turnToken as string;
      // Best effort: a wake that fails leaves the file to ask again after its recheck; the caller's own work
      // (a phase's total, a report) must not fail for it.
      try {
        if (!(await schedule.takeTurnToken(file.fileId, token))) return;
        await notifier.wake(token);
        woken++;
      } catch {
        // Asked again at its recheck.
      }
    }),
  );
  return woken;
}

/** A file finished (or refused after its claim) leaves the schedule, and the files it may have held are woken. */
export async function leaveSchedule(
  schedule: Pick<Schedule, 'finish' | 'view' | 'takeTurnToken'>,
  notifier: TurnNotifier | undefined,
  file: Pick<ScheduledFile, 'fileId' | 'partner' | 'kind'>,
  at: string,
): Promise<void> {
  await schedule.finish(file, at);
  if (notifier) await wakeWaiting(schedule, notifier);
}

/** What an operator may do to a file in flight, or to every file of a partner. */
export type ControlAction = 'pause' | 'resume' | 'cancel';

export class ControlRefused extends Error {
  override readonly name = 'ControlRefused';
}

/**
 * Pause, resume or cancel a file (by its id) or all files of a partner. Pause stops new calls within seconds
 * (the dispatcher holds its queued batches, the refill stops); resume lets them go; cancel sends nothing more and
 * finalises the file with its unsent records failed as CANCELLED. A partner's pause also holds its files that
 * land later, until resumed; its cancel cancels the files in flight now. Returns the files it changed.
 * @throws ControlRefused for a file not in flight, or a resume of a cancelled file.
 */
export async function controlFiles(
  schedule: Schedule,
  target: { readonly fileId: string } | { readonly partner: string },
  action: ControlAction,
  notifier?: TurnNotifier,
): Promise<ScheduledFile[]> {
  const changed = await applyControl(schedule, target, action);
  // A resumed or cancelled file (or one a paused users file no longer holds) asks again now.
  if (notifier) await wakeWaiting(schedule, notifier);
  return changed;
}

async function applyControl(
  schedule: Schedule,
  target: { readonly fileId: string } | { readonly partner: string },
  action: ControlAction,
): Promise<ScheduledFile[]> {
  if ('fileId' in target) {
    const file = await schedule.read(target.fileId);
    if (!file) throw new ControlRefused(`no file ${target.fileId} in flight`);
    if (file.control === 'cancelled' && action !== 'cancel') throw new ControlRefused(`${file.name} is cancelled`);
    if (file.state === 'finalising') throw new ControlRefused(`${file.name} is being finalised: its calls are over`);
    const control = action === 'pause' ? 'paused' : action === 'cancel' ? 'cancelled' : null;
    const changed = await schedule.setControl(file.fileId, control);
    if (!changed) {
      const now = await schedule.read(file.fileId);
      throw new ControlRefused(
        now ? `${now.name} is being finalised: its calls are over` : `no file ${target.fileId} in flight`,
      );
    }
    return [changed];
  }
  const { partner } = target;
  if (action !== 'cancel') await schedule.setPartnerPaused(partner, action === 'pause');
  const view = await schedule.view();
  const files = view.files.filter((file) => file.partner === partner);
  if (action === 'pause') return files;
  const changed: ScheduledFile[] = [];
  for (const file of files) {
    if (file.control === 'cancelled' || file.state === 'finalising') continue;
    // A partner's resume also lifts a pause of one of its files; its cancel cancels each file in flight.
    if (action === 'resume' && file.control !== 'paused') continue;
    const after = await schedule.setControl(file.fileId, action === 'cancel' ? 'cancelled' : null);
    if (after) changed.push(after);
  }
  return changed;
}

/** What the dispatcher needs to know of a queued call's file: an operator's hold, whose it is. */
export interface CallControl {
  readonly control?: FileControl;
  readonly partner?: string;
  readonly kind?: FileKind;
}

/**
 * The schedule as the dispatchers read it: one view per `ttlMs` (a Query of a few KB), shared by every call of
 * the invocation, so a pause or cancel reaches the calls already queued within seconds at a few reads a second
 * in all. A file the schedule does not hold (finished, or claimed before the schedule existed) has no control.
 */
export class ScheduleControls {
  private cached: { at: number; view: Promise<ScheduleView> } | undefined;

  constructor(
    private readonly schedule: Pick<Schedule, 'view'>,
    private readonly ttlMs = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  async of(fileId: string): Promise<CallControl> {
    if (!this.cached || this.now() - this.cached.at >= this.ttlMs) {
      const view = this.schedule.view();
      this.cached = { at: this.now(), view };
      view.catch(() => {
        if (this.cached?.view === view) this.cached = undefined;
      });
    }
    const view = await this.cached.view;
    const file = view.files.find((entry) => entry.fileId === fileId);
    if (!file) return {};
    const control = file.control ?? (view.pausedPartners.includes(file.partner) ? 'paused' : undefined);
    return { partner: file.partner, kind: file.kind, ...(control ? { control } : {}) };
  }
}
