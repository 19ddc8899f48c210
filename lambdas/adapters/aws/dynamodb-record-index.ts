import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ErrorNames, PipelineError } from '../../core/errors';
import type { FileKind } from '../../core/files/record-schemas';
import {
  entriesWithId,
  shardOf,
  RECORD_INDEX_SHARDS,
  type IndexChunk,
  type LocatedRecord,
  type RecordIndexWriter,
  type RecordLocations,
} from '../../core/ledger/record-index';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';

const inflate = promisify(gunzip);

/** The index's partition of one shard: every file's items for the ids of that shard. */
export const indexKey = (kind: FileKind, shard: number) => `index#${kind}#${shard}`;

/** A chunk's item in a shard: the file, the chunk's first line (zero-padded, so a file's chunks sort), the part. */
export const indexSortKey = (fileId: string, firstLine: number, part = 0) =>
  `${fileId}#${String(firstLine).padStart(10, '0')}${part === 0 ? '' : `#${String(part).padStart(3, '0')}`}`;

/** BatchWriteItem takes at most 25 items a request. */
const BATCH_ITEMS = 25;

/**
 * Lookups split a shard's partition into ranges of sort keys (a file id's first hex digit) queried at once, so a
 * partition of many pages is read in parallel rather than page after page. Ranges cover every key, hex or not.
 */
const RANGE_BOUNDS = '123456789abcdef'.split('');

export interface RecordIndexOptions extends LedgerRetention {
  /** BatchWriteItem requests in flight at once. @default 8 */
  readonly concurrency?: number;
  /** Tries of a request's unprocessed items before the write fails as Pipeline.Transient. @default 10 */
  readonly maxAttempts?: number;
  /** First back-off after unprocessed items, doubled each try (with jitter), at most 5 s. @default 50 */
  readonly backoffMs?: number;
  /** @default RECORD_INDEX_SHARDS: the writer's (RecordIndexBuffer's) shard count */
  readonly shards?: number;
}

type Item = Record<string, unknown>;

/** What a lookup reads of an item; anything else is not one of ours, and is refused loudly. */
const StoredItem = z.object({
  sk: z.string(),
  entries: z.instanceof(Uint8Array),
  name: z.string(),
  partner: z.string(),
  indexedAt: z.number(),
  finishedAt: z.string().optional(),
});

/** The items of a chunk, as written: every attribute a lookup needs, so it reads nothing else. */
export function indexItems(chunk: IndexChunk, at: { expiresAt: number; indexedAt: number }): Item[] {
  const { file } = chunk;
  return chunk.parts.map((part) => ({
    pk: indexKey(file.kind, part.shard),
    sk: indexSortKey(file.fileId, chunk.firstLine, part.part),
    entries: part.entries,
    count: part.count,
    name: file.name,
    partner: file.partner,
    indexedAt: at.indexedAt,
    ...(chunk.finishedAt === undefined ? {} : { finishedAt: chunk.finishedAt }),
    expiresAt: at.expiresAt,
  }));
}

/**
 * An item's size as DynamoDB bills it: attribute names plus values (strings as UTF-8, binary as bytes, numbers
 * about one byte per two digits plus one). Write units are this over 1 KB, rounded up.
 */
export function itemBytes(item: Item): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name);
    if (typeof value === 'string') bytes += Buffer.byteLength(value);
    else if (value instanceof Uint8Array) bytes += value.length;
    else if (typeof value === 'number') bytes += Math.ceil(String(value).replace(/[-.]/g, '').length / 2) + 1;
  }
  return bytes;
}

/**
 * The record lookup index in the ledger table (docs/design.md, Record lookup index): writes a chunk's items with
 * BatchWriteItem (each replaces the item at its key, so a retried slice writes over itself), and looks an id up
 * by reading its shard's partition.
 */
export class DynamoDbRecordIndex implements RecordIndexWriter, RecordLocations {
  private readonly documents: DynamoDBDocumentClient;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly shards: number;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly options: RecordIndexOptions = {},
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
    this.concurrency = options.concurrency ?? 8;
    this.maxAttempts = options.maxAttempts ?? 10;
    this.backoffMs = options.backoffMs ?? 50;
    this.shards = options.shards ?? RECORD_INDEX_SHARDS;
  }

  async writeChunk(chunk: IndexChunk): Promise<void> {
    const items = indexItems(chunk, { expiresAt: ledgerExpiresAt(this.options), indexedAt: Date.now() });
    const batches: Item[][] = [];
    for (let at = 0; at < items.length; at += BATCH_ITEMS) batches.push(items.slice(at, at + BATCH_ITEMS));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) await this.writeBatch(batches[next++] as Item[]);
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches.length) }, worker));
  }

  /**
   * Every entry of this id in the index, one per (file, line) (a slice cut off and retried can leave an item of
   * an older try: the newest write wins), newest file first, each file's lines in order.
   */
  async lookup(kind: FileKind, recordId: string): Promise<readonly LocatedRecord[]> {
    const pk = indexKey(kind, shardOf(recordId, this.shards));
    const found = new Map<string, LocatedRecord & { readonly indexedAt: number }>();
    const ranges = [undefined, ...RANGE_BOUNDS].map((low, i) => ({ low, high: RANGE_BOUNDS[i] }));
    await Promise.all(
      ranges.map(async ({ low, high }) => {
        for await (const items of this.pages(pk, low, high)) {
          const texts = await Promise.all(
            items.map(async (raw) => {
              const item = StoredItem.parse(raw);
              return { item, text: (await inflate(item.entries)).toString('utf8') };
            }),
          );
          for (const { item, text } of texts) {
            const fileId = item.sk.slice(0, item.sk.indexOf('#'));
            for (const entry of entriesWithId(text, recordId)) {
              const key = `${fileId}#${entry.line}`;
              const seen = found.get(key);
              if (seen && seen.indexedAt >= item.indexedAt) continue;
              const { id: _id, ...hit } = entry;
              found.set(key, {
                fileId,
                ...hit,
                name: item.name,
                partner: item.partner,
                ...(item.finishedAt === undefined ? {} : { finishedAt: item.finishedAt }),
                indexedAt: item.indexedAt,
              });
            }
          }
        }
      }),
    );
    // A file's order is its latest write: the file finalised last comes first.
    const latest = new Map<string, number>();
    for (const hit of found.values()) latest.set(hit.fileId, Math.max(latest.get(hit.fileId) ?? 0, hit.indexedAt));
    return [...found.values()]
      .map((hit) => ({ ...hit, indexedAt: latest.get(hit.fileId) as number }))
      .sort((a, b) => b.indexedAt - a.indexedAt || a.fileId.localeCompare(b.fileId) || a.line - b.line);
  }

  /** One request's items, its unprocessed ones written again after a back-off until none are left. */
  private async writeBatch(items: Item[]): Promise<void> {
    let requests = items.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 1; ; attempt++) {
      const { UnprocessedItems } = await this.documents.send(
        new BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }),
      );
      const left = UnprocessedItems?.[this.tableName] ?? [];
      if (left.length === 0) return;
      if (attempt >= this.maxAttempts) {
        throw new PipelineError(
          ErrorNames.transient,
          `record index: ${left.length} items still unprocessed after ${attempt} tries`,
        );
      }
      requests = left as typeof requests;
      const ceiling = Math.min(5000, this.backoffMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + Math.random() * (ceiling / 2)));
    }
  }

  /** The pages of a partition's sort keys from `low` (inclusive) to `high` (exclusive; undefined: open). */
  private async *pages(pk: string, low: string | undefined, high: string | undefined) {
    // A range of one character bounds: `BETWEEN a AND b` takes in no key equal to `b`, as every key is longer.
    const condition =
      low === undefined ? 'sk < :high' : high === undefined ? 'sk >= :low' : 'sk BETWEEN :low AND :high';
    let startKey: Item | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: `pk = :pk AND ${condition}`,
          ExpressionAttributeValues: {
            ':pk': pk,
            ...(low === undefined ? {} : { ':low': low }),
            ...(high === undefined ? {} : { ':high': high }),
          },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      startKey = page.LastEvaluatedKey;
      yield page.Items ?? [];
    } while (startKey);
  }
}
