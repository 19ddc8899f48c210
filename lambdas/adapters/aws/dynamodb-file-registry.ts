import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ClaimOutcome, FileClaim, FileOutcomes, FileRecord, FileRegistry } from '../../core/ledger/file-claim';
import { isConditionFailure } from './dynamodb-errors';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';
import { CLAIM_SORT_KEY, fileKey } from './ledger-keys';

/**
 * File claims in the ledger table (`pk` = `file#<sha256>`, `sk` = `claim`), taken with a conditional put. The claim
 * expires `retention` after the file's summary is recorded (or after the claim, for a file never finished).
 */
export class DynamoDbFileRegistry implements FileRegistry, FileOutcomes {
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
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...key, ...claim, claimedAt: new Date().toISOString(), expiresAt: ledgerExpiresAt(this.retention) },
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
    };
  }

  async recordSummary(fileId: string, summary: unknown): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: CLAIM_SORT_KEY },
        // The file's last write: its claim and summary are kept the retention from now, when the file finished.
        UpdateExpression: 'SET summary = :summary, finishedAt = :now, expiresAt = :expiresAt',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: {
          ':summary': JSON.stringify(summary),
          ':now': new Date().toISOString(),
          ':expiresAt': ledgerExpiresAt(this.retention),
        },
      }),
    );
  }
}
