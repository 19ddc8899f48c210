import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CollectionClaims, CollectionState, RemoteFileId } from '../../core/polling/poll-source';
import { isConditionFailure } from './dynamodb-errors';
import { collectionKey, seenKey, sourceKey } from './ledger-keys';

const DAY_S = 86_400;
/** Listings are only compared with the one before: kept a week. */
const SEEN_TTL_S = 7 * DAY_S;
/** A file moved away will not be listed again; its record is kept 90 days. (Files left in place are kept for good.) */
const MOVED_TTL_S = 90 * DAY_S;

/**
 * What each polled source has shown and what was collected from it, in the ledger table. The claim is a
 * conditional put on (source, path, size, mtime): a file is collected once even when polls overlap, and a
 * claim whose poller died is taken over when its lease has run out.
 */
export class DynamoDbCollectionClaims implements CollectionClaims {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
  }

  private key(source: string, file: RemoteFileId) {
    return { pk: sourceKey(source), sk: collectionKey(file) };
  }

  async state(source: string, file: RemoteFileId): Promise<CollectionState | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(source, file), ConsistentRead: true }),
    );
    if (!Item) return undefined;
    if (Item.status === 'collected')
      return { status: 'collected', key: String(Item.landedKey), moved: Item.moved === true };
    return { status: 'collecting' };
  }

  async observe(source: string, file: RemoteFileId, listedAt: number) {
    const { Attributes } = await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: sourceKey(source),
          sk: seenKey(file.path),
          size: file.size,
          modifiedAt: file.modifiedAt,
          listedAt,
          expiresAt: Math.floor(this.now() / 1000) + SEEN_TTL_S,
        },
        ReturnValues: 'ALL_OLD',
      }),
    );
    if (!Attributes) return undefined;
    return {
      size: Number(Attributes.size),
      modifiedAt: Number(Attributes.modifiedAt),
      listedAt: Number(Attributes.listedAt),
    };
  }

  async claim(source: string, file: RemoteFileId, owner: string, leaseUntil: number): Promise<boolean> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...this.key(source, file),
            status: 'collecting',
            owner,
            leaseUntil,
            claimedAt: new Date(this.now()).toISOString(),
          },
          ConditionExpression: 'attribute_not_exists(pk) OR (#status = :collecting AND leaseUntil < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':collecting': 'collecting', ':now': this.now() },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async release(source: string, file: RemoteFileId, owner: string): Promise<void> {
    await this.documents
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(source, file),
          UpdateExpression: 'SET leaseUntil = :zero',
          ConditionExpression: '#status = :collecting AND #owner = :owner',
          ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
          ExpressionAttributeValues: { ':collecting': 'collecting', ':owner': owner, ':zero': 0 },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailure(error)) throw error;
      });
  }

  async collected(source: string, file: RemoteFileId, owner: string, key: string): Promise<void> {
    // Unconditional on the owner: the bytes are landed whoever's lease it was; the record says so.
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(source, file),
        UpdateExpression:
          'SET #status = :collected, landedKey = :key, collectedBy = :owner, collectedAt = :at, moved = :no',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':collected': 'collected',
          ':key': key,
          ':owner': owner,
          ':at': new Date(this.now()).toISOString(),
          ':no': false,
        },
      }),
    );
  }

  async moved(source: string, file: RemoteFileId): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(source, file),
        UpdateExpression: 'SET moved = :yes, expiresAt = :expires',
        ExpressionAttributeValues: { ':yes': true, ':expires': Math.floor(this.now() / 1000) + MOVED_TTL_S },
      }),
    );
  }
}
