import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { LimiterStore } from '../../core/crm/rate-limiter';
import { isConditionFailure } from './dynamodb-errors';

/**
 * The limiter's next free slot in one DynamoDB item (`pk` = `limiter#<name>`). A slot is taken with one
 * conditional update that adds the interval and returns the new value; an idle schedule is restarted with a
 * conditional put. Single-item conditional writes only, which the local DynamoDB stand-in supports too.
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

  async advance(intervalMs: number, now: number): Promise<number | undefined> {
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key,
          UpdateExpression: 'SET nextSlotMs = nextSlotMs + :interval',
          ConditionExpression: 'nextSlotMs >= :now',
          ExpressionAttributeValues: { ':interval': intervalMs, ':now': now },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const next = Attributes?.nextSlotMs;
      return typeof next === 'number' ? next - intervalMs : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async restart(intervalMs: number, now: number): Promise<boolean> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...this.key, nextSlotMs: now + intervalMs },
          ConditionExpression: 'attribute_not_exists(pk) OR nextSlotMs < :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}
