import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import type { CallAnswer } from '../../lambdas/core/crm/dispatch-call';
import { startLocalDynamoDb, TABLES, type LocalDynamoDb } from '../../lambdas/local/services/local-dynamodb';

describe('DynamoDbCallAnswers.answers: a phase read back in batch order, key ranges ahead (dynalite)', () => {
  let db: LocalDynamoDb;
  let writer: DynamoDbCallAnswers;
  /** Queries made, and the most in flight at once, through the client the reader uses. */
  const queries = { made: 0, inFlight: 0, mostInFlight: 0 };

  beforeAll(async () => {
    db = await startLocalDynamoDb();
    await db.createTable('ledger', TABLES.ledger);
    writer = new DynamoDbCallAnswers(db.client(), 'ledger');
  });
  afterAll(() => db.close());
  beforeEach(() => Object.assign(queries, { made: 0, inFlight: 0, mostInFlight: 0 }));

  function countedClient(): DynamoDBClient {
    const client = db.client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'QueryCommand') return next(args);
        queries.made++;
        queries.mostInFlight = Math.max(queries.mostInFlight, ++queries.inFlight);
        try {
          return await next(args);
        } finally {
          queries.inFlight--;
        }
      },
      { step: 'initialize', name: 'countQueries' },
    );
    return client;
  }

  const reader = (rangeBatches: number, rangesAhead: number) =>
    new DynamoDbCallAnswers(countedClient(), 'ledger', { rangeBatches, rangesAhead });

  const answer = (fileId: string, phase: string, batchIndex: number): CallAnswer => ({
    fileId,
    phase,
    batchIndex,
    operation: 'ADD_TRX',
    attempts: 1,
    replayed: false,
    outcomes: [
      { line: batchIndex * 2 + 1, status: 'succeeded', code: 200 },
      { line: batchIndex * 2 + 2, status: 'retry-later', code: 4404, reason: '4404', error: 'CUSTOMER_NOT_FOUND' },
    ],
  });

  async function store(fileId: string, phase: string, indexes: Iterable<number>) {
    const all = [...indexes];
    for (let at = 0; at < all.length; at += 25) {
      await Promise.all(all.slice(at, at + 25).map((i) => writer.recordAnswer(answer(fileId, phase, i))));
    }
  }

  async function read(answers: DynamoDbCallAnswers, fileId: string, phase: string) {
    const found: CallAnswer[] = [];
    for await (const a of answers.answers(fileId, phase)) found.push(a);
    return found;
  }

  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('a large phase: every answer once, in batch order, outcomes as stored, a bounded number of queries at once', async () => {
    const file = '1'.repeat(64);
    await store(file, 'ADD', range(0, 300));
    const found = await read(reader(7, 3), file, 'ADD');
    expect(found.map((a) => a.batchIndex)).toEqual(range(0, 300));
    expect(found[123]).toEqual(answer(file, 'ADD', 123));
    expect(queries.mostInFlight).toBeGreaterThan(1);
    expect(queries.mostInFlight).toBeLessThanOrEqual(3);
    // The first range, 300 / 7 ranges, at most 3 queried past the end, and the open-ended tail.
    expect(queries.made).toBeLessThanOrEqual(1 + Math.ceil(300 / 7) + 3 + 1);
  });

  it('a small phase is one query; an empty one too', async () => {
    const file = '2'.repeat(64);
    await store(file, 'UPD', range(0, 5));
    expect((await read(reader(7, 3), file, 'UPD')).map((a) => a.batchIndex)).toEqual(range(0, 5));
    expect(queries.made).toBe(1);
    expect(await read(reader(7, 3), file, 'RETRY1')).toEqual([]);
    expect(queries.made).toBe(2);
  });

  it('gaps and a stray index far past the rest are read too, in order (the report then finds them)', async () => {
    const file = '3'.repeat(64);
    const indexes = [...range(0, 30), ...range(41, 60), 75, 5000];
    await store(file, 'ADD', indexes);
    expect((await read(reader(4, 4), file, 'ADD')).map((a) => a.batchIndex)).toEqual(indexes);
  });

  it('RETRY1 and RETRY10 answers are kept apart, whichever range reads them', async () => {
    const file = '4'.repeat(64);
    await store(file, 'RETRY1', range(0, 23));
    await store(file, 'RETRY10', range(0, 17));
    await store(file, 'RETRY2', [0]);
    expect((await read(reader(5, 2), file, 'RETRY1')).map((a) => a.batchIndex)).toEqual(range(0, 23));
    expect((await read(reader(5, 2), file, 'RETRY10')).map((a) => a.batchIndex)).toEqual(range(0, 17));
    expect((await read(reader(5, 2), file, 'RETRY2')).map((a) => a.batchIndex)).toEqual([0]);
  });

  it('a reader that stops early leaves no query failing unobserved and reads no further', async () => {
    const file = '5'.repeat(64);
    await store(file, 'ADD', range(0, 120));
    const answers = reader(5, 4);
    let taken = 0;
    for await (const _ of answers.answers(file, 'ADD')) if (++taken === 12) break;
    const made = queries.made;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(queries.made).toBe(made);
    // The first query, the two ranges the 12 answers came from, and at most 4 ranges ahead of them.
    expect(made).toBeLessThanOrEqual(1 + 2 + 4);
  });
});
