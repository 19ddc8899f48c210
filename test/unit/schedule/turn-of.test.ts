import { createHash } from 'node:crypto';
import type { QueuedCall } from '../../../lambdas/core/crm/call-message';
import type { PhaseCounters } from '../../../lambdas/core/ledger/phase-counters';
import type { PrepareCheckpoint } from '../../../lambdas/core/files/prepare-file';
import { preparePhaseSlice, type PhaseDeps } from '../../../lambdas/core/workflow/prepare-phase';
import { MemorySchedule } from '../../support/memory-schedule';
import { MemoryStore } from '../files/in-memory-pipeline';
import {
  etaSeconds,
  recheckSeconds,
  scheduleRules,
  turnOf,
  windowOf,
  type ScheduledFile,
  type ScheduleRules,
  type ScheduleView,
  type Turn,
} from '../../../lambdas/core/schedule/schedule';

/** The rules of the schedule as pure decisions over hand-built views of the files in flight. */
const NOW = Date.parse('2026-11-24T03:00:00Z');
const at = (secondsFromNow: number) => new Date(NOW + secondsFromNow * 1000).toISOString();

const rules = (changes: Partial<Parameters<typeof scheduleRules>[0]> = {}): ScheduleRules =>
  scheduleRules({
    sendWindowBatches: 100,
    partnerWeights: {},
    orderingWindowSeconds: 300,
    orderingScope: 'partner',
    retryLaterDelaySeconds: 60,
    retryLaterMaxWaitSeconds: 86_400,
    phaseCheckSeconds: 900,
    scheduleCheckSeconds: 300,
    ...changes,
  });

let ids = 0;
const file = (kind: ScheduledFile['kind'], changes: Partial<ScheduledFile> = {}): ScheduledFile => ({
  fileId: `f${++ids}`,
  name: `${kind}_acme_${ids}.csv`,
  partner: 'acme',
  kind,
  landedAt: at(-3600),
  state: 'queued',
  updatedAt: at(-1),
  ...changes,
});
/** A transactions file that has sent already (so the landing hold is over). */
const started = (changes: Partial<ScheduledFile> = {}) =>
  file('transactions', { startedAt: at(-3000), state: 'sending', ...changes });
const viewOf = (files: ScheduledFile[], changes: Partial<ScheduleView> = {}): ScheduleView => ({
  files,
  pausedPartners: [],
  usersFinishedAt: {},
  ...changes,
});
const decide = (
  subject: ScheduledFile,
  others: ScheduledFile[],
  options: { phase?: string; rules?: ScheduleRules; view?: Partial<ScheduleView>; waited?: number } = {},
): Turn =>
  turnOf(
    // `waited`: how long its 4404 records have been held (the entry's retryWaitingSince).
    options.waited === undefined ? subject : { ...subject, retryWaitingSince: at(-options.waited) },
    options.phase ?? 'ADD',
    viewOf([subject, ...others], options.view),
    options.rules ?? rules(),
    NOW,
  );

describe('turnOf: which rule wins', () => {
  it('a cancel wins over a pause, a pause over customers first, customers first over users first', () => {
    const sendingUsers = file('users', { state: 'sending', landedAt: at(-4000) });
    const paused = { view: { pausedPartners: ['acme'] } };
    expect(decide(started({ control: 'cancelled' }), [sendingUsers], paused)).toMatchObject({
      send: false,
      state: 'cancelled',
      rule: 'Cancelled',
    });
    expect(decide(started({ control: 'paused' }), [sendingUsers])).toMatchObject({
      send: false,
      state: 'paused',
      rule: 'Paused',
      reason: 'paused by an operator',
    });
    expect(decide(started(), [sendingUsers], paused)).toMatchObject({
      state: 'paused',
      reason: 'partner acme paused by an operator',
    });
    expect(decide(started(), [sendingUsers])).toMatchObject({
      send: false,
      state: 'waiting',
      rule: 'Ordering',
      reason: `customers first: ${sendingUsers.name} still sending`,
    });
    // Another partner's users file refilling: not its customers, but users' calls go first.
    const otherPartner = { ...sendingUsers, partner: 'bolt' };
    expect(decide(started(), [otherPartner])).toMatchObject({
      rule: 'Priority',
      reason: `users files first: ${otherPartner.name} sending`,
    });
    expect(decide(started(), [{ ...otherPartner, state: 'awaiting' }])).toEqual({ send: true, window: 100 });
  });

  it('users files send whatever else is in flight, unless paused or cancelled', () => {
    const others = [file('users', { state: 'sending' }), started()];
    expect(decide(file('users'), others)).toEqual({ send: true, window: 100 });
    expect(decide(file('users', { control: 'paused' }), others)).toMatchObject({ state: 'paused' });
    expect(decide(file('users'), others, { view: { pausedPartners: ['acme'] } })).toMatchObject({ state: 'paused' });
    expect(decide(file('users', { partner: 'bolt' }), others, { view: { pausedPartners: ['acme'] } })).toEqual({
      send: true,
      window: 100,
    });
  });
});

describe('turnOf: customers before their transactions', () => {
  it('holds for users files of its partner that landed before it or within ORDERING_WINDOW_S after it', () => {
    const subject = started({ landedAt: at(-600) });
    for (const landedAt of [at(-700), at(-600), at(-301)]) {
      expect(decide(subject, [file('users', { landedAt, state: 'awaiting' })])).toMatchObject({ rule: 'Ordering' });
    }
    // Landed later than the window after it: no longer its customers' file (users' calls still go first).
    expect(decide(subject, [file('users', { landedAt: at(-299), state: 'awaiting' })])).toEqual({
      send: true,
      window: 100,
    });
    expect(decide(subject, [file('users', { landedAt: at(-299), state: 'sending' })])).toMatchObject({
      rule: 'Priority',
    });
  });

  it("only its own partner's users files, unless ORDERING_SCOPE=any", () => {
    const other = file('users', { partner: 'bolt', state: 'awaiting', landedAt: at(-4000) });
    expect(decide(started(), [other])).toEqual({ send: true, window: 100 });
    expect(decide(started(), [other], { rules: rules({ orderingScope: 'any' }) })).toMatchObject({
      rule: 'Ordering',
      reason: `customers first: ${other.name} still sending`,
    });
  });

  it('a users file finalising, or whose entry went stale (a stopped execution), holds nobody', () => {
    const before = { landedAt: at(-4000) };
    expect(decide(started(), [file('users', { ...before, state: 'finalising' })])).toEqual({ send: true, window: 100 });
    const stale = file('users', { ...before, state: 'sending', updatedAt: at(-(2 * 900 + 901)) });
    expect(decide(started(), [stale])).toEqual({ send: true, window: 100 });
  });

  it('before its first call it holds ORDERING_WINDOW_S from its landing, and says how long is left', () => {
    const fresh = file('transactions', { landedAt: at(-100) });
    const turn = decide(fresh, []);
    expect(turn).toMatchObject({
      send: false,
      state: 'waiting',
      rule: 'Ordering',
      reason: 'holding up to 200 s for users files landing with it (ORDERING_WINDOW_S)',
      endsInSeconds: 200,
    });
    expect(recheckSeconds(turn as Extract<Turn, { send: false }>, rules())).toBe(200);
    expect(recheckSeconds(turn as Extract<Turn, { send: false }>, rules({ scheduleCheckSeconds: 30 }))).toBe(30);
    // The window over, or the file sent already, or no window: no hold.
    expect(decide(file('transactions', { landedAt: at(-300) }), [])).toEqual({ send: true, window: 100 });
    expect(decide({ ...fresh, startedAt: at(-50) }, [])).toEqual({ send: true, window: 100 });
    expect(decide(fresh, [], { rules: rules({ orderingWindowSeconds: 0 }) })).toEqual({ send: true, window: 100 });
  });

  it('the hold ends once landings are closed after it landed', () => {
    const fresh = file('transactions', { landedAt: at(-100) });
    expect(decide(fresh, [], { view: { landingsClosedAt: at(-50) } })).toEqual({ send: true, window: 100 });
    expect(decide(fresh, [], { view: { landingsClosedAt: at(-100) } })).toEqual({ send: true, window: 100 });
    // Closed before it landed (an earlier run's mark): it holds.
    expect(decide(fresh, [], { view: { landingsClosedAt: at(-200) } })).toMatchObject({ rule: 'Ordering' });
    // Closed, but a users file of its partner is in flight: it still waits for that one.
    const users = file('users', { landedAt: at(-90), state: 'sending' });
    expect(decide(fresh, [users], { view: { landingsClosedAt: at(-50) } })).toMatchObject({
      reason: `customers first: ${users.name} still sending`,
    });
  });

  it('the hold ends once a users file of its partner has finished since it landed (its customers came)', () => {
    const fresh = file('transactions', { landedAt: at(-100) });
    expect(decide(fresh, [], { view: { usersFinishedAt: { acme: at(-10) } } })).toEqual({ send: true, window: 100 });
    // Finished before it landed, or another partner's: it holds.
    expect(decide(fresh, [], { view: { usersFinishedAt: { acme: at(-150) } } })).toMatchObject({ rule: 'Ordering' });
    expect(decide(fresh, [], { view: { usersFinishedAt: { bolt: at(-10) } } })).toMatchObject({ rule: 'Ordering' });
  });
});

describe('turnOf: RETRY phases (4404 records)', () => {
  const retry = { phase: 'RETRY1' };

  it('wait for every users file of the partner in flight, whenever it landed', () => {
    const subject = started({ landedAt: at(-600) });
    const later = file('users', { landedAt: at(-10), state: 'awaiting' });
    expect(decide(subject, [later], retry)).toMatchObject({ rule: 'Ordering' });
    expect(decide(subject, [later], retry)).not.toHaveProperty('giveUp');
    // A fresh file's RETRY phase does not hold for the landing window.
    expect(decide(file('transactions', { landedAt: at(-100) }), [], retry)).toEqual({ send: true, window: 100 });
  });

  it("then wait RETRY_LATER_DELAY_S after the partner's last users file finished", () => {
    const subject = started();
    const finishedAt = (secondsAgo: number) => ({ ...retry, view: { usersFinishedAt: { acme: at(-secondsAgo) } } });
    expect(decide(subject, [], finishedAt(20))).toMatchObject({
      rule: 'RetryLater',
      reason: "retry delay after acme's last users file",
      endsInSeconds: 40,
    });
    expect(decide(subject, [], finishedAt(60))).toEqual({ send: true, window: 100 });
    // ADD is not held by the retry delay.
    expect(decide(subject, [], { view: { usersFinishedAt: { acme: at(-20) } } })).toEqual({ send: true, window: 100 });
  });

  it('give up once held past RETRY_LATER_MAX_WAIT_S (its records then fail as 4404)', () => {
    const subject = started();
    const users = file('users', { state: 'waiting', control: 'paused' });
    const bounded = rules({ retryLaterMaxWaitSeconds: 120 });
    expect(decide(subject, [users], { ...retry, rules: bounded, waited: 119 })).not.toHaveProperty('giveUp');
    expect(decide(subject, [users], { ...retry, rules: bounded, waited: 120 })).toMatchObject({
      send: false,
      rule: 'Ordering',
      giveUp: true,
      reason: expect.stringMatching(/waited past RETRY_LATER_MAX_WAIT_S$/),
    });
    const delayed = { ...retry, rules: bounded, waited: 500, view: { usersFinishedAt: { acme: at(-5) } } };
    expect(decide(subject, [], delayed)).toMatchObject({ rule: 'RetryLater', giveUp: true });
    // Only a RETRY phase gives up: an ADD phase waits as long as it takes.
    expect(decide(subject, [users], { rules: bounded, waited: 500 })).not.toHaveProperty('giveUp');
    // A pause of the file itself is not a wait to give up on.
    expect(decide({ ...subject, control: 'paused' }, [], { ...retry, rules: bounded, waited: 500 })).toMatchObject({
      state: 'paused',
    });
  });
});

describe('windows and ETAs', () => {
  it("a file's window is SEND_WINDOW_BATCHES times its partner's weight", () => {
    const weighted = rules({ sendWindowBatches: 10, partnerWeights: { heavy: 3 } });
    expect(windowOf('heavy', weighted)).toBe(30);
    expect(windowOf('acme', weighted)).toBe(10);
    expect(decide(file('users', { partner: 'heavy' }), [], { rules: weighted })).toEqual({ send: true, window: 30 });
    expect(decide(started({ partner: 'heavy' }), [], { rules: weighted })).toEqual({ send: true, window: 30 });
  });

  it('the ETA is the calls left at the file’s share of the files of its kind sending', () => {
    const weights = { partnerWeights: { heavy: 2 } };
    const subject = file('users', { state: 'sending', batchesEstimate: 100, answered: 40 });
    const peer = file('users', { partner: 'bolt', state: 'awaiting' });
    const transactions = started();
    const view = viewOf([subject, peer, transactions]);
    // 60 calls at half of 60 calls a minute: 120 s. Transactions files do not share the users' budget.
    expect(etaSeconds(subject, view, weights, 60)).toBe(120);
    expect(
      etaSeconds({ ...subject, partner: 'heavy' }, viewOf([{ ...subject, partner: 'heavy' }, peer]), weights, 60),
    ).toBe(90);
    expect(etaSeconds(subject, viewOf([subject]), weights, 60)).toBe(60);
    expect(etaSeconds({ ...subject, state: 'waiting' }, view, weights, 60)).toBeUndefined();
    const { batchesEstimate: _estimate, ...unknown } = subject;
    expect(etaSeconds(unknown, view, weights, 60)).toBeUndefined();
    expect(etaSeconds({ ...subject, answered: 120 }, view, weights, 60)).toBe(0);
  });
});

/**
 * A prepare slice's send window (SendTurn inside preparePhaseSlice): a file keeps at most its window of batches
 * queued and unanswered, and a hold that comes mid-slice (users' calls first, customers first, a pause) lets at
 * most the hand-off in hand go past it, so the held file's backlog does not go ahead of the files it waits for.
 */
const WINDOW = 10;
const FILE = { bucket: 'landing', key: 'transactions/acme/transactions_acme_20261124_001.csv' };
// 600 transactions, 10 a batch: 60 batches, 6 hand-offs of 10.
const TEXT = [
  'transaction_id,customer_id,amount,currency,occurred_at',
  ...Array.from({ length: 600 }, (_, n) => `T${n + 1},C${n + 1},1.00,EUR,2026-11-24T03:00:00Z`),
].join('\n');
const FILE_ID = createHash('sha256').update(TEXT).digest('hex');

function slice(onSend: (queued: QueuedCall[]) => void) {
  const store = new MemoryStore();
  void store.put(FILE, TEXT);
  const schedule = new MemorySchedule();
  const queued: QueuedCall[] = [];
  // No answer comes (the window stays full once filled) until `answerAll`: then every call queued is answered.
  let answering = false;
  const phases = {
    read: (fileId: string, phase: string) =>
      Promise.resolve({
        fileId,
        phase,
        batches: undefined,
        answered: answering ? queued.length : 0,
        update: 0,
        retryLater: 0,
      }),
    setBatchTotal: (fileId: string, phase: string, batches: number) =>
      Promise.resolve({ fileId, phase, batches, answered: 0, update: 0, retryLater: 0 }),
  } as unknown as PhaseCounters;
  const deps: PhaseDeps = {
    store,
    queue: {
      send: (calls) => {
        queued.push(...calls);
        onSend(queued);
        return Promise.resolve();
      },
    },
    phases,
    answers: { answers: async function* () {} },
    notifier: { succeed: () => Promise.resolve() },
    limits: { maxRecords: 10, maxBytes: 200 * 1024 },
    acceptedEncodings: ['csv'],
    turn: {
      schedule,
      rules: rules({ sendWindowBatches: WINDOW, orderingWindowSeconds: 0, scheduleCheckSeconds: 1 }),
      pollMs: 5,
      viewMs: 20,
    },
  };
  const run = (deadline: () => boolean, from?: { nextBatch: number; checkpoint?: PrepareCheckpoint }) =>
    preparePhaseSlice(
      {
        file: FILE,
        kind: 'transactions',
        fileId: FILE_ID,
        phase: 'ADD',
        firstBatch: from?.nextBatch ?? 0,
        ...(from?.checkpoint ? { checkpoint: from.checkpoint } : {}),
        partner: 'acme',
      },
      deps,
      deadline,
    );
  const answerAll = () => {
    answering = true;
  };
  return { schedule, queued, run, answerAll };
}

const usersSending = (): ScheduledFile => ({
  fileId: 'u'.repeat(64),
  name: 'users_acme_20261124_001.csv',
  partner: 'acme',
  kind: 'users',
  landedAt: new Date().toISOString(),
  startedAt: new Date().toISOString(),
  state: 'sending',
  updatedAt: new Date().toISOString(),
});

/** What a slice left queued, against the bound: its window, nothing past it. */
const outcome = (queued: readonly QueuedCall[], result: Awaited<ReturnType<ReturnType<typeof slice>['run']>>) => ({
  queued: queued.length <= WINDOW ? 'at most its window' : `${queued.length} of 60 batches`,
  complete: result.complete,
  held: result.held?.state,
});

describe('the send window of a prepare slice', () => {
  it('queues no more than its window while no answer comes', async () => {
    let stopAt = Number.POSITIVE_INFINITY;
    let queuedAtDeadline: number | undefined;
    const { queued, run } = slice((calls) => {
      if (calls.length >= WINDOW) stopAt = Math.min(stopAt, Date.now() + 300);
    });
    // The slice's time runs out 300 ms after its window filled: until then nothing more was queued.
    await run(() => {
      if (Date.now() <= stopAt) return false;
      queuedAtDeadline ??= queued.length;
      return true;
    });
    expect(queuedAtDeadline).toBe(WINDOW);
  });

  it('held mid-slice (a users file starts refilling), it queues nothing past its window; the next slice goes on from there, each batch once', async () => {
    const { schedule, queued, run, answerAll } = slice((calls) => {
      if (calls.length === WINDOW) schedule.put(usersSending());
    });
    const result = await run(() => false);
    expect(outcome(queued, result)).toEqual({
      queued: 'at most its window',
      complete: false,
      held: 'waiting',
    });
    expect(result.held?.reason).toMatch(/^users files first/);
    expect(result.nextBatch).toBe(queued.length);
    // The users file done, the slice after goes on from the checkpoint: every batch queued once, in order.
    await schedule.finish({ fileId: 'u'.repeat(64), partner: 'acme', kind: 'users' }, new Date().toISOString());
    answerAll();
    const rest = await run(() => false, {
      nextBatch: result.nextBatch,
      ...(result.checkpoint ? { checkpoint: result.checkpoint } : {}),
    });
    expect(rest.complete).toBe(true);
    const batches = queued.map((call) => (JSON.parse(call.body) as { batchIndex: number }).batchIndex);
    expect(batches).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('paused mid-slice, it queues nothing past its window', async () => {
    const { schedule, queued, run } = slice((calls) => {
      if (calls.length === WINDOW) void schedule.setControl(FILE_ID, 'paused');
    });
    const result = await run(() => false);
    expect(outcome(queued, result)).toEqual({
      queued: 'at most its window',
      complete: false,
      held: 'paused',
    });
  });
});
