import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { CallAnswer, CallAnswers, OutcomeStatus, RecordOutcome } from '../../core/crm/dispatch-call';
import type { CrmOperation } from '../../core/crm/response-policy';
import { isConditionFailure } from './dynamodb-errors';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';
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

/** How a phase's answers are read back: key ranges queried ahead, in parallel. */
export interface AnswerReadOptions {
  /**
   * Batch indexes per key-range query: an answer of 100 records stores about 3.7 KB, so 250 fill about one
   * 1 MB page. @default 250
   */
  readonly rangeBatches?: number;
  /** Key ranges in flight or waiting to be read at once: memory holds at most this many ranges more. @default 4 */
  readonly rangesAhead?: number;
}

type Item = Record<string, unknown>;

/** Call answers in the ledger table: one item per (file, phase, batch), written once with a conditional put. */
export class DynamoDbCallAnswers implements CallAnswers {
  private readonly documents: DynamoDBDocumentClient;
  private readonly rangeBatches: number;
  private readonly rangesAhead: number;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly options: AnswerReadOptions & LedgerRetention = {},
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
    this.rangeBatches = options.rangeBatches ?? 250;
    this.rangesAhead = options.rangesAhead ?? 4;
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
            expiresAt: ledgerExpiresAt(this.options),
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
   * A phase's answers in batch order (which is line order), strongly consistent. A small phase is one request.
   * A large one is read as fixed ranges of batch indexes, several queried ahead at once while the caller takes
   * the one before (a sequential Query waits on each 1 MB page), so memory holds a few ranges however large the
   * file. After the first short range (the end, or a gap), one open-ended query reads whatever lies beyond, so
   * every stored answer is yielded once, in key order. `fromBatch` skips the batches before it (a finalise
   * slice going on from its checkpoint).
   */
  async *answers(fileId: string, phase: string, fromBatch = 0): AsyncIterable<CallAnswer> {
    const pk = fileKey(fileId);
    const end = phaseEnd(phase);
    const first = await this.queryRange(pk, answerKey(phase, fromBatch), end, this.rangeBatches);
    for (const item of first.items) yield toAnswer(fileId, phase, item);
    if (!first.more) return;

    let from = batchIndexOf(phase, first.items[first.items.length - 1] as Item) + 1;
    const ahead: Promise<{ items: Item[] }>[] = [];
    const launch = () => {
      const range = this.queryRange(pk, answerKey(phase, from), answerKey(phase, from + this.rangeBatches - 1));
      // Handled here too: a range still in flight when the caller stops must not reject unobserved.
      range.catch(() => undefined);
      ahead.push(range);
      from += this.rangeBatches;
    };
    // Slow start: one range, then twice as many ahead after each full one, so a phase just past one range
    // does not cost `rangesAhead` empty queries.
    let window = 1;
    let open = true;
    launch();
    while (ahead.length > 0) {
      const { items } = await (ahead.shift() as Promise<{ items: Item[] }>);
      if (items.length < this.rangeBatches) open = false;
      else window = Math.min(window * 2, this.rangesAhead);
      while (open && ahead.length < window) launch();
      for (const item of items) yield toAnswer(fileId, phase, item);
    }
    for await (const page of this.pages(pk, answerKey(phase, from), end)) {
      for (const item of page) yield toAnswer(fileId, phase, item);
    }
  }

  /** The items of one key range, up to `limit`; `more` when the range may hold more past them. */
  private async queryRange(pk: string, low: string, high: string, limit = Infinity) {
    const items: Item[] = [];
    let more = false;
    for await (const page of this.pages(pk, low, high, limit)) {
      items.push(...page);
      more = page.more;
      if (items.length >= limit) break;
    }
    return { items, more };
  }

  /** Pages of `low <= sk <= high`, in key order; with a limit, stops once that many items are read. */
  private async *pages(pk: string, low: string, high: string, limit = Infinity) {
    let startKey: Item | undefined;
    let read = 0;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :low AND :high',
          ExpressionAttributeValues: { ':pk': pk, ':low': low, ':high': high },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          ...(Number.isFinite(limit) ? { Limit: limit - read } : {}),
        }),
      );
      startKey = page.LastEvaluatedKey;
      const items = page.Items ?? [];
      read += items.length;
      yield Object.assign(items, { more: startKey !== undefined });
    } while (startKey && read < limit);
  }
}

/** Just past every sort key of a phase's answers (`#` + 1 is `$`): RETRY1's range leaves RETRY10's out. */
const phaseEnd = (phase: string) => `${answerPrefix(phase).slice(0, -1)}$`;

const batchIndexOf = (phase: string, item: Item) => Number(String(item.sk).slice(answerPrefix(phase).length));

function toAnswer(fileId: string, phase: string, item: Record<string, unknown>): CallAnswer {
  const stored = JSON.parse(String(item.outcomes)) as StoredOutcome[];
  return {
    fileId,
    phase,
    batchIndex: batchIndexOf(phase, item),
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
