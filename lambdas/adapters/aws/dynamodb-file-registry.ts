import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CATALOG_INDEX } from '../../contracts/catalog-index';
import type { FileKind } from '../../core/files/record-schemas';
import type {
  ClaimOutcome,
  FileClaim,
  FileOutcomes,
  FileRecord,
  FileRegistry,
  RedoMark,
  RedoMarks,
} from '../../core/ledger/file-claim';
import { ApiError } from '../../core/operations/api-error';
import type { CatalogEntry, CatalogQuery, FileCatalog } from '../../core/operations/ports';
import type { FinalSummary } from '../../core/workflow/finalise-file';
import { fileNameOf } from '../../core/workflow/storage-keys';
import { isConditionFailure } from './dynamodb-errors';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';
import { CLAIM_SORT_KEY, fileKey } from './ledger-keys';

type Item = Record<string, unknown>;

/** The catalogue's one partition in its index: every claimed file, ordered by claim time. */
const CATALOG_PARTITION = 'files';

/** Characters of a given-up round's reason kept on the claim. */
const MAX_REDO_REASON = 2000;

/**
 * File claims in the ledger table (`pk` = `file#<sha256>`, `sk` = `claim`), taken with a conditional put. The claim
 * expires `retention` after the file's summary is recorded (or after the claim, for a file never finished).
 * Each claim is also the file's entry in the catalogue: the index {@link CATALOG_INDEX} orders the claims by
 * time, so the operations API lists files newest first with one Query a page and no write of its own.
 */
export class DynamoDbFileRegistry implements FileRegistry, FileOutcomes, FileCatalog, RedoMarks {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly retention: LedgerRetention = {},
  ) {
    this.documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async claim(claim: FileClaim): Promise<ClaimOutcome> {
    const key = { pk: fileKey(claim.fileId), sk: CLAIM_SORT_KEY };
    const claimedAt = new Date().toISOString();
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...key,
            ...claim,
            claimedAt,
            [CATALOG_INDEX.partitionKey]: CATALOG_PARTITION,
            [CATALOG_INDEX.sortKey]: `${claim.landedAt ?? claimedAt}#${claim.fileId}`,
            expiresAt: ledgerExpiresAt(this.retention),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { outcome: 'claimed' };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    const owner = Item as (FileClaim & { claimedAt: string }) | undefined;
    if (!owner) throw new Error(`claim of ${claim.fileId} refused, yet no claim is stored`);
    const sameObject = owner.bucket === claim.bucket && owner.key === claim.key && owner.versionId === claim.versionId;
    return sameObject ? { outcome: 'redelivered' } : { outcome: 'duplicate', duplicateOf: owner.key };
  }

  async read(fileId: string): Promise<FileRecord | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: CLAIM_SORT_KEY },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    return {
      ...(typeof Item.claimedAt === 'string' ? { claimedAt: Item.claimedAt } : {}),
      ...(typeof Item.summary === 'string' ? { summary: JSON.parse(Item.summary) as unknown } : {}),
      ...redoOf(Item),
    };
  }

  /** Also ends the claim's redo round when the summary is that round's (its `redoRounds`). */
  async recordSummary(fileId: string, summary: unknown): Promise<void> {
    const redoRounds = (summary as { redoRounds?: unknown }).redoRounds;
    const endsRound = typeof redoRounds === 'number' && redoRounds > 0;
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: CLAIM_SORT_KEY },
        // The file's last write: its claim and summary are kept the retention from now, when the file finished.
        UpdateExpression: `SET summary = :summary, #status = :status, finishedAt = :now, expiresAt = :expiresAt${
          endsRound ? ', redo.#done = :true' : ''
        }`,
        ConditionExpression: endsRound ? 'attribute_exists(pk) AND redo.#round = :round' : 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#status': 'status', ...(endsRound ? { '#done': 'done', '#round': 'round' } : {}) },
        ExpressionAttributeValues: {
          ':summary': JSON.stringify(summary),
          ':status': (summary as { status?: unknown }).status ?? 'unknown',
          ':now': new Date().toISOString(),
          ':expiresAt': ledgerExpiresAt(this.retention),
          ...(endsRound ? { ':true': true, ':round': redoRounds } : {}),
        },
      }),
    );
  }

  /**
   * Takes a redo round: refused (false) unless the file is finished and no round is in flight, and `mark.round`
   * is the one after the last (1 for the first), so of two requests at once only one gets the round.
   */
  async markRedo(fileId: string, mark: RedoMark): Promise<boolean> {
    const first = mark.round === 1;
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: fileKey(fileId), sk: CLAIM_SORT_KEY },
          UpdateExpression: 'SET redo = :mark',
          ConditionExpression: first
            ? 'attribute_exists(summary) AND attribute_not_exists(redo)'
            : 'attribute_exists(summary) AND redo.#round = :previous AND redo.#done = :true',
          ...(first ? {} : { ExpressionAttributeNames: { '#round': 'round', '#done': 'done' } }),
          ExpressionAttributeValues: {
            ':mark': { ...mark, codes: [...mark.codes], done: false },
            ...(first ? {} : { ':previous': mark.round - 1, ':true': true }),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Gives a round up: one whose execution could not be started (the request ends it), or one whose execution
   * failed or found nothing to send (its GiveUpRedo step ends it). The next request may go on, with the next
   * round (a round's name is never used twice). Only the round in flight: a repeat, or a round whose summary
   * was kept meanwhile, changes nothing (false).
   */
  async abandonRedo(fileId: string, round: number, reason?: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: fileKey(fileId), sk: CLAIM_SORT_KEY },
          UpdateExpression: `SET redo.#done = :true, redo.abandoned = :true${reason ? ', redo.reason = :reason' : ''}`,
          ConditionExpression: 'redo.#round = :round AND redo.#done = :false',
          ExpressionAttributeNames: { '#round': 'round', '#done': 'done' },
          ExpressionAttributeValues: {
            ':round': round,
            ':true': true,
            ':false': false,
            // A DynamoDB item is at most 400 KB: a long cause is cut, not refused.
            ...(reason ? { ':reason': reason.slice(0, MAX_REDO_REASON) } : {}),
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async get(fileId: string): Promise<CatalogEntry | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: CLAIM_SORT_KEY },
        ConsistentRead: true,
      }),
    );
    return Item ? catalogEntry(Item) : undefined;
  }

  /**
   * A page of the catalogue, newest first. DynamoDB applies a Query's limit before its filter, so a filtered page
   * reads on until it has `limit` entries or the index ends; the cursor is the last entry returned.
   */
  async list(query: CatalogQuery): Promise<{ entries: CatalogEntry[]; next?: string }> {
    const names: Record<string, string> = { '#catalog': CATALOG_INDEX.partitionKey };
    const values: Record<string, unknown> = { ':files': CATALOG_PARTITION };
    const filters: string[] = [];
    if (query.partner !== undefined) {
      names['#partner'] = 'partner';
      values[':partner'] = query.partner;
      filters.push('#partner = :partner');
    }
    if (query.kind !== undefined) {
      names['#kind'] = 'kind';
      values[':kind'] = query.kind;
      filters.push('#kind = :kind');
    }
    // A file in a redo round (retry by code) is in flight again until the round's summary is kept.
    if (query.finished !== undefined) {
      names['#done'] = 'done';
      values[':done'] = true;
    }
    if (query.finished === 'unfinished') {
      filters.push('(attribute_not_exists(summary) OR (attribute_exists(redo) AND redo.#done <> :done))');
    } else if (query.finished !== undefined) {
      names['#status'] = 'status';
      values[':status'] = query.finished;
      filters.push('#status = :status AND (attribute_not_exists(redo) OR redo.#done = :done)');
    }
    if (query.since !== undefined) {
      names['#at'] = CATALOG_INDEX.sortKey;
      values[':since'] = query.since;
    }
    const entries: CatalogEntry[] = [];
    let startKey = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    // Read on past a full page until one more entry is found or the index ends: `next` is null on the last page
    // even when a filter leaves the rest of the index empty.
    let more = false;
    while (!more) {
      const wanted = query.limit - entries.length + 1;
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: CATALOG_INDEX.name,
          KeyConditionExpression: `#catalog = :files${query.since === undefined ? '' : ' AND #at >= :since'}`,
          ...(filters.length > 0 ? { FilterExpression: filters.join(' AND ') } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ScanIndexForward: false,
          // A filtered Query counts the items it reads, not those it keeps: read a fair page at a time.
          Limit: filters.length > 0 ? Math.max(wanted, 100) : wanted,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        if (entries.length === query.limit) {
          more = true;
          break;
        }
        entries.push(catalogEntry(item));
      }
      startKey = page.LastEvaluatedKey;
      if (startKey === undefined) break;
    }
    const last = entries[entries.length - 1];
    return { entries, ...(more && last ? { next: encodeCursor(catalogKey(last.fileId, last.landedAt)) } : {}) };
  }
}

/** An entry's keys in the catalogue's index: where the next page goes on. */
const catalogKey = (fileId: string, landedAt: string): Item => ({
  pk: fileKey(fileId),
  sk: CLAIM_SORT_KEY,
  [CATALOG_INDEX.partitionKey]: CATALOG_PARTITION,
  [CATALOG_INDEX.sortKey]: `${landedAt}#${fileId}`,
});

const encodeCursor = (key: Item) => Buffer.from(JSON.stringify(key)).toString('base64url');

function decodeCursor(cursor: string): Item {
  try {
    const key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Item;
    const at = key[CATALOG_INDEX.sortKey];
    const fileId = /^file#([0-9a-f]{64})$/.exec(String(key.pk))?.[1];
    // Only the keys this API gives: anything else would reach DynamoDB as a bad start key (a 500, not a 400).
    if (
      fileId &&
      key.sk === CLAIM_SORT_KEY &&
      key[CATALOG_INDEX.partitionKey] === CATALOG_PARTITION &&
      typeof at === 'string' &&
      at.endsWith(`#${fileId}`) &&
      Object.keys(key).length === 4
    ) {
      return key;
    }
  } catch {
    // Answered below.
  }
  throw new ApiError('BadRequest', 'cursor: not a cursor this API gave (pass the last page\'s "next" as it is)');
}

function catalogEntry(item: Item): CatalogEntry {
  const key = String(item.key ?? '');
  const at = typeof item[CATALOG_INDEX.sortKey] === 'string' ? String(item[CATALOG_INDEX.sortKey]) : undefined;
  return {
    fileId: String(item.fileId),
    name: typeof item.name === 'string' ? item.name : fileNameOf(key),
    partner: typeof item.partner === 'string' ? item.partner : '',
    kind: (item.kind as FileKind | undefined) ?? 'unknown',
    landedAt: at ? at.slice(0, at.lastIndexOf('#')) : String(item.claimedAt ?? ''),
    file: { bucket: String(item.bucket ?? ''), key },
    ...(typeof item.summary === 'string' ? { summary: JSON.parse(item.summary) as FinalSummary } : {}),
    ...redoOf(item),
  };
}

/** The claim's redo mark, if the file was ever retried. */
function redoOf(item: Item): { redo?: RedoMark } {
  const redo = item.redo as Partial<RedoMark> | undefined;
  if (!redo || typeof redo.round !== 'number') return {};
  return {
    redo: {
      round: redo.round,
      codes: Array.isArray(redo.codes) ? redo.codes.map(String) : [],
      lines: typeof redo.lines === 'number' ? redo.lines : 0,
      requestedAt: typeof redo.requestedAt === 'string' ? redo.requestedAt : '',
      ...(redo.done === true ? { done: true } : {}),
      ...(redo.abandoned === true ? { abandoned: true } : {}),
      ...(typeof redo.reason === 'string' ? { reason: redo.reason } : {}),
    },
  };
}
