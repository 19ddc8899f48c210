import { GetObjectCommand } from '@aws-sdk/client-s3';
import { controlFiles } from '../../lambdas/core/schedule/schedule';
import { LOCAL_NAMES } from '../../lambdas/local/wiring/local-pipeline';
import { customer } from '../fixtures/crm-records';
import type { RecordedCall } from '../support/recording-crm';
import {
  callsFor,
  finished,
  ids,
  scheduled,
  sleep,
  startScheduledPipeline,
  transactionsCsv,
  until,
  usersCsv,
  type ScheduledPipeline,
} from '../support/scheduled-pipeline';

/**
 * The scheduling rules of the CRM budget (docs/design.md, Scheduling) on the embedded services: the real
 * handlers and state machine, the CRM simulator behind a recording pass-through, at a scaled limit (about 9
 * calls a second, 10 records a call, windows of 10 batches) so that files overlap in time. Each file's records
 * carry ids of their own prefix, so each call is known to be that file's.
 */
const CUSTOMER_CALLS = new Set(['ADD_CUST', 'UPD_CUST']);
const last = <T>(items: readonly T[]) => items[items.length - 1] as T;
const codes = (calls: readonly RecordedCall[]) => calls.flatMap((call) => [...call.codes]);
const ms = (iso: string | undefined) => Date.parse(iso ?? '');

describe('customers before their transactions', () => {
  let run: ScheduledPipeline;
  beforeAll(async () => {
    // Transactions wait up to 10 s for users files landing with them.
    run = await startScheduledPipeline({ ORDERING_WINDOW_S: '10' });
  }, 60_000);
  afterAll(() => run?.close());

  it('a transactions file landing first holds, then waits for the users file that lands after it', async () => {
    const { pipeline, calls } = run;
    const customers = ids('OA', 200);
    // Every transaction refers to a customer of the users file: sent too early, each would come back 4404.
    await pipeline.land('acme/transactions_acme_20261124_001.csv', transactionsCsv('OT', customers.slice(0, 100)));
    // Before its first call it holds ORDERING_WINDOW_S for users files landing with it.
    const holding = await until('the transactions file holding', async () => {
      const file = (await pipeline.schedule.view()).files.find((f) => f.name === 'transactions_acme_20261124_001.csv');
      return file?.state === 'waiting' ? file : undefined;
    });
    expect(holding.waitingFor).toMatch(/^holding up to \d+ s for users files landing with it/);
    await sleep(1000);
    expect(callsFor(calls, 'OT')).toHaveLength(0);
    await pipeline.land('acme/users_acme_20261124_001.csv', usersCsv(customers));
    const waiting = await until('the transactions file waiting for customers', async () => {
      const file = (await pipeline.schedule.view()).files.find((f) => f.name === 'transactions_acme_20261124_001.csv');
      return file?.waitingFor?.startsWith('customers first') ? file : undefined;
    });
    expect(waiting.waitingFor).toContain('users_acme_20261124_001.csv');

    const transactions = await finished(pipeline, 'transactions_acme_20261124_001.csv');
    const users = await finished(pipeline, 'users_acme_20261124_001.csv');
    expect(users).toMatchObject({ status: 'succeeded', received: 200, succeeded: 200 });
    expect(transactions).toMatchObject({ status: 'succeeded', received: 100, succeeded: 100, failed: 0 });

    const customerCalls = callsFor(calls, 'OA').filter((call) => CUSTOMER_CALLS.has(call.operation));
    const transactionCalls = callsFor(calls, 'OT');
    expect(customerCalls).toHaveLength(20);
    // No transaction went before the last of its customers, none came back 4404, no call was spent twice.
    expect(transactionCalls[0]!.at).toBeGreaterThanOrEqual(last(customerCalls).at);
    expect(codes(transactionCalls)).not.toContain(4404);
    expect(transactionCalls).toHaveLength(10);
    expect(transactions.calls?.made).toBe(10);
    expect(users.calls?.made).toBe(20);
  }, 60_000);

  it('a transactions file landing after the users file waits, seen waiting for customers first, until they are in', async () => {
    const { pipeline, calls } = run;
    const customers = ids('OB', 300);
    await pipeline.land('bolt/users_bolt_20261124_001.csv', usersCsv(customers));
    await until('the users file sending', () => callsFor(calls, 'OB').length > 0);
    await pipeline.land('bolt/transactions_bolt_20261124_001.csv', transactionsCsv('OU', customers.slice(0, 100)));
    // Nothing else lands: the transactions file need not hold ORDERING_WINDOW_S for users files landing with it.
    await scheduled(pipeline, 'transactions_bolt_20261124_001.csv');
    await pipeline.schedule.closeLandings(new Date().toISOString());

    const seen = await until('the transactions file seen waiting', async () => {
      const view = await pipeline.schedule.view();
      const file = view.files.find((entry) => entry.name === 'transactions_bolt_20261124_001.csv');
      return file?.state === 'waiting' ? { file, usersCalls: callsFor(calls, 'OB').length } : undefined;
    });
    expect(seen.file.waitingFor).toMatch(/^customers first/);
    expect(seen.file.waitingFor).toContain('users_bolt_20261124_001.csv');
    expect(seen.file.waitingRule).toBe('Ordering');
    // ... while the users file was still sending.
    expect(seen.usersCalls).toBeLessThan(30);

    const transactions = await finished(pipeline, 'transactions_bolt_20261124_001.csv');
    const users = await finished(pipeline, 'users_bolt_20261124_001.csv');
    expect(users).toMatchObject({ status: 'succeeded', received: 300, succeeded: 300 });
    expect(transactions).toMatchObject({ status: 'succeeded', received: 100, succeeded: 100, failed: 0 });
    const customerCalls = callsFor(calls, 'OB').filter((call) => CUSTOMER_CALLS.has(call.operation));
    const transactionCalls = callsFor(calls, 'OU');
    expect(transactionCalls[0]!.at).toBeGreaterThanOrEqual(last(customerCalls).at);
    expect(codes(transactionCalls)).not.toContain(4404);
    expect(customerCalls).toHaveLength(30);
    expect(transactionCalls).toHaveLength(10);
    expect(transactions.calls?.made).toBe(10);
    // Landings closed: it went once the users file was done, not ORDERING_WINDOW_S after it landed.
    expect(transactionCalls[0]!.at - ms(transactions.landedAt)).toBeLessThan(9_000);
  }, 60_000);
});

describe('a users file landing while transactions send', () => {
  let run: ScheduledPipeline;
  // The first 100 transactions refer to the last 100 customers of the late users file; the others to customers
  // the CRM already has.
  const known = ids('LS', 1100);
  beforeAll(async () => {
    run = await startScheduledPipeline(
      // No hold: the transactions file sends at once. The old retry window: 2 attempts x 1 s.
      { ORDERING_WINDOW_S: '0', RETRY_LATER_ATTEMPTS: '2', RETRY_LATER_DELAY_S: '1' },
      { customers: known.map((id) => customer(id)) },
    );
  }, 60_000);
  afterAll(() => run?.close());

  it('stops the transactions refilling; its 4404 records go again once the users file is done, and succeed', async () => {
    const { pipeline, calls } = run;
    const late = ids('LN', 800);
    await pipeline.land(
      'acme/transactions_acme_20261124_001.csv',
      transactionsCsv('LT', [...late.slice(700), ...known]),
    );
    await until('the first ADD_TRX calls', () => callsFor(calls, 'LT').length > 0);
    await pipeline.land('acme/users_acme_20261124_001.csv', usersCsv(late));

    const users = await finished(pipeline, 'users_acme_20261124_001.csv');
    const transactions = await finished(pipeline, 'transactions_acme_20261124_001.csv');
    expect(users).toMatchObject({ status: 'succeeded', received: 800, succeeded: 800 });
    expect(transactions).toMatchObject({ status: 'succeeded', received: 1200, succeeded: 1200, failed: 0 });

    const customerCalls = callsFor(calls, 'LN');
    const transactionCalls = callsFor(calls, 'LT');
    const usersFrom = customerCalls[0]!.at;
    const usersTo = last(customerCalls).at;
    // The users file took longer than the old retry window (RETRY_LATER_ATTEMPTS x RETRY_LATER_DELAY_S)...
    expect(usersTo - usersFrom).toBeGreaterThan(2 * 1000 * 2);
    // ... and its customers' transactions were sent too early at first: 4404.
    expect(codes(transactionCalls).filter((code) => code === 4404)).toHaveLength(100);

    // The 4404 records were tried again only after the users file's last call, and then succeeded.
    const sent = new Set<string>();
    const retried: RecordedCall[] = [];
    for (const call of transactionCalls) {
      if (call.ids.some((id) => sent.has(id))) retried.push(call);
      for (const id of call.ids) sent.add(id);
    }
    expect(retried.flatMap((call) => call.ids).sort()).toEqual(ids('LT', 100).sort());
    for (const call of retried) {
      expect(call.at).toBeGreaterThanOrEqual(usersTo);
      expect(call.codes).toEqual(call.ids.map(() => 200));
    }
    expect(transactions.calls?.made).toBe(130);
    // Once the transactions file has seen the users file refilling (it reads the schedule every 2 s), it sends
    // only what it had queued: its window (10 batches), nothing past it, not 120 batches.
    const seenSending = ms(users.startedAt) + 2500;
    const refillingUntil = customerCalls[customerCalls.length - 10]!.at;
    const afterSeen = transactionCalls.filter((call) => call.at > seenSending && call.at < refillingUntil).length;
    // So the users file's calls go soon after it starts, not behind the transactions file's backlog.
    const usersDelayMs = usersFrom - ms(users.startedAt);
    expect({
      transactionCallsWhileUsersRefill: afterSeen <= 10 ? 'at most 10' : afterSeen,
      usersFirstCallAfterStart: usersDelayMs < 6000 ? 'under 6 s' : `${usersDelayMs} ms`,
    }).toEqual({ transactionCallsWhileUsersRefill: 'at most 10', usersFirstCallAfterStart: 'under 6 s' });
  }, 60_000);
});

describe('4404 records that never resolve', () => {
  let run: ScheduledPipeline;
  beforeAll(async () => {
    run = await startScheduledPipeline(
      { ORDERING_WINDOW_S: '0', RETRY_LATER_ATTEMPTS: '2', RETRY_LATER_DELAY_S: '1', RETRY_LATER_MAX_WAIT_S: '4' },
      { customers: ids('NS', 7).map((id) => customer(id)) },
    );
  }, 60_000);
  afterAll(() => run?.close());

  it('a transaction whose customer never comes fails as 4404 once its attempts are spent', async () => {
    const { pipeline, calls } = run;
    const customers = ['NX1', 'NX1', 'NX1', ...ids('NS', 7)];
    await pipeline.land('delta/transactions_delta_20261124_001.csv', transactionsCsv('NT', customers));
    const summary = await finished(pipeline, 'transactions_delta_20261124_001.csv');
    expect(summary).toMatchObject({
      status: 'partial',
      received: 10,
      succeeded: 7,
      failed: 3,
      failures: { '4404': 3 },
    });
    // Sent once, then once in each of RETRY_LATER_ATTEMPTS retry phases: answered 4404 every time.
    const tries = callsFor(calls, 'NT').flatMap((call) =>
      call.ids.map((id, i) => [id, call.codes[i]] as const).filter(([id]) => ['NT1', 'NT2', 'NT3'].includes(id)),
    );
    expect(tries).toHaveLength(9);
    expect(tries.every(([, code]) => code === 4404)).toBe(true);
    const rows = (await reportText(run, summary.reports.results as string)).trim().split('\n');
    expect(rows.slice(1, 4).map((row) => row.split(',').slice(0, 5).join(','))).toEqual([
      '2,NT1,ADD_TRX+ADD_TRX+ADD_TRX,failed,4404',
      '3,NT2,ADD_TRX+ADD_TRX+ADD_TRX,failed,4404',
      '4,NT3,ADD_TRX+ADD_TRX+ADD_TRX,failed,4404',
    ]);
  }, 60_000);

  it('4404 records waiting for a paused users file fail as 4404 once RETRY_LATER_MAX_WAIT_S has passed', async () => {
    const { pipeline, calls, notifier } = run;
    await pipeline.land('echo/transactions_echo_20261124_001.csv', transactionsCsv('ET', ids('EX', 20)));
    await until('the first ADD_TRX calls', () => callsFor(calls, 'ET').length > 0);
    // A users file of the partner lands after it and is paused at once: it stays in flight, sending nothing.
    await pipeline.land('echo/users_echo_20261124_001.csv', usersCsv(ids('EU', 300)));
    const users = await scheduled(pipeline, 'users_echo_20261124_001.csv');
    await controlFiles(pipeline.schedule, { fileId: users.fileId }, 'pause', notifier);

    const transactions = await finished(pipeline, 'transactions_echo_20261124_001.csv');
    expect(transactions).toMatchObject({
      status: 'failed',
      received: 20,
      succeeded: 0,
      failed: 20,
      failures: { '4404': 20 },
    });
    // Each was tried once (ADD); the retry phase waited for the users file, then gave up without a call...
    const transactionCalls = callsFor(calls, 'ET');
    expect(transactionCalls).toHaveLength(2);
    // ... after the retry delay (1 s) and the bound (4 s).
    expect(ms(transactions.finishedAt) - last(transactionCalls).at).toBeGreaterThanOrEqual(4000);
    // The users file is still in flight, paused.
    const still = (await pipeline.schedule.view()).files.find((file) => file.fileId === users.fileId);
    expect(still?.control).toBe('paused');

    await controlFiles(pipeline.schedule, { fileId: users.fileId }, 'cancel', notifier);
    expect(await finished(pipeline, 'users_echo_20261124_001.csv')).toMatchObject({ status: 'cancelled' });
  }, 60_000);
});

describe('fair shares of the budget', () => {
  let run: ScheduledPipeline;
  beforeAll(async () => {
    // Twice the other cases' pace (about 18 calls a second), so files of 100-200 batches (many windows each) fit.
    // A file hands its batches on 10 at a time: a window of 20 lets it refill before its queue runs dry, so the
    // shares follow the windows (with a window of 10, a file's queue empties before each refill).
    run = await startScheduledPipeline({
      PARTNER_WEIGHTS: 'heavy=2',
      CRM_CALLS_PER_MINUTE: '60',
      SEND_WINDOW_BATCHES: '20',
    });
  }, 60_000);
  afterAll(() => run?.close());

  /** Each file's calls while all of them were sending: from the last one's first call to the first one's last. */
  const sharesWhileAllSend = (calls: readonly RecordedCall[], prefixes: readonly string[]) => {
    const per = prefixes.map((prefix) => callsFor(calls, prefix));
    const from = Math.max(...per.map((own) => own[0]!.at));
    const to = Math.min(...per.map((own) => last(own).at));
    const counts = per.map((own) => own.filter((call) => call.at >= from && call.at <= to).length);
    const total = counts.reduce((a, b) => a + b, 0);
    return { total, shares: counts.map((count) => count / total) };
  };

  it('three users files of equal weight landing together share the calls about equally', async () => {
    const { pipeline, calls } = run;
    await Promise.all(
      ['fa', 'fb', 'fc'].map((partner) =>
        pipeline.land(`${partner}/users_${partner}_20261124_001.csv`, usersCsv(ids(partner.toUpperCase(), 1000))),
      ),
    );
    for (const partner of ['fa', 'fb', 'fc']) {
      expect(await finished(pipeline, `users_${partner}_20261124_001.csv`)).toMatchObject({
        status: 'succeeded',
        succeeded: 1000,
      });
    }
    const { total, shares } = sharesWhileAllSend(calls, ['FA', 'FB', 'FC']);
    expect(total).toBeGreaterThanOrEqual(150);
    for (const share of shares) {
      expect(share).toBeGreaterThanOrEqual(0.2);
      expect(share).toBeLessThanOrEqual(0.45);
    }
  }, 60_000);

  it("a partner of weight 2 gets about twice each other file's share", async () => {
    const { pipeline, calls } = run;
    // Twice the records for the partner of weight 2: at twice the share, the three files finish together.
    const sizes = { heavy: 2000, fd: 1000, fe: 1000 };
    await Promise.all(
      Object.entries(sizes).map(([partner, size]) =>
        pipeline.land(`${partner}/users_${partner}_20261124_001.csv`, usersCsv(ids(`W${partner.toUpperCase()}`, size))),
      ),
    );
    for (const partner of Object.keys(sizes)) {
      expect(await finished(pipeline, `users_${partner}_20261124_001.csv`)).toMatchObject({ status: 'succeeded' });
    }
    const { total, shares } = sharesWhileAllSend(calls, ['WHEAVY', 'WFD', 'WFE']);
    expect(total).toBeGreaterThanOrEqual(200);
    const [heavy, ...others] = shares as [number, number, number];
    const ratio = heavy / ((others[0]! + others[1]!) / 2);
    expect(ratio).toBeGreaterThanOrEqual(1.5);
    expect(ratio).toBeLessThanOrEqual(2.6);
  }, 60_000);

  it('a small file landing during a backfill of the same partner finishes long before it', async () => {
    const { pipeline, calls } = run;
    await pipeline.land('fbig/users_fbig_20261124_001.csv', usersCsv(ids('BG', 2000)));
    await until('the big file under way', () => callsFor(calls, 'BG').length >= 20);
    await pipeline.land('fbig/users_fbig_20261124_002.csv', usersCsv(ids('SM', 30)));
    const small = await finished(pipeline, 'users_fbig_20261124_002.csv');
    const big = await finished(pipeline, 'users_fbig_20261124_001.csv');
    expect(small).toMatchObject({ status: 'succeeded', succeeded: 30 });
    expect(big).toMatchObject({ status: 'succeeded', succeeded: 2000 });
    const bigCalls = callsFor(calls, 'BG');
    const bigSpan = last(bigCalls).at - bigCalls[0]!.at;
    // Its 3 calls waited behind the big file's window (20 batches), not behind its 180 remaining batches.
    expect(last(callsFor(calls, 'SM')).at).toBeLessThan(last(bigCalls).at - 3000);
    expect(ms(small.finishedAt) - ms(small.landedAt)).toBeLessThan(0.3 * bigSpan);
  }, 60_000);
});

async function reportText(run: ScheduledPipeline, key: string): Promise<string> {
  const object = await run.pipeline.s3
    .client()
    .send(new GetObjectCommand({ Bucket: LOCAL_NAMES.archiveBucket, Key: key }));
  return object.Body!.transformToString();
}
