import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import {
  FileDetailSchema,
  FileListSchema,
  FileRecordsSchema,
  FileViewSchema,
  RecordLookupSchema,
  StatsSchema,
  UploadSchema,
  ValidationSchema,
} from '../../lambdas/ops-api/contract';
import { errorOf, opsClient } from '../support/ops-client';
import { alive, finished, sftpPut, startIngest, upConnection, type UpConnection } from './cli';

const USERS_NAME = 'users_acme_20261124_001.csv';
const TRX_NAME = 'transactions_beta_20261124_001.csv';
const USERS = 300;
/** Lines (from 2) whose email fails validation, and whose email the CRM refuses with 3217. */
const INVALID = new Set([5, 9, 40]);
const REFUSED = new Set([12, 77]);

const usersFile = () =>
  [
    'customer_id,first_name,last_name,email,phone,country,created_at',
    ...Array.from({ length: USERS }, (_, i) => {
      const line = i + 2;
      const email = INVALID.has(line)
        ? 'not-an-email'
        : REFUSED.has(line)
          ? `u${i}@invalid.example`
          : `u${i}@example.com`;
      return `A${i},Ada,Alder,${email},,GB,2026-01-01T00:00:00Z`;
    }),
  ].join('\n');

const transactionsFile = () =>
  [
    'transaction_id,customer_id,amount,currency,occurred_at,type,merchant',
    ...Array.from({ length: 40 }, (_, i) => `B${i},A${i + 100},12.50,EUR,2026-01-02T00:00:00Z,purchase,Shop`),
  ].join('\n');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The operations API of ../shared/ops-api.md over real HTTP against `ingest up`'s server: every resource, every
 * error status, pagination and auth, as an independent client calls it.
 */
describe('the operations API served by ingest up', () => {
  const reportDir = mkdtempSync(join(tmpdir(), 'ops-api-'));
  let child: ReturnType<typeof startIngest>;
  let exited: ReturnType<typeof finished>;
  let connection: UpConnection;
  let api: ReturnType<typeof opsClient>;

  beforeAll(async () => {
    child = startIngest([
      'up',
      '--json',
      '--partner',
      'acme',
      '--partner',
      'beta',
      '--report-dir',
      reportDir,
      '--calls-per-minute',
      '200',
      '--batch-size',
      '10',
      '--send-window',
      '10',
      '--ordering-window',
      '0',
      // A 4404 fails at once: the retry test sends it again by code once the customers exist.
      '--retry-later-attempts',
      '0',
    ]);
    exited = finished(child);
    connection = await upConnection(child);
    api = opsClient(connection.api.url, connection.api.token);
  }, 60_000);

  afterAll(async () => {
    if (child && alive(child.pid!)) {
      child.kill('SIGINT');
      await exited;
    }
    rmSync(reportDir, { recursive: true, force: true });
  });

  const view = async (fileId: string) => {
    const answer = await api.get(`/v1/files/${fileId}`);
    expect(answer.status).toBe(200);
    return FileDetailSchema.parse(answer.body);
  };
  const until = async <T>(look: () => Promise<T | undefined>, what: string, timeoutMs = 90_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await look();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(250);
    }
  };
  const listed = async (query = '') => {
    const answer = await api.get(`/v1/files${query}`);
    expect(answer.status).toBe(200);
    return FileListSchema.parse(answer.body);
  };
  const finishedView = (fileId: string) =>
    until(async () => {
      const found = await view(fileId);
      // Finished, and its reports copied into the report directory (just after its summary is kept).
      return found.finishedAt && existsSync(found.reports.summary as string) ? found : undefined;
    }, `file ${fileId} to finish`);

  it('answers 401 without the token or with a wrong one, and serves the dashboard page without one', async () => {
    const none = await opsClient(connection.api.url, undefined).get('/v1/files');
    expect(none.status).toBe(401);
    expect(errorOf(none)).toEqual({ code: 'Unauthorized', message: expect.stringContaining('Bearer') });
    const wrong = await opsClient(connection.api.url, 'not-the-token').get('/v1/stats');
    expect(wrong.status).toBe(401);
    expect(errorOf(wrong).code).toBe('Unauthorized');
    const page = await opsClient(connection.api.url, undefined).get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('answers 404 for an unknown route or method, 400 for a bad parameter, naming it', async () => {
    expect(errorOf(await api.get('/v1/nothing'))).toEqual({ code: 'NotFound', message: expect.any(String) });
    expect((await api.get('/v1/uploads')).status).toBe(404);
    for (const [query, parameter] of [
      ['?limit=0', 'limit'],
      ['?limit=1001', 'limit'],
      ['?limit=ten', 'limit'],
      ['?status=done', 'status'],
      ['?kind=orders', 'kind'],
      ['?since=yesterday', 'since'],
      ['?cursor=bm90LWEtY3Vyc29y', 'cursor'],
      [`?cursor=${Buffer.from(JSON.stringify({ pk: 'x', catalogAt: 'y' })).toString('base64url')}`, 'cursor'],
    ] as const) {
      const answer = await api.get(`/v1/files${query}`);
      expect(answer.status).toBe(400);
      expect(errorOf(answer)).toEqual({
        code: 'BadRequest',
        message: expect.stringMatching(new RegExp(`^${parameter}:`)),
      });
    }
    const badId = await api.get('/v1/files/not-a-sha');
    expect(badId.status).toBe(400);
    expect(errorOf(badId).message).toMatch(/^fileId:/);
    const unknown = await api.get(`/v1/files/${'0'.repeat(64)}`);
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown)).toEqual({ code: 'NotFound', message: `no file ${'0'.repeat(64)}` });
    expect((await api.post(`/v1/files/${'0'.repeat(64)}/pause`)).status).toBe(404);
    expect(errorOf(await api.get('/v1/stats?minutes=0')).message).toMatch(/^minutes:/);
  });

  it('shows a file while it runs, pauses and resumes it, and then equals its summary.json', async () => {
    await sftpPut(connection, 'acme', USERS_NAME, usersFile());

    // Running: its counts so far add up, and some but not all are answered.
    const running = await until(async () => {
      const file = (await listed()).files.find((candidate) => candidate.name === USERS_NAME);
      // The ETA is written with the file's progress, every 2 s while it sends.
      return file && file.status === 'running' && file.progress > 0 && file.etaSeconds !== null ? file : undefined;
    }, 'the users file to run');
    expect(running).toMatchObject({ partner: 'acme', kind: 'users', phase: 'ADD', finishedAt: null });
    expect(running.received).toBe(running.succeeded + running.failed + running.pending);
    expect(running.progress).toBeLessThan(1);
    expect(running.failures.VALIDATION).toBe(INVALID.size);
    expect(running.startedAt).not.toBeNull();
    expect(running.etaSeconds).toEqual(expect.any(Number));

    // Its records are listed once its reports are written.
    const early = await api.get(`/v1/files/${running.fileId}/records`);
    expect(early.status).toBe(409);
    expect(errorOf(early).code).toBe('Conflict');

    // Pause: 202 with the view; no more answers come while paused; resume.
    const paused = await api.post(`/v1/files/${running.fileId}/pause`);
    expect(paused.status).toBe(202);
    expect(FileViewSchema.parse(paused.body)).toMatchObject({ status: 'paused', fileId: running.fileId });
    await sleep(3000);
    const held = await view(running.fileId);
    await sleep(3000);
    const stillHeld = await view(running.fileId);
    expect(stillHeld.status).toBe('paused');
    expect(stillHeld.succeeded + stillHeld.failed).toBe(held.succeeded + held.failed);
    const resumed = await api.post(`/v1/files/${running.fileId}/resume`);
    expect(resumed.status).toBe(202);
    expect(FileViewSchema.parse(resumed.body).status).not.toBe('paused');

    const done = await finishedView(running.fileId);
    const summary = JSON.parse(readFileSync(join(reportDir, 'acme', USERS_NAME, 'summary.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(done).toMatchObject({
      status: summary.status,
      received: summary.received,
      succeeded: summary.succeeded,
      failed: summary.failed,
      failures: summary.failures,
      pending: 0,
      progress: 1,
      etaSeconds: null,
      landedAt: summary.landedAt,
      startedAt: summary.startedAt,
      finishedAt: summary.finishedAt,
      calls: { made: (summary.calls as { made: number }).made, remaining: 0 },
    });
    expect(done).toMatchObject({ received: USERS, failed: INVALID.size + REFUSED.size, status: 'partial' });
    expect(done.failures).toEqual({ VALIDATION: INVALID.size, '3217': REFUSED.size });
    for (const path of [done.reports.summary, done.reports.results, done.reports.failedRecords]) {
      expect(existsSync(path as string)).toBe(true);
    }
    expect(done.phases.map((phase) => phase.phase)).toEqual(['ADD']);
    expect(done.phases[0]).toMatchObject({ batches: expect.any(Number) });
    expect(done.phases[0]!.answered).toBe(done.phases[0]!.batches);
    expect(done.phases.reduce((sum, phase) => sum + phase.calls, 0)).toBe(done.calls.made);

    // A finished file takes no control.
    const late = await api.post(`/v1/files/${running.fileId}/pause`);
    expect(late.status).toBe(409);
    expect(errorOf(late).message).toContain('finished');
  }, 180_000);

  it("pages a finished file's records in line order, filtered by outcome and code", async () => {
    const [file] = (await listed('?partner=acme&limit=1')).files;
    const all: z.infer<typeof FileRecordsSchema>['records'] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const answer = await api.get(`/v1/files/${file!.fileId}/records?limit=70${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      const page = FileRecordsSchema.parse(answer.body);
      all.push(...page.records);
      cursor = page.next;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(USERS / 70));
    expect(all.map((record) => record.line)).toEqual(Array.from({ length: USERS }, (_, i) => i + 2));
    expect(all[0]).toEqual({
      line: 2,
      recordId: 'A0',
      operations: ['ADD_CUST'],
      outcome: 'succeeded',
      code: '200',
      error: null,
      attempts: 1,
    });

    const failed = FileRecordsSchema.parse((await api.get(`/v1/files/${file!.fileId}/records?outcome=failed`)).body);
    expect(failed.records.map((record) => record.line)).toEqual([...INVALID, ...REFUSED].sort((a, b) => a - b));
    expect(failed.next).toBeNull();
    const validation = FileRecordsSchema.parse(
      (await api.get(`/v1/files/${file!.fileId}/records?outcome=failed&code=VALIDATION`)).body,
    );
    expect(validation.records).toHaveLength(INVALID.size);
    expect(validation.records[0]).toMatchObject({ code: 'VALIDATION', operations: [], attempts: 0 });
    expect(validation.records[0]!.error).toMatch(/^VALIDATION: email/);
    const refused = FileRecordsSchema.parse((await api.get(`/v1/files/${file!.fileId}/records?code=3217`)).body);
    expect(refused.records.map((record) => record.line)).toEqual([...REFUSED]);

    const bad = await api.get(`/v1/files/${file!.fileId}/records?outcome=pending`);
    expect(bad.status).toBe(400);
    expect(errorOf(bad).message).toMatch(/^outcome:/);
    expect((await api.get(`/v1/files/${file!.fileId}/records?cursor=xyz`)).status).toBe(400);
  });

  it('gives a pre-signed upload that is processed like an SFTP upload; lists files newest first, filtered, by page', async () => {
    const refused = await api.post('/v1/uploads', { partner: 'beta', name: '../escape.csv' });
    expect(refused.status).toBe(400);
    expect(errorOf(refused).message).toMatch(/^name:/);
    expect((await api.post('/v1/uploads')).status).toBe(400);

    const answer = await api.post('/v1/uploads', { partner: 'beta', name: TRX_NAME });
    expect(answer.status).toBe(200);
    const upload = UploadSchema.parse(answer.body);
    expect(Date.parse(upload.expiresAt)).toBeGreaterThan(Date.now());
    const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: transactionsFile() });
    expect(put.status).toBe(200);
    const transactions = await until(async () => {
      const [file] = (await listed('?kind=transactions')).files;
      return file?.finishedAt ? file : undefined;
    }, 'the uploaded transactions file to finish');
    expect(transactions).toMatchObject({ name: TRX_NAME, partner: 'beta', status: 'succeeded', succeeded: 40 });
    // Copied into the report directory once finished, as an SFTP upload's are.
    await finishedView(transactions.fileId);
    expect(transactions.reports.summary).toBe(join(reportDir, 'beta', TRX_NAME, 'summary.json'));

    // Newest first; a page at a time; filters.
    const everything = await listed();
    expect(everything.files.map((file) => file.name)).toEqual([TRX_NAME, USERS_NAME]);
    expect(everything.next).toBeNull();
    const first = await listed('?limit=1');
    expect(first.files.map((file) => file.name)).toEqual([TRX_NAME]);
    expect(first.next).not.toBeNull();
    const second = await listed(`?limit=1&cursor=${first.next}`);
    expect(second.files.map((file) => file.name)).toEqual([USERS_NAME]);
    expect(second.next).toBeNull();
    // The last page says so (`next` null), filtered or not.
    expect(await listed('?partner=acme&limit=1')).toMatchObject({ files: [{ name: USERS_NAME }], next: null });
    expect((await listed('?partner=acme')).files.map((file) => file.name)).toEqual([USERS_NAME]);
    expect((await listed('?status=partial')).files.map((file) => file.name)).toEqual([USERS_NAME]);
    expect((await listed('?status=running')).files).toEqual([]);
    expect((await listed('?since=2999-01-01T00:00:00Z')).files).toEqual([]);
    expect((await listed(`?since=${encodeURIComponent(transactions.landedAt)}`)).files.map((f) => f.name)).toEqual([
      TRX_NAME,
    ]);
  }, 120_000);

  it('finds a customer or transaction id in every file it was in', async () => {
    const [users] = (await listed('?partner=acme')).files;
    const [transactions] = (await listed('?partner=beta')).files;
    const lookup = async (path: string) => {
      const answer = await api.get(path);
      expect(answer.status).toBe(200);
      return RecordLookupSchema.parse(answer.body).records;
    };
    // A10 is on line 12, which the CRM refused with 3217.
    expect(await lookup('/v1/records/A10?kind=users')).toEqual([
      {
        fileId: users!.fileId,
        name: USERS_NAME,
        partner: 'acme',
        line: 12,
        outcome: 'failed',
        code: '3217',
        error: expect.any(String),
        finishedAt: users!.finishedAt,
      },
    ]);
    expect(await lookup('/v1/records/A4')).toEqual([
      expect.objectContaining({ line: 6, outcome: 'succeeded', code: '200', error: null }),
    ]);
    expect(await lookup('/v1/records/B3?kind=transactions')).toEqual([
      expect.objectContaining({ fileId: transactions!.fileId, name: TRX_NAME, partner: 'beta', line: 5 }),
    ]);
    expect(await lookup('/v1/records/A10?partner=beta')).toEqual([]);
    expect(await lookup('/v1/records/NOBODY')).toEqual([]);
    const bad = await api.get('/v1/records/A10?kind=orders');
    expect(bad.status).toBe(400);
    expect(errorOf(bad).message).toMatch(/^kind:/);
  });

  it("sends a finished file's 4404 records again once their customers exist, and rewrites its reports", async () => {
    const upload = (name: string, text: string) => sftpPut(connection, 'beta', name, text);
    const name = 'transactions_beta_20261124_002.csv';
    await upload(
      name,
      [
        'transaction_id,customer_id,amount,currency,occurred_at,type,merchant',
        ...Array.from({ length: 20 }, (_, i) => `G${i},NEW${i},3.00,EUR,2026-01-02T00:00:00Z,purchase,Shop`),
        'G20,A1,4.00,EUR,2026-01-02T00:00:00Z,purchase,Shop',
      ].join('\n'),
    );
    const first = await until(async () => {
      const [file] = (await listed('?partner=beta&kind=transactions&limit=1')).files;
      return file?.name === name && file.finishedAt ? file : undefined;
    }, 'the transactions file with unknown customers');
    await finishedView(first.fileId);
    expect(first).toMatchObject({ status: 'partial', succeeded: 1, failed: 20, failures: { '4404': 20 } });

    const validation = await api.post(`/v1/files/${first.fileId}/retry`, { codes: ['VALIDATION'] });
    expect(validation.status).toBe(400);
    expect(errorOf(validation).message).toContain('VALIDATION');
    const none = await api.post(`/v1/files/${first.fileId}/retry`, { codes: ['624'] });
    expect(none.status).toBe(409);

    // The customers arrive; the 4404 records go again, as a new phase with new idempotency keys.
    await upload(
      'users_beta_20261124_003.csv',
      [
        'customer_id,first_name,last_name,email,phone,country,created_at',
        ...Array.from({ length: 20 }, (_, i) => `NEW${i},Ada,Alder,new${i}@example.com,,GB,2026-01-01T00:00:00Z`),
      ].join('\n'),
    );
    await until(async () => {
      const [file] = (await listed('?partner=beta&kind=users&limit=1')).files;
      return file?.finishedAt ? file : undefined;
    }, 'the users file');
    const retried = await api.post(`/v1/files/${first.fileId}/retry`, { codes: ['4404'] });
    expect(retried.status).toBe(202);
    // Queued, its records pending as the summary counts them: the lines are picked by the round's execution.
    expect(FileViewSchema.parse(retried.body)).toMatchObject({ fileId: first.fileId, finishedAt: null, pending: 20 });
    expect(FileViewSchema.parse(retried.body).status).not.toBe('partial');
    const again = await api.post(`/v1/files/${first.fileId}/retry`, { codes: ['4404'] });
    expect(again.status).toBe(409);

    const done = await until(async () => {
      const file = await view(first.fileId);
      return file.status === 'succeeded' && existsSync(file.reports.summary as string) ? file : undefined;
    }, 'the retried file to finish');
    expect(done).toMatchObject({ received: 21, succeeded: 21, failed: 0, failures: {}, pending: 0 });
    expect(done.phases.map((phase) => phase.phase)).toEqual(['ADD', 'REDO1']);
    const summary = JSON.parse(readFileSync(done.reports.summary as string, 'utf8')) as { status: string };
    expect(summary.status).toBe('succeeded');
    const records = FileRecordsSchema.parse((await api.get(`/v1/files/${first.fileId}/records`)).body).records;
    expect(records[0]).toMatchObject({ recordId: 'G0', operations: ['ADD_TRX', 'ADD_TRX'], outcome: 'succeeded' });
    // Nothing that had succeeded was sent again.
    expect(records.find((record) => record.recordId === 'G20')).toMatchObject({ operations: ['ADD_TRX'], attempts: 1 });
  }, 120_000);

  it('validates a file with the pipeline rules and stores nothing; refuses a body over 5 MB with 413', async () => {
    const before = await listed();
    const answer = await api.postBytes(
      `/v1/validate?name=${USERS_NAME.replace('001', '002')}`,
      Buffer.from(usersFile()),
    );
    expect(answer.status).toBe(200);
    expect(ValidationSchema.parse(answer.body)).toMatchObject({
      kind: 'users',
      format: 'csv',
      received: USERS,
      valid: USERS - INVALID.size,
      invalid: INVALID.size,
      failures: { VALIDATION: INVALID.size },
    });
    const unknown = await api.postBytes('/v1/validate?name=orders.csv', Buffer.from('a,b\n1,2\n'));
    expect(unknown.status).toBe(200);
    expect(ValidationSchema.parse(unknown.body)).toMatchObject({ kind: 'unknown', error: expect.any(String) });
    const missingName = await api.postBytes('/v1/validate', Buffer.from('x'));
    expect(missingName.status).toBe(400);
    expect(errorOf(missingName).message).toMatch(/^name:/);
    const large = await api.postBytes(`/v1/validate?name=${USERS_NAME}`, Buffer.alloc(5 * 1024 * 1024 + 1, 0x61));
    expect(large.status).toBe(413);
    expect(errorOf(large).code).toBe('PayloadTooLarge');
    expect((await listed()).files).toEqual(before.files);
  });

  it('gives per-minute stats from the handlers’ metrics', async () => {
    const answer = await api.get('/v1/stats?minutes=10');
    expect(answer.status).toBe(200);
    const stats = StatsSchema.parse(answer.body);
    expect(stats.limitPerMinute).toBe(200);
    expect(stats.callsPerMinute).toHaveLength(10);
    const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
    const views = (await listed()).files;
    expect(sum(stats.callsPerMinute)).toBe(sum(views.map((file) => file.calls.made)));
    expect(sum(stats.recordsPerMinute.succeeded)).toBe(sum(views.map((file) => file.succeeded)));
    expect(sum(stats.recordsPerMinute.failed)).toBe(REFUSED.size);
    expect(stats.errorsByCode).toEqual({ '3217': REFUSED.size });
    expect(stats.latencyMs.p50).toEqual(expect.any(Number));
    expect(stats.latencyMs.p99! >= stats.latencyMs.p50!).toBe(true);
    expect(stats.queue).toEqual({ waiting: 0, inFlight: 0 });
    expect(stats.files).toEqual({ running: 0, waiting: 0, paused: 0 });
  });
});
