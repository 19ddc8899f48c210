import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import type { CallAnswer, CallAnswers, OutcomeStatus, RecordOutcome } from '../../core/crm/dispatch-call';
import type { CrmOperation } from '../../core/crm/response-policy';
import { isConditionFailure } from './dynamodb-errors';
import { answerKey, answerPrefix, fileKey } from './ledger-keys';

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
export class DynamoDbCallAnswers implements CallAnswers {
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

  /** A stored answer's outcomes, as the workflow reads them back. */
  async readAnswer(fileId: string, phase: string, batchIndex: number): Promise<readonly RecordOutcome[] | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: fileKey(fileId), sk: answerKey(phase, batchIndex) },
        ConsistentRead: true,
      }),
    );
    return Item ? toAnswer(fileId, phase, Item).outcomes : undefined;
  }

  /**
   * A phase's answers in batch order (which is line order), read page by page (1 MB each) with strongly
   * consistent reads, so memory holds one page however large the file.
   */
  async *answers(fileId: string, phase: string): AsyncIterable<CallAnswer> {
    const pages = paginateQuery(
      { client: this.documents },
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': fileKey(fileId), ':prefix': answerPrefix(phase) },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) yield toAnswer(fileId, phase, item);
    }
  }
}

function toAnswer(fileId: string, phase: string, item: Record<string, unknown>): CallAnswer {
  const stored = JSON.parse(String(item.outcomes)) as StoredOutcome[];
  return {
    fileId,
    phase,
    batchIndex: Number(String(item.sk).slice(answerPrefix(phase).length)),
    operation: item.operation as CrmOperation,
    attempts: Number(item.attempts),
    replayed: item.replayed === true,
    outcomes: stored.map(([line, status, code, reason, error]) => ({
      line,
      status,
      ...(code === null ? {} : { code }),
      ...(reason === null ? {} : { reason }),
      ...(error === null ? {} : { error }),
    })),
  };
}
