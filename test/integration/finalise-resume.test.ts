import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { withoutTimes } from '../support/summary-times';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { S3ObjectStore } from '../../lambdas/adapters/aws/s3-object-store';
import { createTelemetry } from '../../lambdas/adapters/aws/telemetry';
import type { ObjectRef } from '../../lambdas/core/files/object-store';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import {
  finaliseFileSlice,
  type FinaliseCheckpoint,
  type FinalSummary,
} from '../../lambdas/core/workflow/finalise-file';
import { FinaliseCheckpointSchema, finaliseFileContract } from '../../lambdas/finalise-file/contract';
import { makeHandler } from '../../lambdas/finalise-file/make-handler';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';
import { startLocalS3, type LocalS3 } from '../../lambdas/local/services/local-s3';
import { answerPhases, crm } from '../support/crm-outcomes';
import { finaliseDeps } from '../unit/files/in-memory-pipeline';
import { countingReads } from '../support/counting-reads';
import { sliceContext } from '../support/slice-context';

/**
 * Finalise in many slices against the embedded S3 and the ledger on dynalite: each slice stops after a couple
 * of chunks of records and the next goes on from its checkpoint (passed as JSON, as Step Functions does), and
 * the reports are byte for byte those of one unsliced run; a plain file's slices read it about once in all.
 */
function partnerFile(kind: FileKind, count: number, format: 'csv' | 'jsonl'): string {
  const rows: string[] = [];
  if (format === 'csv') {
    rows.push(
      kind === 'users'
        ? 'customer_id,first_name,last_name,email,country,created_at'
        : 'transaction_id,customer_id,amount,currency,occurred_at',
    );
  }
  for (let i = 0; i < count; i++) {
    const bad = crm(kind, i, 0).length === 0;
    const record =
      kind === 'users'
        ? {
            customer_id: `C${i}`,
            first_name: i % 11 === 0 ? 'Åsa, "Jr"' : 'Ada',
            last_name: 'Alder',
            email: bad ? 'no-email' : `u${i}@example.com`,
            country: 'GB',
            created_at: '2026-01-01T00:00:00Z',
          }
        : {
            transaction_id: `T${i}`,
            customer_id: `C${i}`,
            amount: '1.00',
            currency: bad ? 'XXX' : 'EUR',
            occurred_at: '2026-01-01T00:00:00Z',
          };
    rows.push(
      format === 'jsonl'
        ? JSON.stringify(record)
        : Object.values(record)
            .map((v) => (/[",]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v))
            .join(','),
    );
  }
  return `${rows.join('\n')}\n`;
}

describe('finalise in slices: the same reports as one run (embedded S3, ledger on dynalite)', () => {
  let s3: LocalS3;
  let db: LocalDynamoDb;
  beforeAll(async () => {
    [s3, db] = await Promise.all([
      startLocalS3(['landing1', 'landing2', 'archive1', 'archive2']),
      startLocalDynamoDb(),
    ]);
    await db.createTable('ledger', TABLES.ledger);
  });
  afterAll(() => Promise.all([s3.close(), db.close()]));

  /** Every phase batched by prepare as the workflow does, answered by `crm`, stored in the ledger. */
  const runPhases = (bytes: Buffer, key: string, kind: FileKind) =>
    answerPhases(
      new DynamoDbCallAnswers(db.client(), 'ledger'),
      async function* () {
        yield bytes;
      },
      key,
      kind,
    );

  const depsFor = (store: S3ObjectStore, archiveBucket: string) =>
    finaliseDeps(
      store,
      new DynamoDbCallAnswers(db.client(), 'ledger', { rangeBatches: 3, rangesAhead: 3 }),
      archiveBucket,
    );

  const text = async (store: S3ObjectStore, ref: ObjectRef) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of store.read(ref)) chunks.push(chunk);
    return Buffer.concat(chunks).toString('utf8');
  };

  /** The reports a finished file left: results.csv, the failed-records file and summary.json (buckets named alike). */
  const reportsOf = async (store: S3ObjectStore, summary: FinalSummary) => {
    const { bucket } = summary.reports;
    return {
      results: await text(store, { bucket, key: summary.reports.results as string }),
      failed: await text(store, { bucket, key: summary.reports.failedRecords as string }),
      summary: withoutTimes(await text(store, { bucket, key: summary.reports.summary })).replace(
        /archive[12]/g,
        'archive',
      ),
    };
  };

  it.each([
    ['users', 'csv', false, 8000],
    ['users', 'csv', true, 8000],
    ['users', 'jsonl', false, 8000],
    ['transactions', 'csv', true, 8000],
  ] as const)('%s %s (gzip: %s), %i records', async (kind, format, gzip, count) => {
    const key = `incoming/acme/${kind}/${kind}_acme_20261124.${format}${gzip ? '.gz' : ''}`;
    const plain = Buffer.from(partnerFile(kind, count, format));
    const bytes = gzip ? gzipSync(plain) : plain;
    const fileId = await runPhases(bytes, key, kind);
    for (const bucket of ['landing1', 'landing2']) {
      await s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    }
    const finished = { kind, fileId, format, retryPhases: kind === 'users' ? 0 : 2 } as const;

    const whole = new S3ObjectStore(s3.client());
    const once = await finaliseFileSlice(
      { ...finished, file: { bucket: 'landing1', key } },
      depsFor(whole, 'archive1'),
    );
    if (!once.done) throw new Error('one run stopped');

    const store = countingReads(new S3ObjectStore(s3.client()), (ref) => ref.key === key);
    const deps = depsFor(store, 'archive2');
    const file = { bucket: 'landing2', key };
    let from: FinaliseCheckpoint | undefined;
    const resumedAt: number[] = [];
    let slices = 0;
    let sliced: FinalSummary | undefined;
    while (!sliced) {
      let chunks = 0;
      const slice = await finaliseFileSlice({ ...finished, file }, deps, {
        ...(from ? { from } : {}),
        shouldStop: () => ++chunks % 2 === 0,
        // Small parts (the embedded S3 takes any size) so the reports span many parts and carries.
        partBytes: 16 * 1024,
      });
      slices++;
      if (slice.done) {
        sliced = slice.summary;
      } else {
        // As Step Functions passes it: JSON, within the contract's schema and far under 256 KiB.
        const json = JSON.stringify(slice.checkpoint);
        expect(json.length).toBeLessThan(16 * 1024);
        from = FinaliseCheckpointSchema.parse(JSON.parse(json)) as FinaliseCheckpoint;
        resumedAt.push(from.position.bytes);
      }
    }

    expect(slices).toBeGreaterThanOrEqual(3);
    // The reports went on across slices as multipart uploads, with text carried between them.
    expect(from?.results.etags.length).toBeGreaterThan(3);
    expect(from?.failedRecords?.etags.length).toBeGreaterThan(0);
    expect(await reportsOf(store, sliced)).toEqual(await reportsOf(whole, once.summary));
    const carries = await s3
      .client()
      .send(new ListObjectsV2Command({ Bucket: 'archive2', Prefix: `finalise/${fileId}/` }));
    expect(carries.KeyCount ?? 0).toBe(0);
    if (!gzip) {
      // Each slice after the first reads the source only from its checkpoint on: about once in all.
      expect(store.ranges).toEqual([
        undefined,
        ...resumedAt
          .filter((start) => start < bytes.length) // a slice resumed at the end reads nothing
          .map((start) => ({ start, end: bytes.length - 1 })),
      ]);
      // A slice that stops leaves at most a chunk read ahead unparsed.
      expect(store.bytesRead).toBeLessThan(bytes.length * 1.05);
    }
  });

  type Write = { kind: string; key: string; count: number };
  /**
   * A slice killed part way, as Lambda kills one at its timeout or out of memory: from `killAt` on, every write
   * of the store fails (the process is gone), and the workflow retries the slice from its input.
   */
  const killedAt = (store: S3ObjectStore, killAt: (write: Write) => boolean) => {
    let count = 0;
    let dead = false;
    const die = (kind: string, key: string) => {
      dead ||= killAt({ kind, key, count: ++count });
      if (dead) throw Object.assign(new Error('Task timed out'), { name: 'Sandbox.Timedout' });
    };
    const parts = store.parts;
    const killing = Object.create(store) as S3ObjectStore;
    Object.assign(killing, {
      put: async (ref: ObjectRef, body: string, type: string) => (die('put', ref.key), store.put(ref, body, type)),
      parts: {
        ...parts,
        uploadPart: async (ref: ObjectRef, id: string, n: number, body: Uint8Array) => (
          die('part', ref.key),
          parts.uploadPart(ref, id, n, body)
        ),
        complete: async (ref: ObjectRef, id: string, etags: readonly string[]) => (
          die('complete', ref.key),
          parts.complete(ref, id, etags)
        ),
        remove: async (ref: ObjectRef) => (die('remove', ref.key), parts.remove(ref)),
      },
    });
    return killing;
  };

  it.each([
    ['mid-slice, after some parts of its reports were sent', 'parts', (w: Write) => w.kind === 'part' && w.count >= 3],
    ['after a checkpoint’s carry was written, before it was returned', 'carry', (w: Write) => w.kind === 'remove'],
    [
      'in the last slice, after the reports were completed, before the summary was written',
      'summary',
      (w: Write) => w.kind === 'put' && w.key.endsWith('summary.json'),
    ],
  ])('a slice killed %s is retried from its input: the same reports as one run', async (_when, slug, killAt) => {
    const key = `incoming/acme/transactions/killed_${slug}.csv`;
    const bytes = Buffer.from(partnerFile('transactions', 8000, 'csv'));
    const fileId = await runPhases(bytes, key, 'transactions');
    for (const bucket of ['landing1', 'landing2']) {
      await s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    }
    const finished = { kind: 'transactions', fileId, format: 'csv', retryPhases: 2 } as const;
    const whole = new S3ObjectStore(s3.client());
    const once = await finaliseFileSlice(
      { ...finished, file: { bucket: 'landing1', key } },
      depsFor(whole, 'archive1'),
    );
    if (!once.done) throw new Error('one run stopped');

    const store = new S3ObjectStore(s3.client());
    const file = { bucket: 'landing2', key };
    let from: FinaliseCheckpoint | undefined;
    let killed = 0;
    let sliced: FinalSummary | undefined;
    for (let slices = 0; !sliced; slices++) {
      const slice = async (target: S3ObjectStore) => {
        let chunks = 0;
        return finaliseFileSlice({ ...finished, file }, depsFor(target, 'archive2'), {
          ...(from ? { from } : {}),
          shouldStop: () => ++chunks % 2 === 0,
          partBytes: 16 * 1024,
        });
      };
      // Each slice is killed once at the chosen point (when it reaches it), then run again from the same input.
      let result = await slice(killedAt(store, killAt)).catch((error: Error) => error);
      if (result instanceof Error) {
        expect(result.name).toBe('Sandbox.Timedout');
        killed++;
        result = await slice(store);
      }
      if (result.done) sliced = result.summary;
      else from = FinaliseCheckpointSchema.parse(JSON.parse(JSON.stringify(result.checkpoint))) as FinaliseCheckpoint;
      expect(slices).toBeLessThan(100);
    }
    expect(killed).toBeGreaterThanOrEqual(1);
    expect(await reportsOf(store, sliced)).toEqual(await reportsOf(whole, once.summary));
  });

  it('archives in ArchiveFile when the definition has it, and in the last slice for an execution older than it', async () => {
    const key = 'incoming/acme/users/users_acme_20261126.csv';
    const bytes = Buffer.from(partnerFile('users', 500, 'csv'));
    const fileId = await runPhases(bytes, key, 'users');
    const classification = { kind: 'users', sha256: fileId, format: 'csv' } as const;
    const context = sliceContext('finalise-file', false);
    const run = async (bucket: string, archiveStep: boolean) => {
      await s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
      const completed: string[] = [];
      const store = new S3ObjectStore(s3.client());
      const handler = makeHandler({
        ...depsFor(store, bucket === 'landing1' ? 'archive1' : 'archive2'),
        events: { fileCompleted: async (summary) => void completed.push(summary.name) },
        telemetry: createTelemetry('finalise-file', { output: new PassThrough() }),
      });
      const file = { bucket, key };
      const output = (await handler(
        { action: 'finalise', file, classification, retryAttempts: 0, ...(archiveStep ? { archiveStep } : {}) },
        context,
      )) as FinalSummary & { done: boolean };
      const stillThere = await store.head(file).then(
        () => true,
        () => false,
      );
      return { output, stillThere, completed, handler, file };
    };
    const withStep = await run('landing1', true);
    expect(withStep.output.done).toBe(true);
    expect({ stillThere: withStep.stillThere, completed: withStep.completed }).toEqual({
      stillThere: true,
      completed: [],
    });
    await withStep.handler(
      { action: 'archive', file: withStep.file, summary: JSON.parse(JSON.stringify(withStep.output)) },
      context,
    );
    expect(withStep.completed).toEqual(['users_acme_20261126.csv']);
    const older = await run('landing2', false);
    expect({ stillThere: older.stillThere, completed: older.completed }).toEqual({
      stillThere: false,
      completed: ['users_acme_20261126.csv'],
    });
  });

  it("the handler returns done: false with its checkpoint until the last slice, whose summary is one run's", async () => {
    const key = 'incoming/acme/users/users_acme_20261125.csv';
    const bytes = Buffer.from(partnerFile('users', 8000, 'csv'));
    const fileId = await runPhases(bytes, key, 'users');
    for (const bucket of ['landing1', 'landing2']) {
      await s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    }
    const classification = { kind: 'users', sha256: fileId, format: 'csv' } as const;
    const contextOf = (short: boolean) => sliceContext('finalise-file', short);
    const finalise = async (bucket: string, archive: string, short: boolean) => {
      const store = new S3ObjectStore(s3.client());
      const handler = makeHandler({
        ...depsFor(store, archive),
        telemetry: createTelemetry('finalise-file', { output: new PassThrough() }),
      });
      let resume: unknown = { done: false };
      for (let slices = 1; ; slices++) {
        const event = { action: 'finalise', file: { bucket, key }, classification, retryAttempts: 0, resume };
        const output = (await handler(event, contextOf(short))) as { done: boolean } & FinalSummary;
        finaliseFileContract.outputs.finalise.parse(output);
        // Through the state machine's JSON, as `$.summary`.
        resume = JSON.parse(JSON.stringify(output));
        if (output.done) return { slices, reports: await reportsOf(store, output) };
      }
    };
    const once = await finalise('landing1', 'archive1', false);
    const sliced = await finalise('landing2', 'archive2', true);
    expect(once.slices).toBe(1);
    expect(sliced.slices).toBeGreaterThanOrEqual(3);
    expect(sliced.reports).toEqual(once.reports);
  });
});
