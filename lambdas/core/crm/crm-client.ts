import { ErrorNames, PipelineError } from '../errors';
import { backoffMs } from './backoff';
import { decideCall, decideRecord, parseCallResults, type CrmOperation, type RecordDecision } from './response-policy';

/** The names of whole-call failures, from the one table of error names. */
export type CrmErrorName =
  | typeof ErrorNames.crmAuthRejected
  | typeof ErrorNames.crmConflict
  | typeof ErrorNames.crmThrottled
  | typeof ErrorNames.crmUnavailable;

/** A call that did not get per-record answers: its records stay pending (never failed for this reason). */
export class CrmCallError extends PipelineError {
  constructor(
    override readonly name: CrmErrorName,
    message: string,
    readonly status?: number,
  ) {
    super(name, message);
  }
}

const OPERATION_ROUTES: Record<CrmOperation, { method: string; path: string }> = {
  ADD_CUST: { method: 'POST', path: '/v1/customers' },
  UPD_CUST: { method: 'PUT', path: '/v1/customers' },
  ADD_TRX: { method: 'POST', path: '/v1/transactions' },
};

const KEY_CHARACTERS = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The Idempotency-Key of a logical request: the same file, phase and batch always give the same key, so every
 * retry (in process, by SQS redelivery, after a redrive) is recognised by the CRM and never applied twice.
 */
export function idempotencyKey(fileSha256: string, phase: string, batchIndex: number): string {
  const key = `${fileSha256}:${phase}:${batchIndex}`;
  if (!KEY_CHARACTERS.test(key)) throw new RangeError(`not a valid Idempotency-Key: ${key}`);
  return key;
}

export interface CrmCall {
  readonly operation: CrmOperation;
  readonly idempotencyKey: string;
  /** `{"records":[...]}`, byte for byte the same on every retry. */
  readonly body: string;
  readonly recordCount: number;
  /**
   * Asked once the limiter has given the call's first attempt its slot, just before it is sent: a throw stops it
   * there (an operator paused or cancelled its file while it waited for the slot). Never before a retry.
   */
  readonly beforeSend?: () => Promise<void>;
}

export type CallResult =
  | {
      readonly kind: 'answered';
      /** One decision per record, in request order. */
      readonly decisions: readonly RecordDecision[];
      readonly attempts: number;
      readonly replayed: boolean;
    }
  | {
      /** 400: the request was malformed; every record fails (a pipeline bug: alarm). */
      readonly kind: 'rejected';
      readonly status: number;
      readonly message: string;
      readonly attempts: number;
    };

/** What one HTTP attempt did, for metrics and logs (no record data). */
export interface AttemptReport {
  readonly operation: CrmOperation;
  /** HTTP status, or `timeout` / `network` when there was no answer. */
  readonly status: number | 'timeout' | 'network';
  readonly latencyMs: number;
  readonly attempt: number;
  readonly replayed: boolean;
  /** Time spent in the rate limiter before the attempt. */
  readonly limiterWaitMs: number;
}

export interface CrmClientOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly timeoutMs: number;
  /** Retries after the first attempt, for transient failures and 429s. */
  readonly retryAttempts: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** Waits for the global rate limiter; called before every attempt, so retries are paced too. */
  readonly acquire?: () => Promise<unknown>;
  readonly onAttempt?: (report: AttemptReport) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly fetch?: typeof fetch;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `Retry-After` as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The CRM's client (crm-api.md). One `send` is one logical request: it is retried under the same
 * Idempotency-Key on transient failures (5xx, timeout, reset, a 200 that does not match the request) with
 * exponential back-off and full jitter, and on 429 after at least Retry-After, within `retryAttempts`. A 401
 * or 403 opens the circuit: this client then makes no more calls. Connections are kept alive (fetch's pool).
 * The retry loop is ours, not a package's: each attempt must pass the rate limiter and the policy table.
 */
export class CrmClient {
  private circuitOpen = false;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: CrmClientOptions) {
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    this.fetch = options.fetch ?? fetch;
  }

  /** True once the CRM rejected the credentials: no further call is made. */
  get isCircuitOpen(): boolean {
    return this.circuitOpen;
  }

  /** Full jitter: a random wait between 0 and the exponential ceiling of this retry. */
  private backoffMs(retry: number): number {
    return backoffMs(retry, this.options.retryBaseDelayMs, this.options.retryMaxDelayMs, this.random);
  }

  async send(call: CrmCall): Promise<CallResult> {
    const route = OPERATION_ROUTES[call.operation];
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}${route.path}`;
    let lastProblem = '';
    let lastKind: CrmErrorName = ErrorNames.crmUnavailable;
    for (let attempt = 1; attempt <= this.options.retryAttempts + 1; attempt++) {
      if (this.circuitOpen)
        throw new CrmCallError(ErrorNames.crmAuthRejected, 'CRM credentials were rejected: circuit open');
      const waitStarted = Date.now();
      await this.options.acquire?.();
      // Only before the first attempt: once one was made, the call may have been applied; it goes on to its answer.
      if (attempt === 1) await call.beforeSend?.();
      const started = Date.now();
      const limiterWaitMs = started - waitStarted;
      let response: Response;
      let text: string;
      try {
        response = await this.fetch(url, {
          method: route.method,
          headers: {
            authorization: `Bearer ${this.options.token}`,
            'content-type': 'application/json',
            'idempotency-key': call.idempotencyKey,
          },
          body: call.body,
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        text = await response.text();
      } catch (error) {
        const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
        this.options.onAttempt?.({
          operation: call.operation,
          status: timedOut ? 'timeout' : 'network',
          latencyMs: Date.now() - started,
          attempt,
          replayed: false,
          limiterWaitMs,
        });
        lastKind = ErrorNames.crmUnavailable;
        lastProblem = timedOut
          ? `no answer within ${this.options.timeoutMs} ms`
          : `connection failed (${causeOf(error)})`;
        if (attempt <= this.options.retryAttempts) await this.sleep(this.backoffMs(attempt));
        continue;
      }
      const replayed = response.headers.get('idempotent-replayed') === 'true';
      this.options.onAttempt?.({
        operation: call.operation,
        status: response.status,
        latencyMs: Date.now() - started,
        attempt,
        replayed,
        limiterWaitMs,
      });
      const action = decideCall(response.status);
      switch (action) {
        case 'per-record': {
          const results = parseCallResults(safeJson(text), call.recordCount);
          if (results) {
            const decisions = results.map((result) => decideRecord(call.operation, result));
            return { kind: 'answered', decisions, attempts: attempt, replayed };
          }
          lastKind = ErrorNames.crmUnavailable;
          lastProblem = 'a 200 whose results do not match the request';
          break;
        }
        case 'fail-all':
          return { kind: 'rejected', status: response.status, message: messageOf(text), attempts: attempt };
        case 'circuit-open':
          this.circuitOpen = true;
          throw new CrmCallError(
            ErrorNames.crmAuthRejected,
            `CRM rejected the credentials (${response.status})`,
            response.status,
          );
        case 'halt':
          throw new CrmCallError(
            ErrorNames.crmConflict,
            response.status === 409
              ? 'Idempotency-Key reused with another body (409): a pipeline bug, records stay pending'
              : `unexpected CRM status ${response.status}: records stay pending`,
            response.status,
          );
        case 'throttled': {
          lastKind = ErrorNames.crmThrottled;
          lastProblem = 'throttled (429)';
          if (attempt <= this.options.retryAttempts) {
            const after = retryAfterMs(response.headers.get('retry-after')) ?? 0;
            await this.sleep(Math.max(after, this.backoffMs(attempt)));
          }
          continue;
        }
        case 'transient':
          lastKind = ErrorNames.crmUnavailable;
          lastProblem = `CRM answered ${response.status}`;
          break;
      }
      if (attempt <= this.options.retryAttempts) await this.sleep(this.backoffMs(attempt));
    }
    throw new CrmCallError(lastKind, `${lastProblem}; gave up after ${this.options.retryAttempts + 1} attempts`);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function messageOf(text: string): string {
  const body = safeJson(text) as { message?: unknown } | undefined;
  return typeof body?.message === 'string' ? body.message : text.slice(0, 200);
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
