import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { CallAnswer, CallLedger, OutcomeStatus, RecordOutcome } from '../../core/crm/dispatch-call';
import { isConditionFailure } from './dynamodb-errors';
import { answerKey, fileKey } from './ledger-keys';

/**
 * Outcomes are stored as one JSON string of compact tuples: 100 of them stay a few KiB, far under DynamoDB's
 * 400 KiB item limit, and one string attribute costs the SDK and DynamoDB far less than 100 nested lists.
 */
type StoredOutcome = [
  line: number,
  status: OutcomeStatus,
  code: number | null,
  reason: string | null,
  error: string | null,
];

/** Call answers in the ledger table: one item per (file, phase, batch), written once with a conditional put. */
export class DynamoDbCallLedger implements CallLedger {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
  }

  async hasAnswer(fileId: string, phase: string, batchIndex: number): Promise<boolean> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: answerKey(phase, batchIndex) },
        ProjectionExpression: 'pk',
        ConsistentRead: true,
      }),
    );
    return Item !== undefined;
  }

  async recordAnswer(answer: CallAnswer): Promise<'recorded' | 'already-recorded'> {
    // null, not undefined: JSON would turn undefined tuple elements into null anyway; be explicit.
    const outcomes: StoredOutcome[] = answer.outcomes.map((o) => [
      o.line,
      o.status,
      o.code ?? null,
      o.reason ?? null,
      o.error ?? null,
    ]);
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: fileKey(answer.fileId),
            sk: answerKey(answer.phase, answer.batchIndex),
            operation: answer.operation,
            outcomes: JSON.stringify(outcomes),
            attempts: answer.attempts,
            replayed: answer.replayed,
            answeredAt: new Date().toISOString(),
          },
          ConditionExpression: 'attribute_not_exists(sk)',
        }),
      );
      return 'recorded';
    } catch (error) {
      if (isConditionFailure(error)) return 'already-recorded';
      throw error;
    }
  }

  /** A stored answer, as the workflow reads it back. */
  async readAnswer(fileId: string, phase: string, batchIndex: number): Promise<RecordOutcome[] | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: answerKey(phase, batchIndex) },
        ConsistentRead: true,
      }),
    );
    const stored = typeof Item?.outcomes === 'string' ? (JSON.parse(Item.outcomes) as StoredOutcome[]) : undefined;
    return stored?.map(([line, status, code, reason, error]) => ({
      line,
      status,
      ...(code === null ? {} : { code }),
      ...(reason === null ? {} : { reason }),
      ...(error === null ? {} : { error }),
    }));
  }
}
