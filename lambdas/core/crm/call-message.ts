import { z } from 'zod';
import { CrmCustomerSchema, CrmTransactionSchema } from '../files/record-schemas';
import type { PlannedBatch } from '../files/plan-batches';
import type { FileKind } from '../files/record-schemas';
import { CRM_OPERATIONS, type CrmOperation } from './response-policy';

/**
 * Phases of a file's workflow: ADD first, UPD for 8006 customers, RETRY<n> for 4404 transactions; then, for a
 * finished file retried by code (POST /v1/files/{fileId}/retry), REDO<round> and, for its 8006 customers,
 * REDO<round>UPD. Each name makes its own Idempotency-Keys (file, phase, batch).
 */
export const PHASE_PATTERN = /^(ADD|UPD|RETRY[1-9]\d?|REDO[1-9]\d{0,3}(UPD)?)$/;

/** A redo round's phases: REDO<round> (the records retried) and REDO<round>UPD (its 8006 customers). */
export const REDO_PHASE = /^REDO([1-9]\d{0,3})(UPD)?$/;

/**
 * One CRM call waiting in the call queue: a batch of one phase of one file, with each record's source line.
 * The same message always makes the same request body, so its Idempotency-Key (file, phase, batch) holds.
 */
export const CallMessageSchema = z
  .object({
    fileId: z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be the file SHA-256 (64 hex digits)' }),
    phase: z.string().regex(PHASE_PATTERN, { error: 'must be ADD, UPD, RETRY<n>, REDO<n> or REDO<n>UPD' }),
    batchIndex: z.number().int().min(0),
    operation: z.enum(CRM_OPERATIONS),
    lines: z.array(z.number().int().min(1)).min(1).max(100),
    records: z.array(z.record(z.string(), z.unknown())).min(1).max(100),
  })
  .superRefine((message, ctx) => {
    if (message.lines.length !== message.records.length) {
      ctx.addIssue({ code: 'custom', path: ['lines'], message: 'one line per record' });
    }
    const schema = message.operation === 'ADD_TRX' ? CrmTransactionSchema : CrmCustomerSchema;
    message.records.forEach((record, index) => {
      const parsed = schema.safeParse(record);
      if (!parsed.success) {
        ctx.addIssue({
          code: 'custom',
          path: ['records', index],
          message: parsed.error.issues[0]?.message ?? 'invalid record',
        });
      }
    });
  });

export type CallMessage = z.infer<typeof CallMessageSchema>;

/** The CRM body of a message: `{"records":[...]}` in message order. */
export const callBody = (message: CallMessage) => JSON.stringify({ records: message.records });

/**
 * The operation of each phase: users go ADD_CUST then UPD_CUST (a redo round likewise: REDO<n>, then
 * REDO<n>UPD); transactions go ADD_TRX in every phase.
 */
export function operationFor(kind: FileKind, phase: string): CrmOperation {
  if (!PHASE_PATTERN.test(phase)) throw new RangeError(`not a phase: ${phase}`);
  if (kind === 'transactions') return 'ADD_TRX';
  const redo = REDO_PHASE.exec(phase);
  if (phase === 'ADD' || (redo && !redo[2])) return 'ADD_CUST';
  if (phase === 'UPD' || redo) return 'UPD_CUST';
  throw new RangeError(`users have no ${phase} phase`);
}

/**
 * The queue message of a planned batch, as text: the records' JSON is spliced in as serialised once by
 * prepare, never parsed and written again. It parses as a {@link CallMessage}.
 */
export function callMessageBody(
  batch: PlannedBatch,
  meta: { fileId: string; phase: string; operation: CrmOperation },
): string {
  // Spliced in unescaped, so they must be the plain formats the schema demands.
  if (!/^[0-9a-f]{64}$/.test(meta.fileId) || !PHASE_PATTERN.test(meta.phase)) {
    throw new RangeError(`not a file id and phase: ${meta.fileId} ${meta.phase}`);
  }
  const lines = batch.items.map((item) => item.line).join(',');
  const records = batch.items.map((item) => item.json).join(',');
  return `{"fileId":"${meta.fileId}","phase":"${meta.phase}","batchIndex":${batch.index},"operation":"${meta.operation}","lines":[${lines}],"records":[${records}]}`;
}

/** One queued call: its message body, and how many records it carries (a message attribute, for counting). */
export interface QueuedCall {
  readonly body: string;
  readonly records: number;
  /** Hidden this long first (at most 900 s): a paused file's call held back. */
  readonly delaySeconds?: number;
  /**
   * The call may have reached the CRM already (a copy of a redelivered message held back): a cancel must not
   * answer it CANCELLED, as it may have been applied; it is made, and the CRM replays its answer.
   */
  readonly mayHaveBeenSent?: boolean;
}

/** The port to the call queue (SQS): one message per call; sent in order, at least once. */
export interface CallQueue {
  send(calls: readonly QueuedCall[]): Promise<void>;
}

/** The message attribute that carries a call's number of records. */
export const RECORDS_ATTRIBUTE = 'Records';

/** The message attribute of a held-back copy whose call may have reached the CRM already (`'true'`). */
export const MAY_HAVE_BEEN_SENT_ATTRIBUTE = 'MayHaveBeenSent';

/** The port to the queue's redelivery: a message whose call failed transiently is hidden for its back-off. */
export interface MessageRedelivery {
  delay(receiptHandle: string, seconds: number): Promise<void>;
}
