import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CallAnswer } from '../../core/crm/dispatch-call';
import {
  comparePhases,
  OutcomeCounter,
  tallyOutcomes,
  type PhaseCounters,
  type PhaseState,
} from '../../core/ledger/phase-counters';
import type { PhaseTallies } from '../../core/operations/ports';
import type { DynamoDbCallAnswers } from './dynamodb-call-answers';
import { isConditionFailure } from './dynamodb-errors';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';
import { fileKey, phaseKey } from './ledger-keys';

/** A failure reason's counter: one attribute per reason on the phase's item, so an answer is counted in one update. */
const FAILURE_PREFIX = 'fail#';

/**
 * Phase counters in the ledger table: one item per (file, phase), `sk` = `phase#<phase>`, atomic updates only.
 * Besides batches and calls, the item counts the records its answers ended (`succeeded`, `failed`, and one
 * `fail#<reason>` attribute per failure reason), for the live file view. Every update moves the item's expiry
 * to `retention` after it.
 */
export class DynamoDbPhaseCounters implements PhaseCounters, PhaseTallies {
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

  /** Every phase of the file, in phase order: one strongly consistent Query of its `phase#` items. */
  async phases(fileId: string): Promise<PhaseState[]> {
    const states: PhaseState[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': fileKey(fileId), ':prefix': PHASE_PREFIX },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      startKey = page.LastEvaluatedKey;
      for (const item of page.Items ?? [])
        states.push(toState(fileId, String(item.sk).slice(PHASE_PREFIX.length), item));
    } while (startKey);
    return states.sort((a, b) => comparePhases(a.phase, b.phase));
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

  /** One atomic update: the batch, its calls and its records by outcome (ADD of 0 keeps every counter present). */
  countAnswer(answer: CallAnswer): Promise<PhaseState> {
    const tally = tallyOutcomes(answer.outcomes);
    const reasons = reasonAttributes(Object.keys(tally.failures));
    return this.update(
      answer.fileId,
      answer.phase,
      `ADD answered :one, #update :update, retryLater :retryLater, calls :calls, succeeded :succeeded, failed :failed${reasons
        .map(({ name, value }) => `, ${name} ${value}`)
        .join('')} SET answeredAt = :now, expiresAt = :expiresAt`,
      {
        ':one': 1,
        ':update': tally.update,
        ':retryLater': tally.retryLater,
        ':calls': answer.attempts,
        ':succeeded': tally.succeeded,
        ':failed': tally.failed,
        ...Object.fromEntries(reasons.map(({ reason, value }) => [value, tally.failures[reason]])),
        ':now': new Date().toISOString(),
      },
      {
        '#update': 'update',
        ...Object.fromEntries(reasons.map(({ reason, name }) => [name, FAILURE_PREFIX + reason])),
      },
    );
  }

  storeTaskToken(fileId: string, phase: string, taskToken: string): Promise<PhaseState> {
    return this.update(fileId, phase, 'SET taskToken = :token, expiresAt = :expiresAt', { ':token': taskToken });
  }

  /**
   * Sets every counter from the stored answers. A reason counted before but found in no stored answer now is
   * removed, so no old count survives: the item is read first, and the update's condition on `answered` fails if
   * an answer was counted between that read and the update.
   */
  async recount(fileId: string, phase: string, expected: number): Promise<PhaseState | 'moved'> {
    let answered = 0;
    let calls = 0;
    const counter = new OutcomeCounter();
    for await (const answer of this.answers.answers(fileId, phase)) {
      answered++;
      calls += answer.attempts;
      counter.add(answer.outcomes);
    }
    const tally = counter.tally();
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(fileId, phase), ConsistentRead: true }),
    );
    const found = Object.keys(tally.failures);
    const stale = Object.keys(Item ?? {})
      .filter(
        (name) => name.startsWith(FAILURE_PREFIX) && !Object.hasOwn(tally.failures, name.slice(FAILURE_PREFIX.length)),
      )
      .map((name) => name.slice(FAILURE_PREFIX.length));
    const reasons = reasonAttributes([...found, ...stale]);
    const setReasons = reasons.slice(0, found.length);
    const removeReasons = reasons.slice(found.length);
    try {
      return await this.update(
        fileId,
        phase,
        `SET answered = :answered, #update = :update, retryLater = :retryLater, calls = :calls, succeeded = :succeeded, failed = :failed${setReasons
          .map(({ name, value }) => `, ${name} = ${value}`)
          .join('')}, recountedAt = :now, expiresAt = :expiresAt${
          removeReasons.length > 0 ? ` REMOVE ${removeReasons.map(({ name }) => name).join(', ')}` : ''
        }`,
        {
          ':answered': answered,
          ':update': tally.update,
          ':retryLater': tally.retryLater,
          ':calls': calls,
          ':succeeded': tally.succeeded,
          ':failed': tally.failed,
          ...Object.fromEntries(setReasons.map(({ reason, value }) => [value, tally.failures[reason]])),
          ':expected': expected,
          ':zero': 0,
          ':now': new Date().toISOString(),
        },
        {
          '#update': 'update',
          ...Object.fromEntries(reasons.map(({ reason, name }) => [name, FAILURE_PREFIX + reason])),
        },
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

const PHASE_PREFIX = phaseKey('');

/** Placeholders for reason attributes: a reason is any text (a CRM's error name), never part of an expression. */
const reasonAttributes = (reasons: readonly string[]) =>
  reasons.map((reason, i) => ({ reason, name: `#fail${i}`, value: `:fail${i}` }));

function toState(fileId: string, phase: string, item: Record<string, unknown> | undefined): PhaseState {
  const failures = Object.fromEntries(
    Object.entries(item ?? {})
      .filter(([name, count]) => name.startsWith(FAILURE_PREFIX) && Number(count) > 0)
      .map(([name, count]) => [name.slice(FAILURE_PREFIX.length), Number(count)]),
  );
  return {
    fileId,
    phase,
    ...(typeof item?.batches === 'number' ? { batches: item.batches } : {}),
    answered: Number(item?.answered ?? 0),
    update: Number(item?.update ?? 0),
    retryLater: Number(item?.retryLater ?? 0),
    calls: Number(item?.calls ?? 0),
    succeeded: Number(item?.succeeded ?? 0),
    failed: Number(item?.failed ?? 0),
    failures,
    ...(typeof item?.taskToken === 'string' ? { taskToken: item.taskToken } : {}),
  };
}
