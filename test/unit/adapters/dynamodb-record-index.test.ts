import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import {
  DynamoDbRecordIndex,
  indexItems,
  indexSortKey,
  itemBytes,
} from '../../../lambdas/adapters/aws/dynamodb-record-index';
import { encodeEntries, type IndexChunk } from '../../../lambdas/core/ledger/record-index';

const FILE = { fileId: 'b'.repeat(64), name: 'users_acme_20261124.csv', partner: 'acme', kind: 'users' } as const;

const chunkOf = (shards: number): IndexChunk => ({
  file: FILE,
  firstLine: 1234,
  parts: Array.from({ length: shards }, (_, shard) => ({
    shard,
    part: 0,
    entries: encodeEntries([{ id: `C${shard}`, line: 1234 + shard, outcome: 'succeeded', code: '200' }]),
    count: 1,
  })),
});

type PutRequests = { PutRequest: { Item: Record<string, unknown> } }[];
const requestsOf = (call: { args: [{ input: object }] }) =>
  (call.args[0].input as { RequestItems: Record<string, PutRequests> }).RequestItems.ledger as PutRequests;

/** The writer on AWS: BatchWriteItem, 25 items a request, unprocessed items written again after a back-off. */
describe('DynamoDbRecordIndex writes', () => {
  const documents = mockClient(DynamoDBDocumentClient);
  afterEach(() => documents.reset());
  const index = (options = {}) =>
    new DynamoDbRecordIndex(new DynamoDBClient({ region: 'eu-west-1' }), 'ledger', {
      now: () => Date.parse('2026-11-24T00:00:00Z'),
      retentionDays: 30,
      backoffMs: 1,
      ...options,
    });

  it("writes a chunk's items 25 a request, each with its shard's key, the file and its expiry", async () => {
    documents.on(BatchWriteCommand).resolves({});
    await index().writeChunk({ ...chunkOf(60), finishedAt: '2026-11-24T01:00:00.000Z' });
    const calls = documents.commandCalls(BatchWriteCommand);
    expect(calls.map((call) => requestsOf(call).length)).toEqual([25, 25, 10]);
    const items = calls.flatMap((call) => requestsOf(call).map((request) => request.PutRequest.Item));
    expect(new Set(items.map((item) => item.pk)).size).toBe(60);
    expect(items[7]).toMatchObject({
      pk: 'index#users#7',
      sk: `${FILE.fileId}#0000001234`,
      count: 1,
      name: FILE.name,
      partner: 'acme',
      finishedAt: '2026-11-24T01:00:00.000Z',
      expiresAt: Date.parse('2026-12-24T00:00:00Z') / 1000,
    });
    expect(indexSortKey(FILE.fileId, 12, 2)).toBe(`${FILE.fileId}#0000000012#002`);
  });

  it('writes unprocessed items again until none are left', async () => {
    documents
      .on(BatchWriteCommand)
      .resolvesOnce({ UnprocessedItems: { ledger: requestsOf({ args: [{ input: itemsInput(3) }] }) } })
      .resolves({});
    await index().writeChunk(chunkOf(10));
    const calls = documents.commandCalls(BatchWriteCommand);
    expect(calls.map((call) => requestsOf(call).length)).toEqual([10, 3]);
  });

  it('fails as Pipeline.Transient (the workflow retries the slice) when items stay unprocessed', async () => {
    documents.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, PutRequests> }) => ({
      UnprocessedItems: input.RequestItems,
    }));
    await expect(index({ maxAttempts: 3 }).writeChunk(chunkOf(2))).rejects.toMatchObject({
      name: 'Pipeline.Transient',
      message: expect.stringContaining('2 items still unprocessed after 3 tries'),
    });
    expect(documents.commandCalls(BatchWriteCommand)).toHaveLength(3);
  });

  it('sizes an item as DynamoDB bills it: a chunk of one entry a shard is one write unit', () => {
    const [item] = indexItems(chunkOf(1), { expiresAt: 1_800_000_000, indexedAt: 1_700_000_000_000 });
    const bytes = itemBytes(item as Record<string, unknown>);
    expect(bytes).toBeGreaterThan(200);
    expect(bytes).toBeLessThan(1024);
  });
});

/** BatchWrite input of `n` items of a chunk, as DynamoDB hands unprocessed ones back. */
function itemsInput(n: number) {
  const items = indexItems(chunkOf(n), { expiresAt: 1, indexedAt: 1 });
  return { RequestItems: { ledger: items.map((Item) => ({ PutRequest: { Item } })) } };
}
