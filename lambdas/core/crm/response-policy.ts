import { z } from 'zod';

export const CRM_OPERATIONS = ['ADD_CUST', 'UPD_CUST', 'ADD_TRX'] as const;
export type CrmOperation = (typeof CRM_OPERATIONS)[number];

/** One per-record result of a `200` answer (crm-api.md, Responses). */
export const CrmRecordResultSchema = z.object({
  index: z.number().int().min(0),
  code: z.number().int(),
  status: z.string(),
  crmId: z.string().optional(),
  error: z.string().optional(),
  message: z.string().optional(),
});
export type CrmRecordResult = z.infer<typeof CrmRecordResultSchema>;

export const CrmCallResponseSchema = z.object({ results: z.array(CrmRecordResultSchema) });

/**
 * What happens to one record after an answer:
 * - `succeeded`: terminal.
 * - `retry-with-update`: ADD_CUST said the customer exists (8006): send it again with UPD_CUST.
 * - `retry-later`: ADD_TRX said the customer is not found (4404): try again after a delay, bounded attempts.
 * - `failed`: terminal, no retry; the reason is kept.
 */
export type RecordAction = 'succeeded' | 'retry-with-update' | 'retry-later' | 'failed';

interface RecordRule {
  readonly operation: CrmOperation;
  readonly code: number;
  /** Matches only this status (`OK` / `ERROR`) when given. */
  readonly status?: string;
  /** Matches only this error name when given. */
  readonly error?: string;
  readonly action: RecordAction;
  /** The failure reason reports count it under, where the code alone does not say it. */
  readonly reason?: string;
}

/** The per-record table of crm-api.md, row for row; the first match wins. Anything else: failed, code and error kept. */
export const RECORD_RULES: readonly RecordRule[] = [
  { operation: 'ADD_CUST', code: 200, status: 'OK', action: 'succeeded' },
  { operation: 'ADD_CUST', code: 8006, action: 'retry-with-update' },
  { operation: 'ADD_CUST', code: 3217, action: 'failed' },
  { operation: 'UPD_CUST', code: 200, status: 'OK', action: 'succeeded' },
  {
    operation: 'UPD_CUST',
    code: 200,
    status: 'ERROR',
    error: 'CONFLICTING_PROFILE',
    action: 'failed',
    reason: 'CONFLICTING_PROFILE',
  },
  { operation: 'UPD_CUST', code: 3217, action: 'failed' },
  { operation: 'ADD_TRX', code: 200, status: 'OK', action: 'succeeded' },
  { operation: 'ADD_TRX', code: 624, action: 'failed' },
  { operation: 'ADD_TRX', code: 4404, action: 'retry-later' },
];

export interface RecordDecision {
  readonly action: RecordAction;
  /** For `failed` (and for retries, should they run out): the key reports count failures by. */
  readonly reason?: string;
  readonly code: number;
  readonly error?: string;
}

/**
 * The action for one record's result. The reason is the code as a string (`"3217"`), or the error name
 * where the code does not say it (`CONFLICTING_PROFILE`, or any error under a 200).
 */
export function decideRecord(operation: CrmOperation, result: CrmRecordResult): RecordDecision {
  const rule = RECORD_RULES.find(
    (r) =>
      r.operation === operation &&
      r.code === result.code &&
      (r.status === undefined || r.status === result.status) &&
      (r.error === undefined || r.error === result.error),
  );
  const action = rule?.action ?? 'failed';
  const reason =
    action === 'succeeded'
      ? undefined
      : (rule?.reason ?? (result.code === 200 && result.error ? result.error : String(result.code)));
  return {
    action,
    code: result.code,
    ...(reason === undefined ? {} : { reason }),
    ...(result.error ? { error: result.error } : {}),
  };
}

/**
 * What happens to a whole call:
 * - `per-record`: a 200 whose results match the request: each record by {@link decideRecord}.
 * - `fail-all`: 400, the request was malformed: every record fails (a pipeline bug: alarm).
 * - `circuit-open`: 401/403, credentials rejected: stop calling; records stay pending, never failed.
 * - `halt`: 409 or an unexpected status: a pipeline bug; records stay pending, alarm.
 * - `throttled`: 429: wait at least Retry-After, then the same call with the same key.
 * - `transient`: 5xx, timeout, reset, or a 200 that does not match the request: back off and retry, bounded.
 */
export type CallAction = 'per-record' | 'fail-all' | 'circuit-open' | 'halt' | 'throttled' | 'transient';

/** The whole-call table of crm-api.md by HTTP status. */
export const CALL_RULES: Readonly<Record<number, CallAction>> = {
  200: 'per-record',
  400: 'fail-all',
  401: 'circuit-open',
  403: 'circuit-open',
  409: 'halt',
  429: 'throttled',
  500: 'transient',
  502: 'transient',
  503: 'transient',
  504: 'transient',
};

/** The action for an HTTP status; one the contract does not name is transient if 5xx, else a halt. */
export function decideCall(httpStatus: number): CallAction {
  return CALL_RULES[httpStatus] ?? (httpStatus >= 500 && httpStatus <= 599 ? 'transient' : 'halt');
}

/**
 * Checks a 200 body against the request: one result per record, indexes 0..n-1 each once. Anything else is
 * a transient failure (crm-api.md), so the call is retried with the same key.
 */
export function parseCallResults(body: unknown, recordCount: number): CrmRecordResult[] | undefined {
  const parsed = CrmCallResponseSchema.safeParse(body);
  if (!parsed.success || parsed.data.results.length !== recordCount) return undefined;
  const byIndex: CrmRecordResult[] = [];
  for (const result of parsed.data.results) {
    if (result.index >= recordCount || byIndex[result.index]) return undefined;
    byIndex[result.index] = result;
  }
  return byIndex;
}
