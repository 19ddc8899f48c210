import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import seedrandom from 'seedrandom';
import { z } from 'zod';
import type { CrmOperation } from '../../core/crm/response-policy';
import type { CrmCustomer, CrmTransaction } from '../../core/files/record-schemas';

/** Faults a test or a local run switches on (crm-api.md, Simulator extras). */
export interface SimulatorFaults {
  /** Added before each API call is handled. */
  readonly latencyMs: number;
  /** Share (0..1) of API calls answered 500/502/503/504 without applying anything. */
  readonly serverErrorRate: number;
  /** Share (0..1) of API calls applied but whose answer is dropped (the connection is cut). */
  readonly dropRate: number;
  /** Until this time (epoch ms) every API call is answered 429. */
  readonly throttleUntilMs: number;
}

export interface CrmSimulatorOptions {
  /** Bearer token the simulator accepts. @default 'sim-token' */
  readonly token?: string;
  /** Calls allowed in any rolling window. @default 1000 */
  readonly callsPerWindow?: number;
  /** Length of the rolling window. @default 60000 */
  readonly windowMs?: number;
  readonly faults?: Partial<SimulatorFaults>;
  /** Seed of the fault dice. @default 1 */
  readonly seed?: string | number;
  /** @default 0 (a free port) */
  readonly port?: number;
  /** Customers that exist before the load (the "existing customer" of a demo). */
  readonly customers?: readonly CrmCustomer[];
}

export interface SimulatorStats {
  calls: Record<CrmOperation, number>;
  /** API calls accepted under the limit (replays included); 429s and 401s are not calls. */
  callsAccepted: number;
  throttled: number;
  unauthorized: number;
  /** The most accepted calls seen in any rolling window of `windowMs`. */
  maxCallsInWindow: number;
  windowMs: number;
  callsPerWindow: number;
  /** Most records seen in one call. */
  maxRecordsInCall: number;
  recordsApplied: number;
  customersCreated: number;
  customersUpdated: number;
  transactionsCreated: number;
  replays: number;
  idempotencyConflicts: number;
  serverErrorsServed: number;
  answersDropped: number;
  /** Distinct transactions stored more than once (the pipeline must keep this at 0). */
  transactionsAppliedMoreThanOnce: number;
  /** When the first and the last accepted call came (epoch ms): the span the calls took. */
  firstCallAt?: number;
  lastCallAt?: number;
}

export interface CrmSimulator {
  readonly url: string;
  readonly token: string;
  stats(): SimulatorStats;
  setFaults(faults: Partial<SimulatorFaults>): void;
  /** Stored transaction ids and how often each was applied. */
  transactionCounts(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

const OPERATIONS: Record<string, CrmOperation> = {
  'POST /v1/customers': 'ADD_CUST',
  'PUT /v1/customers': 'UPD_CUST',
  'POST /v1/transactions': 'ADD_TRX',
};

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** Customers with an email at this domain are refused as invalid data (3217): a sim rule to show that outcome. */
export const SIM_INVALID_EMAIL_DOMAIN = '@invalid.example';
/**
 * Transactions whose id holds this word are answered 624 (incomplete parameters), as if a field were missing:
 * the pipeline validates required fields before sending, so a sim rule is the only way to show that outcome.
 */
export const SIM_INCOMPLETE_TRANSACTION = 'INCOMPLETE';

const CustomerShape = z.object({
  customerId: z.string().min(1),
  firstName: z.string().min(1),
  lastName: z.string().min(1),
  email: z.string().includes('@'),
  phone: z.string().optional(),
  country: z.string().length(2),
  createdAt: z.iso.datetime({ offset: true, local: false }),
});
const TRANSACTION_REQUIRED = ['transactionId', 'customerId', 'amount', 'currency', 'occurredAt'] as const;
const TransactionShape = z.object({
  transactionId: z.string().min(1),
  customerId: z.string().min(1),
  amount: z.string().regex(/^-?\d+\.\d{2}$/),
  currency: z.string().length(3),
  occurredAt: z.iso.datetime({ offset: true, local: false }),
  type: z.enum(['purchase', 'refund', 'adjustment']).optional(),
  merchant: z.string().max(200).optional(),
});

type Result = Record<string, unknown>;
interface StoredAnswer {
  readonly bodyHash: string;
  readonly status: number;
  readonly body: string;
  readonly expiresAt: number;
}

/**
 * Starts the CRM simulator on 127.0.0.1: the whole contract of crm-api.md (auth, idempotency with replay,
 * the rolling-window limit with Retry-After, the per-record codes) plus fault switches and `/_sim/stats`.
 * Its own data rules, to show each outcome: a customer that exists -> 8006 on ADD_CUST; an update whose email
 * belongs to another customer -> CONFLICTING_PROFILE; an email at `invalid.example` -> 3217; a transaction
 * missing a required field, or whose id holds `INCOMPLETE` -> 624; a transaction for an unknown customer -> 4404.
 */
export async function startCrmSimulator(options: CrmSimulatorOptions = {}): Promise<CrmSimulator> {
  const token = options.token ?? 'sim-token';
  const limit = options.callsPerWindow ?? 1000;
  const windowMs = options.windowMs ?? 60_000;
  let faults: SimulatorFaults = {
    latencyMs: 0,
    serverErrorRate: 0,
    dropRate: 0,
    throttleUntilMs: 0,
    ...options.faults,
  };
  const dice = seedrandom.alea(String(options.seed ?? 1));

  const customers = new Map<string, CrmCustomer>();
  const customerByEmail = new Map<string, string>();
  const transactions = new Map<string, number>();
  const answers = new Map<string, StoredAnswer>();
  let nextId = 1;
  // Accepted call times within the last window, oldest first (a queue with a moving head).
  const recent: number[] = [];
  let recentHead = 0;
  const stats: SimulatorStats = {
    calls: { ADD_CUST: 0, UPD_CUST: 0, ADD_TRX: 0 },
    callsAccepted: 0,
    throttled: 0,
    unauthorized: 0,
    maxCallsInWindow: 0,
    windowMs,
    callsPerWindow: limit,
    maxRecordsInCall: 0,
    recordsApplied: 0,
    customersCreated: 0,
    customersUpdated: 0,
    transactionsCreated: 0,
    replays: 0,
    idempotencyConflicts: 0,
    serverErrorsServed: 0,
    answersDropped: 0,
    transactionsAppliedMoreThanOnce: 0,
  };

  const putCustomer = (customer: CrmCustomer) => {
    const previous = customers.get(customer.customerId);
    if (previous) customerByEmail.delete(previous.email.toLowerCase());
    customers.set(customer.customerId, customer);
    customerByEmail.set(customer.email.toLowerCase(), customer.customerId);
  };
  for (const customer of options.customers ?? []) putCustomer(customer);

  const inWindow = (now: number) => {
    while (recentHead < recent.length && (recent[recentHead] as number) <= now - windowMs) recentHead++;
    if (recentHead > 10_000) {
      recent.splice(0, recentHead);
      recentHead = 0;
    }
    return recent.length - recentHead;
  };

  const applyCustomer = (operation: CrmOperation, record: unknown): Result => {
    const parsed = CustomerShape.safeParse(record);
    if (!parsed.success || parsed.data.email.toLowerCase().endsWith(SIM_INVALID_EMAIL_DOMAIN)) {
      return { code: 3217, status: 'ERROR', error: 'INVALID_DATA', message: 'invalid source data' };
    }
    const customer = parsed.data as CrmCustomer;
    const existing = customers.get(customer.customerId);
    if (operation === 'ADD_CUST') {
      if (existing)
        return { code: 8006, status: 'ERROR', error: 'CUSTOMER_EXISTS', message: 'customer already exists' };
      putCustomer(customer);
      stats.customersCreated++;
      stats.recordsApplied++;
      return { code: 200, status: 'OK', crmId: `c-${nextId++}` };
    }
    if (!existing) return { code: 4404, status: 'ERROR', error: 'CUSTOMER_NOT_FOUND', message: 'no such customer' };
    const owner = customerByEmail.get(customer.email.toLowerCase());
    if (owner && owner !== customer.customerId) {
      return { code: 200, status: 'ERROR', error: 'CONFLICTING_PROFILE', message: 'email belongs to another customer' };
    }
    putCustomer(customer);
    stats.customersUpdated++;
    stats.recordsApplied++;
    return { code: 200, status: 'OK', crmId: `c-${customer.customerId}` };
  };

  const applyTransaction = (record: unknown): Result => {
    const fields = record && typeof record === 'object' ? (record as Record<string, unknown>) : {};
    const incomplete = String(fields.transactionId ?? '').includes(SIM_INCOMPLETE_TRANSACTION);
    if (incomplete || TRANSACTION_REQUIRED.some((field) => fields[field] === undefined || fields[field] === '')) {
      return { code: 624, status: 'ERROR', error: 'INCOMPLETE_PARAMETERS', message: 'incomplete body parameters' };
    }
    const parsed = TransactionShape.safeParse(record);
    if (!parsed.success) return { code: 3217, status: 'ERROR', error: 'INVALID_DATA', message: 'invalid source data' };
    const transaction = parsed.data as CrmTransaction;
    if (!customers.has(transaction.customerId)) {
      return { code: 4404, status: 'ERROR', error: 'CUSTOMER_NOT_FOUND', message: 'customer not found' };
    }
    const times = (transactions.get(transaction.transactionId) ?? 0) + 1;
    transactions.set(transaction.transactionId, times);
    if (times === 2) stats.transactionsAppliedMoreThanOnce++;
    stats.transactionsCreated++;
    stats.recordsApplied++;
    return { code: 200, status: 'OK', crmId: `t-${nextId++}` };
  };

  const send = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(text);
  };

  const readBody = (request: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) reject(new Error('body too large'));
        else chunks.push(chunk);
      });
      request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      request.on('error', reject);
    });

  async function handleApi(operation: CrmOperation, request: IncomingMessage, response: ServerResponse) {
    if (request.headers.authorization !== `Bearer ${token}`) {
      stats.unauthorized++;
      return send(response, 401, { code: 401, message: 'missing or wrong token' });
    }
    const body = await readBody(request);
    if (faults.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    const key = request.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))) {
      return send(response, 400, { code: 3217, message: 'Idempotency-Key must be 1-128 of [A-Za-z0-9._:-]' });
    }
    const now = Date.now();
    if (now < faults.throttleUntilMs) {
      stats.throttled++;
      return send(
        response,
        429,
        { code: 429, message: 'throttled' },
        { 'retry-after': String(Math.ceil((faults.throttleUntilMs - now) / 1000)) },
      );
    }
    if (inWindow(now) >= limit) {
      stats.throttled++;
      const oldest = recent[recentHead] as number;
      const retryAfterS = Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
      return send(response, 429, { code: 429, message: 'rate limit exceeded' }, { 'retry-after': String(retryAfterS) });
    }
    recent.push(now);
    stats.callsAccepted++;
    stats.firstCallAt ??= now;
    stats.lastCallAt = now;
    stats.calls[operation]++;
    stats.maxCallsInWindow = Math.max(stats.maxCallsInWindow, recent.length - recentHead);

    const bodyHash = createHash('sha256').update(`${operation} ${body}`).digest('hex');
    if (key !== undefined) {
      const stored = answers.get(key);
      if (stored && stored.expiresAt > now) {
        if (stored.bodyHash !== bodyHash) {
          stats.idempotencyConflicts++;
          return send(response, 409, { code: 409, message: 'Idempotency-Key reused with another body' });
        }
        stats.replays++;
        return send(response, stored.status, stored.body, { 'idempotent-replayed': 'true' });
      }
    }
    if (dice() < faults.serverErrorRate) {
      stats.serverErrorsServed++;
      const status = [500, 502, 503, 504][Math.floor(dice() * 4)] as number;
      return send(response, status, { code: status, message: 'simulated failure' });
    }

    let status = 200;
    let answer: unknown;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
    const records = (parsed as { records?: unknown } | undefined)?.records;
    if (!Array.isArray(records) || records.length < 1 || records.length > 100) {
      status = 400;
      answer = { code: 3217, message: 'body must be JSON {"records": [...]} with 1 to 100 records' };
    } else {
      stats.maxRecordsInCall = Math.max(stats.maxRecordsInCall, records.length);
      const results = records.map((record: unknown, index) => ({
        index,
        ...(operation === 'ADD_TRX' ? applyTransaction(record) : applyCustomer(operation, record)),
      }));
      answer = { results };
    }
    const text = JSON.stringify(answer);
    if (key !== undefined) answers.set(key, { bodyHash, status, body: text, expiresAt: now + IDEMPOTENCY_TTL_MS });
    if (dice() < faults.dropRate) {
      stats.answersDropped++;
      request.socket.destroy();
      return;
    }
    send(response, status, text);
  }

  const server: Server = createServer((request, response) => {
    const route = `${request.method} ${(request.url ?? '').split('?')[0]}`;
    const operation = OPERATIONS[route];
    const done = (error: unknown) => {
      if (!response.headersSent) send(response, 500, { code: 500, message: String(error) });
    };
    if (operation) {
      handleApi(operation, request, response).catch(done);
    } else if (route === 'GET /_sim/stats') {
      send(response, 200, stats);
    } else if (route === 'POST /_sim/faults') {
      readBody(request)
        .then((body) => {
          faults = { ...faults, ...(JSON.parse(body) as Partial<SimulatorFaults>) };
          send(response, 200, faults);
        })
        .catch(done);
    } else {
      send(response, 404, { code: 404, message: `no route ${route}` });
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    stats: () => structuredClone(stats),
    setFaults: (change) => {
      faults = { ...faults, ...change };
    },
    transactionCounts: () => transactions,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
