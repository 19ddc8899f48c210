import { PutObjectCommand } from '@aws-sdk/client-s3';
import { awsClients } from '../../lambdas/adapters/aws/clients';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbRecordIndex } from '../../lambdas/adapters/aws/dynamodb-record-index';
import { S3ObjectStore } from '../../lambdas/adapters/aws/s3-object-store';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import type { RecordIndexWriter } from '../../lambdas/core/ledger/record-index';
import { lookupRecord, type RecordSighting } from '../../lambdas/core/operations/record-lookup';
import {
  finaliseFileSlice,
  type FinaliseCheckpoint,
  type FinalSummary,
} from '../../lambdas/core/workflow/finalise-file';
import { finaliseFileContract } from '../../lambdas/finalise-file/contract';
import { awsDependencies } from '../../lambdas/finalise-file/make-handler';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { embeddedServicesClients } from '../../lambdas/local/wiring/local-pipeline';
import { answerPhases, crm } from '../support/crm-outcomes';
import { finaliseDeps } from '../unit/files/in-memory-pipeline';

/**
 * The record lookup index, written by finalise and read by the lookup, on the embedded S3 and the ledger on
 * dynalite: real files, every phase answered by `crm` (test/support/crm-outcomes.ts), finalised with the
 * adapters the function is wired with, then looked up by customer and transaction id.
 */
function partnerFile(kind: FileKind, count: number, firstName = 'Ada'): string {
  const rows =
    kind === 'users'
      ? ['customer_id,first_name,last_name,email,phone,country,created_at']
      : ['transaction_id,customer_id,amount,currency,occurred_at'];
  for (let i = 0; i < count; i++) {
    const bad = crm(kind, i, 0).length === 0;
    rows.push(
      kind === 'users'
        ? `C${i},${firstName},Alder,${bad ? 'no-email' : `u${i}@example.com`},,GB,2026-01-01T00:00:00Z`
        : `T${i},C${i},1.00,${bad ? 'XXX' : 'EUR'},2026-01-01T00:00:00Z`,
    );
  }
  return `${rows.join('\n')}\n`;
}

describe('record lookup index: finalise writes it, the lookup reads it (embedded S3, ledger on dynalite)', () => {
  let s3: LocalS3;
  let db: LocalDynamoDb;
  /** The index as the finalise function is wired (awsDependencies), on the ledger table. */
  let wired: RecordIndexWriter;
  let index: DynamoDbRecordIndex;
  const summaries = new Map<string, FinalSummary>();

  beforeAll(async () => {
    [s3, db] = await Promise.all([startLocalS3(['landing', 'landing2', 'archive']), startLocalDynamoDb()]);
    await Promise.all([db.createTable('ledger', TABLES.ledger), db.createTable('sliced', TABLES.ledger)]);
    const environment = finaliseFileContract.environment.read({
      LEDGER_TABLE_NAME: 'ledger',
      ARCHIVE_BUCKET_NAME: 'archive',
      FAILED_BUCKET_NAME: 'archive',
    });
    const clients = awsClients(embeddedServicesClients({ s3: s3.endpoint, dynamodb: db.endpoint }));
    wired = awsDependencies(environment, { clients }).recordIndex as RecordIndexWriter;
    index = new DynamoDbRecordIndex(db.client(), 'ledger');
  });
  afterAll(() => Promise.all([s3.close(), db.close()]));

  /** A file landed, its phases answered into the ledger; finalised by `finalise` (one run, or slices). */
  const landed = async (bucket: string, key: string, kind: FileKind, text: string) => {
    const bytes = Buffer.from(text);
    await s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const fileId = await answerPhases(
      new DynamoDbCallAnswers(db.client(), 'ledger'),
      async function* () {
        yield bytes;
      },
      key,
      kind,
    );
    return { file: { bucket, key }, kind, fileId, format: 'csv', retryPhases: kind === 'users' ? 0 : 2 } as const;
  };

  const finaliseOnce = async (finished: Awaited<ReturnType<typeof landed>>, writer: RecordIndexWriter) => {
    const deps = { ...finaliseDeps(new S3ObjectStore(s3.client()), new DynamoDbCallAnswers(db.client(), 'ledger')) };
    const slice = await finaliseFileSlice(finished, { ...deps, recordIndex: writer });
    if (!slice.done) throw new Error('one run stopped');
    summaries.set(finished.fileId, slice.summary);
    return slice.summary;
  };

  const finishedAt = (fileId: string) => Promise.resolve(summaries.get(fileId)?.finishedAt);
  const lookup = (recordId: string, query: { kind?: FileKind; partner?: string } = {}) =>
    lookupRecord({ index, finishedAt }, { recordId, ...query }).then((answer) => answer.records);

  let acme: FinalSummary;
  let beta: FinalSummary;

  it('finds a succeeded record, a failed one with its code and error, a VALIDATION one, and misses', async () => {
    acme = await finaliseOnce(
      await landed('landing', 'users/acme/users_acme_20261124.csv', 'users', partnerFile('users', 3000)),
      wired,
    );
    const where = { fileId: acme.sha256, name: 'users_acme_20261124.csv', partner: 'acme' };
    const finished = { finishedAt: acme.finishedAt };
    expect(await lookup('C2', { kind: 'users' })).toEqual([
      { ...where, line: 4, outcome: 'succeeded', code: '200', error: null, ...finished },
    ]);
    expect(await lookup('C1', { kind: 'users' })).toEqual([
      { ...where, line: 3, outcome: 'failed', code: '3217', error: 'INVALID_DATA', ...finished },
    ]);
    expect(await lookup('C5', { kind: 'users' })).toEqual([
      {
        ...where,
        line: 7,
        outcome: 'failed',
        code: 'VALIDATION',
        error: 'VALIDATION: email: an email address',
        ...finished,
      },
    ]);
    // 8006 in ADD, then the UPD phase's answer decides.
    expect(await lookup('C0', { kind: 'users' })).toEqual([
      { ...where, line: 2, outcome: 'failed', code: 'CONFLICTING_PROFILE', error: 'CONFLICTING_PROFILE', ...finished },
    ]);
    expect(await lookup('C3', { kind: 'users' })).toMatchObject([{ line: 5, outcome: 'succeeded' }]);
    expect(await lookup('C2999', { kind: 'users' })).toMatchObject([{ line: 3001 }]);
    // A miss, an id that only starts like one, and a customer id asked of transactions files: nothing.
    expect(await lookup('C-404', { kind: 'users' })).toEqual([]);
    expect(await lookup('C29999', { kind: 'users' })).toEqual([]);
    expect(await lookup('C2', { kind: 'transactions' })).toEqual([]);
    // The finish time is on the items of the file's last chunk: no other read needed when all are in it.
    expect(await lookupRecord({ index }, { recordId: 'C2', kind: 'users' })).toEqual(
      await lookupRecord({ index, finishedAt }, { recordId: 'C2', kind: 'users' }),
    );
  });

  it('finds an id seen in two files, newest first, and filters by partner', async () => {
    beta = await finaliseOnce(
      await landed('landing', 'users/beta/users_beta_20261125.csv', 'users', partnerFile('users', 200, 'Bea')),
      index,
    );
    expect(beta.sha256).not.toBe(acme.sha256);
    const both = await lookup('C2', { kind: 'users' });
    expect(both.map((r) => [r.name, r.partner, r.line, r.outcome])).toEqual([
      ['users_beta_20261125.csv', 'beta', 4, 'succeeded'],
      ['users_acme_20261124.csv', 'acme', 4, 'succeeded'],
    ]);
    expect(both.map((r) => r.finishedAt)).toEqual([beta.finishedAt, acme.finishedAt]);
    expect(await lookup('C2', { kind: 'users', partner: 'acme' })).toEqual([both[1]]);
    expect(await lookup('C2', { kind: 'users', partner: 'gamma' })).toEqual([]);
    // Only in the larger file.
    expect(await lookup('C2500', { kind: 'users' })).toMatchObject([{ partner: 'acme' }]);
  });

  it('finds transaction ids, with the outcome of their last RETRY phase; no kind: both kinds are asked', async () => {
    const transactions = await finaliseOnce(
      await landed(
        'landing',
        'transactions/acme/transactions_acme_20261124.csv',
        'transactions',
        partnerFile('transactions', 1000),
      ),
      index,
    );
    const byId = async (id: string) =>
      (await lookup(id, { kind: 'transactions' })).map((r) => [r.line, r.outcome, r.code, r.error]);
    expect(await byId('T7')).toEqual([[9, 'succeeded', '200', null]]);
    expect(await byId('T5')).toEqual([[7, 'failed', 'VALIDATION', 'VALIDATION: currency: an ISO 4217 currency code']]);
    // 4404 in ADD and RETRY1, found in RETRY2; and 4404 to the end.
    expect(await byId('T10')).toEqual([[12, 'succeeded', '200', null]]);
    expect(await byId('T25')).toEqual([[27, 'failed', '4404', 'CUSTOMER_NOT_FOUND']]);
    expect(await lookup('T7')).toMatchObject([{ fileId: transactions.sha256, line: 9 }]);
    expect((await lookup('C2')).map((r) => r.partner)).toEqual(['beta', 'acme']);
  });

  it('finalised in slices (one retried after its index was written), the lookups are those of one run', async () => {
    const sliced = new DynamoDbRecordIndex(db.client(), 'sliced');
    const finished = await landed(
      'landing2',
      'users/acme/users_acme_20261124.csv',
      'users',
      partnerFile('users', 3000),
    );
    expect(finished.fileId).toBe(acme.sha256);
    const writes: number[] = [];
    let entries = 0;
    const counting: RecordIndexWriter = {
      writeChunk: (chunk) => {
        writes.push(chunk.firstLine);
        for (const part of chunk.parts) entries += part.count;
        return sliced.writeChunk(chunk);
      },
    };
    const deps = {
      ...finaliseDeps(new S3ObjectStore(s3.client()), new DynamoDbCallAnswers(db.client(), 'ledger')),
      recordIndex: counting,
    };
    // Chunks of 300 records, not aligned with the reader's chunks nor the slices: flushed mid-slice and at its end.
    const slice = (from: FinaliseCheckpoint | undefined, every: number) => {
      let chunks = 0;
      return finaliseFileSlice(finished, deps, {
        ...(from ? { from } : {}),
        shouldStop: () => ++chunks % every === 0,
        partBytes: 16 * 1024,
        indexBuffer: { flushRecords: 300 },
      });
    };
    let from: FinaliseCheckpoint | undefined;
    let summary: FinalSummary | undefined;
    let slices = 0;
    while (!summary) {
      slices++;
      if (slices === 2) {
        // Cut off after its index was written but before its checkpoint was kept: run again from the same input,
        // this time stopping sooner (a slice stops by the clock), so items of the first try are left over.
        const lost = await slice(from, 2);
        expect(lost.done).toBe(false);
      }
      const result = await slice(from, 1);
      if (result.done) summary = result.summary;
      else from = JSON.parse(JSON.stringify(result.checkpoint)) as FinaliseCheckpoint;
    }
    expect(slices).toBeGreaterThanOrEqual(3);
    expect(summary).toMatchObject({ received: acme.received, succeeded: acme.succeeded, failed: acme.failed });
    // The retried slice wrote its chunks at the lines its first try did.
    const retried = writes.filter((line, i) => writes.indexOf(line) !== i);
    expect(retried.length).toBeGreaterThan(0);
    // ...and its first try wrote entries past where the retry stopped, which the next slice wrote again: the
    // lookup must keep one of each (file, line).
    expect(entries).toBeGreaterThan(acme.received);

    const asked = [0, 1, 2, 5, ...Array.from({ length: 120 }, (_, i) => i * 25 + 3)].map((i) => `C${i}`);
    const withoutTimes = (records: readonly RecordSighting[]) => records.map(({ finishedAt: _at, ...r }) => r);
    for (const id of asked) {
      const [one, many] = await Promise.all([
        lookup(id, { kind: 'users', partner: 'acme' }),
        lookupRecord({ index: sliced }, { recordId: id, kind: 'users' }).then((answer) => answer.records),
      ]);
      expect({ id, records: withoutTimes(many) }).toEqual({ id, records: withoutTimes(one) });
      expect(many).toHaveLength(1);
    }
    // Only the last chunk's items carry the finish time (none, when the last slice began at the end of the
    // file): for the others it comes from the catalogue.
    const early = await lookupRecord({ index: sliced }, { recordId: 'C0', kind: 'users' });
    expect(early.records[0]?.finishedAt).toBeNull();
    const resolved = await lookupRecord(
      { index: sliced, finishedAt: () => Promise.resolve(summary?.finishedAt) },
      { recordId: 'C0', kind: 'users' },
    );
    expect(resolved.records[0]?.finishedAt).toBe(summary.finishedAt);
  }, 120_000);
});
