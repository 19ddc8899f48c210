import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CallAnswer } from '../../core/crm/dispatch-call';
import { carriedOver, type PhaseCounters, type PhaseState } from '../../core/ledger/phase-counters';
import type { DynamoDbCallAnswers } from './dynamodb-call-answers';
import { isConditionFailure } from './dynamodb-errors';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';
import { fileKey, phaseKey } from './ledger-keys';

/**
 * Phase counters in the ledger table: one item per (file, phase), `sk` = `phase#<phase>`, atomic updates only.
 * Every update moves the item's expiry to `retention` after it.
 */
export class DynamoDbPhaseCounters implements PhaseCounters {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly answers: Pick<DynamoDbCallAnswers, 'answers'>,
    private readonly retention: LedgerRetention = {},
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
  }

  async read(fileId: string, phase: string): Promise<PhaseState> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(fileId, phase), ConsistentRead: true }),
    );
    return toState(fileId, phase, Item);
  }

  /** Never lowers a total already set (a cancel closing a phase after a retried slice queued more). */
  async setBatchTotal(fileId: string, phase: string, batches: number): Promise<PhaseState> {
    try {
      return await this.update(
        fileId,
        phase,
        'SET batches = :batches, expiresAt = :expiresAt',
        { ':batches': batches },
        undefined,
        'attribute_not_exists(batches) OR batches <= :batches',
      );
    } catch (error) {
      if (isConditionFailure(error)) return this.read(fileId, phase);
      throw error;
    }
  }

  countAnswer(answer: CallAnswer): Promise<PhaseState> {
    const { update, retryLater } = carriedOver(answer.outcomes);
    return this.update(
      answer.fileId,
      answer.phase,
      'ADD answered :one, #update :update, retryLater :retryLater, calls :calls SET answeredAt = :now, expiresAt = :expiresAt',
      {
        ':one': 1,
        ':update': update,
        ':retryLater': retryLater,
        ':calls': answer.attempts,
        ':now': new Date().toISOString(),
      },
      { '#update': 'update' },
    );
  }

  storeTaskToken(fileId: string, phase: string, taskToken: string): Promise<PhaseState> {
    return this.update(fileId, phase, 'SET taskToken = :token, expiresAt = :expiresAt', { ':token': taskToken });
  }

  async recount(fileId: string, phase: string, expected: number): Promise<PhaseState | 'moved'> {
    let answered = 0;
    let update = 0;
    let retryLater = 0;
    let calls = 0;
    for await (const answer of this.answers.answers(fileId, phase)) {
      const carried = carriedOver(answer.outcomes);
      answered++;
      calls += answer.attempts;
      update += carried.update;
      retryLater += carried.retryLater;
    }
    try {
      return await this.update(
        fileId,
        phase,
        'SET answered = :answered, #update = :update, retryLater = :retryLater, calls = :calls, recountedAt = :now, expiresAt = :expiresAt',
        {
          ':answered': answered,
          ':update': update,
          ':retryLater': retryLater,
          ':calls': calls,
          ':expected': expected,
          ':zero': 0,
          ':now': new Date().toISOString(),
        },
        { '#update': 'update' },
        '(attribute_not_exists(answered) AND :expected = :zero) OR answered = :expected',
      );
    } catch (error) {
      if (isConditionFailure(error)) return 'moved';
      throw error;
    }
  }

  private key(fileId: string, phase: string) {
    return { pk: fileKey(fileId), sk: phaseKey(phase) };
  }

  /** Every expression sets `expiresAt = :expiresAt`; the value is added here. */
  private async update(
    fileId: string,
    phase: string,
    expression: string,
    values: Record<string, unknown>,
    names?: Record<string, string>,
    condition?: string,
  ): Promise<PhaseState> {
    const { Attributes } = await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(fileId, phase),
        UpdateExpression: expression,
        ExpressionAttributeValues: { ...values, ':expiresAt': ledgerExpiresAt(this.retention) },
        ...(names ? { ExpressionAttributeNames: names } : {}),
        ...(condition ? { ConditionExpression: condition } : {}),
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toState(fileId, phase, Attributes);
  }
}

function toState(fileId: string, phase: string, item: Record<string, unknown> | undefined): PhaseState {
  return {
    fileId,
    phase,
    ...(typeof item?.batches === 'number' ? { batches: item.batches } : {}),
    answered: Number(item?.answered ?? 0),
    update: Number(item?.update ?? 0),
    retryLater: Number(item?.retryLater ?? 0),
    calls: Number(item?.calls ?? 0),
    ...(typeof item?.taskToken === 'string' ? { taskToken: item.taskToken } : {}),
  };
}
