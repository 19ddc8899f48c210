import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CrmClient,
  idempotencyKey,
  type AttemptReport,
  type CrmCall,
  type CrmClientOptions,
} from '../../lambdas/core/crm/crm-client';
import type { CrmOperation } from '../../lambdas/core/crm/response-policy';
import { startCrmSimulator, type CrmSimulator } from '../../lambdas/local/crm-simulator/crm-simulator';
import { customer, transaction } from '../fixtures/crm-records';

const SHA = 'a'.repeat(64);
const call = (operation: CrmOperation, records: unknown[], batch = 0, phase = 'ADD'): CrmCall => ({
  operation,
  idempotencyKey: idempotencyKey(SHA, phase, batch),
  body: JSON.stringify({ records }),
  recordCount: records.length,
});

describe('CrmClient against the CRM simulator (real HTTP)', () => {
  let sim: CrmSimulator;
  let attempts: AttemptReport[];
  const sleeps: number[] = [];
  const client = (options: Partial<CrmClientOptions> = {}) =>
    new CrmClient({
      baseUrl: sim.url,
      token: sim.token,
      timeoutMs: 2000,
      retryAttempts: 4,
      retryBaseDelayMs: 10,
      retryMaxDelayMs: 50,
      onAttempt: (report) => attempts.push(report),
      sleep: async (ms) => {
        sleeps.push(ms);
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
      ...options,
    });

  beforeEach(async () => {
    attempts = [];
    sleeps.length = 0;
    sim = await startCrmSimulator({ customers: [customer('EXISTS'), customer('OTHER', 'taken@example.com')] });
  });
  afterEach(() => sim.close());

  it('ADD_CUST: created -> succeeded, existing -> retry with UPD_CUST, invalid data (3217) -> failed', async () => {
    const result = await client().send(
      call('ADD_CUST', [customer('NEW'), customer('EXISTS'), customer('BAD', 'x@invalid.example')]),
    );
    expect(result).toMatchObject({ kind: 'answered', attempts: 1, replayed: false });
    expect(result.kind === 'answered' && result.decisions.map((d) => [d.action, d.reason])).toEqual([
      ['succeeded', undefined],
      ['retry-with-update', '8006'],
      ['failed', '3217'],
    ]);
  });

  it('UPD_CUST: updated -> succeeded, CONFLICTING_PROFILE (a 200 with status ERROR) -> failed, 3217 -> failed', async () => {
    const result = await client().send(
      call(
        'UPD_CUST',
        [
          customer('EXISTS', 'new@example.com'),
          customer('EXISTS', 'taken@example.com'),
          customer('EXISTS', 'y@invalid.example'),
        ],
        0,
        'UPD',
      ),
    );
    expect(result.kind === 'answered' && result.decisions.map((d) => [d.action, d.code, d.reason])).toEqual([
      ['succeeded', 200, undefined],
      ['failed', 200, 'CONFLICTING_PROFILE'],
      ['failed', 3217, '3217'],
    ]);
  });

  it('ADD_TRX: created -> succeeded, incomplete (624) -> failed, customer not found (4404) -> retry later', async () => {
    const { amount: _amount, ...incomplete } = transaction('T2', 'EXISTS');
    const result = await client().send(
      call('ADD_TRX', [transaction('T1', 'EXISTS'), incomplete, transaction('T3', 'NOBODY')]),
    );
    expect(result.kind === 'answered' && result.decisions.map((d) => [d.action, d.reason])).toEqual([
      ['succeeded', undefined],
      ['failed', '624'],
      ['retry-later', '4404'],
    ]);
  });

  it.each([
    ['more than 100 records', Array.from({ length: 101 }, (_, i) => customer(`C${i}`))],
    ['no records', []],
  ])('400 for %s: the whole call is rejected (every record fails), not retried', async (_case, records) => {
    const result = await client().send({ ...call('ADD_CUST', records), recordCount: Math.max(records.length, 1) });
    expect(result).toMatchObject({ kind: 'rejected', status: 400, attempts: 1 });
  });

  it('401 opens the circuit: a named error, and no further call reaches the CRM', async () => {
    const wrong = client({ token: 'wrong' });
    await expect(wrong.send(call('ADD_CUST', [customer('A')]))).rejects.toMatchObject({
      name: 'Crm.AuthRejected',
      status: 401,
    });
    await expect(wrong.send(call('ADD_CUST', [customer('B')], 1))).rejects.toMatchObject({ name: 'Crm.AuthRejected' });
    expect(wrong.isCircuitOpen).toBe(true);
    expect(sim.stats()).toMatchObject({ unauthorized: 1, recordsApplied: 0 });
  });

  it('409 when a key is reused with another body: Crm.Conflict, records stay pending', async () => {
    await client().send(call('ADD_CUST', [customer('A')], 7));
    await expect(client().send(call('ADD_CUST', [customer('B')], 7))).rejects.toMatchObject({
      name: 'Crm.Conflict',
      status: 409,
    });
  });

  it('429: waits at least Retry-After, then succeeds with the same key', async () => {
    await sim.close();
    sim = await startCrmSimulator({ callsPerWindow: 2, windowMs: 1000 });
    const c = client();
    await c.send(call('ADD_CUST', [customer('A')], 0));
    await c.send(call('ADD_CUST', [customer('B')], 1));
    const started = Date.now();
    const result = await c.send(call('ADD_CUST', [customer('C')], 2));
    expect(result.kind).toBe('answered');
    expect(attempts.map((a) => a.status)).toEqual([200, 200, 429, 200]);
    expect(sleeps[0]).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(sim.stats()).toMatchObject({ throttled: 1, customersCreated: 3 });
  });

  it('gives up on a 429 storm with Crm.Throttled after the bounded attempts, records pending', async () => {
    sim.setFaults({ throttleUntilMs: Date.now() + 60_000 });
    const c = client({ retryAttempts: 1, sleep: async (ms) => void sleeps.push(ms) });
    await expect(c.send(call('ADD_CUST', [customer('A')]))).rejects.toMatchObject({ name: 'Crm.Throttled' });
    expect(sleeps[0]).toBeGreaterThanOrEqual(59_000);
    expect(sim.stats().recordsApplied).toBe(0);
  });

  it('retries 5xx answers with back-off under the same key until answered', async () => {
    sim.setFaults({ serverErrorRate: 0.6 });
    for (let batch = 0; batch < 10; batch++) {
      const result = await client({ retryAttempts: 10 }).send(
        call('ADD_TRX', [transaction(`T${batch}`, 'EXISTS')], batch),
      );
      expect(result.kind).toBe('answered');
    }
    const stats = sim.stats();
    expect(stats.serverErrorsServed).toBeGreaterThan(0);
    expect(stats.transactionsCreated).toBe(10);
    expect(sleeps.every((ms) => ms >= 0 && ms <= 50)).toBe(true);
  });

  it('a dropped answer is retried and replayed: no transaction is applied twice', async () => {
    sim.setFaults({ dropRate: 0.5 });
    for (let batch = 0; batch < 20; batch++) {
      const records = [transaction(`T${batch}a`, 'EXISTS'), transaction(`T${batch}b`, 'EXISTS')];
      const result = await client({ retryAttempts: 10 }).send(call('ADD_TRX', records, batch));
      expect(result.kind === 'answered' && result.decisions.every((d) => d.action === 'succeeded')).toBe(true);
    }
    const stats = sim.stats();
    expect(stats.answersDropped).toBeGreaterThan(3);
    expect(stats.replays).toBeGreaterThan(0);
    expect(attempts.some((a) => a.replayed)).toBe(true);
    expect(stats.transactionsCreated).toBe(40);
    expect(stats.transactionsAppliedMoreThanOnce).toBe(0);
  });

  it('a timeout is transient: after the attempts, Crm.Unavailable; a later retry with the same key is replayed, not applied again', async () => {
    sim.setFaults({ latencyMs: 300 });
    const slow = client({ timeoutMs: 100, retryAttempts: 1 });
    await expect(slow.send(call('ADD_TRX', [transaction('T1', 'EXISTS')]))).rejects.toMatchObject({
      name: 'Crm.Unavailable',
      message: expect.stringContaining('no answer within 100 ms'),
    });
    expect(attempts.map((a) => a.status)).toEqual(['timeout', 'timeout']);
    await new Promise((resolve) => setTimeout(resolve, 400));
    sim.setFaults({ latencyMs: 0 });
    const result = await client().send(call('ADD_TRX', [transaction('T1', 'EXISTS')]));
    expect(result).toMatchObject({ kind: 'answered', replayed: true });
    expect(sim.transactionCounts().get('T1')).toBe(1);
  });

  it('calls the rate limiter before every attempt, retries included', async () => {
    sim.setFaults({ serverErrorRate: 1 });
    let acquired = 0;
    const c = client({ retryAttempts: 2, acquire: async () => void acquired++ });
    await expect(c.send(call('ADD_CUST', [customer('A')]))).rejects.toMatchObject({ name: 'Crm.Unavailable' });
    expect(acquired).toBe(3);
  });
});

describe('CrmClient against a CRM that answers out of contract', () => {
  it('treats a 200 whose results do not match the request as transient, and retries', async () => {
    let calls = 0;
    const server = createServer((request, response) => {
      calls++;
      request.resume();
      request.on('end', () => {
        const results =
          calls === 1
            ? [{ index: 0, code: 200, status: 'OK' }]
            : [0, 1].map((index) => ({ index, code: 200, status: 'OK' }));
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const c = new CrmClient({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 't',
        timeoutMs: 1000,
        retryAttempts: 2,
        retryBaseDelayMs: 1,
        retryMaxDelayMs: 1,
      });
      const result = await c.send(call('ADD_CUST', [customer('A'), customer('B')]));
      expect(result).toMatchObject({ kind: 'answered', attempts: 2 });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('idempotencyKey', () => {
  it('is the same for the same file, phase and batch, and valid for the CRM', () => {
    expect(idempotencyKey(SHA, 'RETRY1', 12)).toBe(`${SHA}:RETRY1:12`);
    expect(() => idempotencyKey(SHA, 'bad phase', 1)).toThrow(/not a valid Idempotency-Key/);
  });
});
