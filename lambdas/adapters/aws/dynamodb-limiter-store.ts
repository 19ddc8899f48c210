import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { LimiterStore } from '../../core/crm/rate-limiter';

/**
 * The limiter's next free slot in one DynamoDB item (`pk` = `limiter#<name>`), changed only by a conditional
 * put on the value read: one atomic single-item write, which the local DynamoDB stand-in supports too.
 */
export class DynamoDbLimiterStore implements LimiterStore {
  private readonly documents: DynamoDBDocumentClient;
  private readonly key: { pk: string };

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    name = 'crm',
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
    this.key = { pk: `limiter#${name}` };
  }

  async read(): Promise<number | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.key, ConsistentRead: true }),
    );
    return typeof Item?.nextSlotMs === 'number' ? Item.nextSlotMs : undefined;
  }

  async compareAndSet(expected: number | undefined, next: number): Promise<boolean> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...this.key, nextSlotMs: next },
          ...(expected === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'nextSlotMs = :expected', ExpressionAttributeValues: { ':expected': expected } }),
        }),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}
