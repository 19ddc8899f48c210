import { z } from 'zod';
import { ISO_COUNTRIES, ISO_CURRENCIES } from './iso-codes';

export const FILE_KINDS = ['users', 'transactions'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
// Linear: leading zeros are dropped after the match (`0*(\d+?)` backtracked quadratically: a 1 MiB amount of
// zeros took minutes).
const AMOUNT_PATTERN = /^([+-]?)(\d+)(?:\.(\d{1,2}))?$/;
const LEADING_ZEROS = /^0+(?=\d)/;
const TRANSACTION_TYPES: ReadonlySet<string> = new Set(['purchase', 'refund', 'adjustment']);

/** Length in characters (code points), so an emoji or a CJK name counts as the partner sees it. */
function characterCount(value: string): number {
  let count = value.length;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      count--;
      i++;
    }
  }
  return count;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

const ZERO = 48;
/** The number written by `length` digits at `at`, or -1 if any is not a digit. */
function digitsAt(value: string, at: number, length: number): number {
  let n = 0;
  for (let i = at; i < at + length; i++) {
    const d = value.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * ISO 8601 date-time (`YYYY-MM-DD[T ]hh:mm[:ss[.fraction]][Z|+hh[:mm]|+hhmm]`) to the CRM's form: `T`
 * separator, seconds always present, fraction kept as sent, zone always present (`Z` when the partner gave
 * none: file-formats.md says such times are UTC). Scanned by hand: it runs for every record (see bench).
 */
export function normaliseDateTime(value: string): string | undefined {
  const year = digitsAt(value, 0, 4);
  const month = digitsAt(value, 5, 2);
  const day = digitsAt(value, 8, 2);
  const hour = digitsAt(value, 11, 2);
  const minute = digitsAt(value, 14, 2);
  const separator = value[10];
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (value[4] !== '-' || value[7] !== '-' || (separator !== 'T' && separator !== 't' && separator !== ' ')) {
    return undefined;
  }
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || value[13] !== ':') return undefined;
  let at = 16;
  let seconds = ':00';
  const hasSeconds = value[at] === ':';
  if (hasSeconds) {
    const second = digitsAt(value, at + 1, 2);
    if (second < 0 || second > 59) return undefined;
    seconds = value.slice(at, at + 3);
    at += 3;
    if (value[at] === '.') {
      let end = at + 1;
      while (end < value.length && end - at <= 9 && digitsAt(value, end, 1) >= 0) end++;
      if (end === at + 1 || end - at > 10) return undefined;
      seconds += value.slice(at, end);
      at = end;
    }
  }
  let zone: string;
  const sign = value[at];
  if (sign === 'Z' && at + 1 === value.length && separator === 'T' && hasSeconds) {
    return value; // already canonical, the usual case: no new string
  }
  if (at === value.length || ((sign === 'Z' || sign === 'z') && at + 1 === value.length)) {
    zone = 'Z';
  } else if (sign === '+' || sign === '-') {
    const rest = value.length - at;
    const offsetHours = digitsAt(value, at + 1, 2);
    const colon = value[at + 3] === ':' ? 1 : 0;
    const offsetMinutes = rest === 3 ? 0 : digitsAt(value, at + 3 + colon, 2);
    if (rest !== 3 && rest !== 5 + colon) return undefined;
    if (offsetHours < 0 || offsetHours > 23 || offsetMinutes < 0 || offsetMinutes > 59) return undefined;
    zone = `${sign}${value.slice(at + 1, at + 3)}:${String(offsetMinutes).padStart(2, '0')}`;
  } else {
    return undefined;
  }
  const canonical = `${value.slice(0, 10)}T${value.slice(11, 16)}${seconds}${zone}`;
  return canonical === value ? value : canonical;
}

/** A decimal with at most two fraction digits, as an exact string with exactly two: `12.5` -> `12.50`. */
export function normaliseAmount(value: string): string | undefined {
  const m = AMOUNT_PATTERN.exec(value);
  if (!m) return undefined;
  const [, sign, digits = '0', fraction = ''] = m;
  const whole = digits.replace(LEADING_ZEROS, '');
  const cents = fraction.padEnd(2, '0');
  const zero = whole === '0' && cents === '00';
  return `${sign === '-' && !zero ? '-' : ''}${whole}.${cents}`;
}

/** `+` and 7-15 digits once spaces, dashes and dots are removed. */
export function normalisePhone(value: string): string | undefined {
  if (value.charCodeAt(0) !== 43 /* + */) return undefined;
  let digits = 0;
  let compact = true;
  for (let i = 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= ZERO && c <= ZERO + 9) digits++;
    else if (c === 32 || c === 45 || c === 46) compact = false;
    else return undefined;
  }
  if (digits < 7 || digits > 15) return undefined;
  return compact ? value : value.replace(/[ .-]/g, '');
}

/** One column of a partner file: where it goes in the CRM record and the rule it must meet. */
export interface ColumnRule {
  /** Source column (CSV header or JSONL key), snake_case, lower case. */
  readonly column: string;
  /** CRM field name. */
  readonly field: string;
  readonly required: boolean;
  /** The rule as the partner reads it in `VALIDATION: <column>: <rule>`. */
  readonly rule: string;
  /** Takes the trimmed, non-empty source value; returns what the CRM gets, or undefined if the rule is broken. */
  readonly normalise: (value: string) => string | undefined;
}

const ID_RULE = '1-64 characters of A-Z, a-z, 0-9, _ and -';
const id = (column: string, field: string): ColumnRule => ({
  column,
  field,
  required: true,
  rule: ID_RULE,
  normalise: (v) => (ID_PATTERN.test(v) ? v : undefined),
});

const text = (column: string, field: string, required: boolean, max: number): ColumnRule => ({
  column,
  field,
  required,
  rule: required ? `1-${max} characters` : `at most ${max} characters`,
  normalise: (v) => (characterCount(v) <= max ? v : undefined),
});

const code = (column: string, rule: string, codes: ReadonlySet<string>): ColumnRule => ({
  column,
  field: column,
  required: true,
  rule,
  normalise: (v) => {
    const upper = v.toUpperCase();
    return codes.has(upper) ? upper : undefined;
  },
});

/** The columns of each kind, in the order they are checked (file-formats.md). */
export const COLUMN_RULES: Record<FileKind, readonly ColumnRule[]> = {
  users: [
    id('customer_id', 'customerId'),
    text('first_name', 'firstName', true, 100),
    text('last_name', 'lastName', true, 100),
    {
      column: 'email',
      field: 'email',
      required: true,
      rule: 'an email address',
      normalise: (v) => (v.length <= 254 && EMAIL_PATTERN.test(v) ? v : undefined),
    },
    {
      column: 'phone',
      field: 'phone',
      required: false,
      rule: '+ and 7-15 digits (spaces, dashes and dots allowed)',
      normalise: normalisePhone,
    },
    code('country', 'an ISO 3166-1 alpha-2 country code', ISO_COUNTRIES),
    {
      column: 'created_at',
      field: 'createdAt',
      required: true,
      rule: 'an ISO 8601 date-time',
      normalise: normaliseDateTime,
    },
  ],
  transactions: [
    id('transaction_id', 'transactionId'),
    id('customer_id', 'customerId'),
    {
      column: 'amount',
      field: 'amount',
      required: true,
      rule: 'a decimal with at most 2 fraction digits',
      normalise: normaliseAmount,
    },
    code('currency', 'an ISO 4217 currency code', ISO_CURRENCIES),
    {
      column: 'occurred_at',
      field: 'occurredAt',
      required: true,
      rule: 'an ISO 8601 date-time',
      normalise: normaliseDateTime,
    },
    {
      column: 'type',
      field: 'type',
      required: false,
      rule: 'one of purchase, refund, adjustment',
      normalise: (v) => {
        const type = v.toLowerCase();
        return TRANSACTION_TYPES.has(type) ? type : undefined;
      },
    },
    text('merchant', 'merchant', false, 200),
  ],
};

/** Required source columns of a kind: a CSV header without one of them makes the file unreadable. */
export const requiredColumns = (kind: FileKind): string[] =>
  COLUMN_RULES[kind].filter((c) => c.required).map((c) => c.column);

/** Customer as the CRM takes it (crm-api.md). */
// Type aliases, not interfaces: they fit `Record<string, unknown>` (queue messages) without casts.
export type CrmCustomer = {
  customerId: string;
  firstName: string;
  lastName: string;
  email: string;
  phone?: string;
  country: string;
  createdAt: string;
};

/** Transaction as the CRM takes it (crm-api.md); `amount` is a decimal string, never a float. */
export type CrmTransaction = {
  transactionId: string;
  customerId: string;
  amount: string;
  currency: string;
  occurredAt: string;
  type?: 'purchase' | 'refund' | 'adjustment';
  merchant?: string;
};

export type CrmRecord = CrmCustomer | CrmTransaction;

export type Validated =
  | { readonly ok: true; readonly record: CrmRecord }
  | { readonly ok: false; readonly column: string; readonly rule: string; readonly reason: string };

/** The failure reason of a record refused before sending, exactly as reports show it. */
export const validationReason = (column: string, rule: string) => `VALIDATION: ${column}: ${rule}`;

export const invalid = (column: string, rule: string): Validated => ({
  ok: false,
  column,
  rule,
  reason: validationReason(column, rule),
});

/** The rule a JSON object or array breaks where a column's value should be. */
export const NESTED_JSON_RULE = 'a text or number value, not nested JSON';
/** The rule a JSON string with an unpaired surrogate escape (`"\ud800"`) breaks: it is no Unicode text. */
export const UNPAIRED_SURROGATE_RULE = 'Unicode text (no unpaired surrogate such as \\ud800)';

/**
 * A source value the reader does not hand on as written, with the rule it breaks: nested JSON, or a string
 * that is no Unicode text. It fails its column when a rule reads the column (an unknown column stays ignored),
 * and it holds nothing of the value, so nothing downstream (rules, reports, logs) can recurse into it.
 */
export class RefusedValue {
  constructor(readonly rule: string) {}
}

/** Source values arrive as CSV strings or JSON values; numbers are taken as written, anything else is refused. */
function sourceText(value: unknown): string | undefined {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The rule a value that is no text or number breaks, when it is not the column's own rule. */
function refusedRule(value: unknown): string | undefined {
  if (value instanceof RefusedValue) return value.rule;
  return typeof value === 'object' && value !== null ? NESTED_JSON_RULE : undefined;
}

/**
 * Validates one source record against its kind's rules and returns the CRM record, or the first broken
 * rule in column order. Unknown columns are ignored. This is the hot path of `prepare` (every record of a
 * 10 GB file): it calls the rules' functions directly, because a zod parse per field costs about 0.2 us
 * and would alone cap a core below the 500k records/s target (`npm run bench`).
 */
export function validateRecord(kind: FileKind, fields: Readonly<Record<string, unknown>>): Validated {
  const record: Record<string, string> = {};
  for (const column of COLUMN_RULES[kind]) {
    const source = fields[column.column];
    const value = sourceText(source);
    if (value === undefined) return invalid(column.column, refusedRule(source) ?? column.rule);
    if (value === '') {
      if (column.required) return invalid(column.column, 'required');
      continue;
    }
    const normalisedValue = column.normalise(value);
    if (normalisedValue === undefined) return invalid(column.column, column.rule);
    record[column.field] = normalisedValue;
  }
  return { ok: true, record: record as unknown as CrmRecord };
}

/**
 * zod schemas of the CRM records, from the same rules: a value is valid when it is already normalised.
 * They guard the boundaries where records arrive already prepared (queue messages, CRM requests).
 */
function crmRecordSchema(kind: FileKind) {
  const shape: Record<string, z.ZodType> = {};
  for (const c of COLUMN_RULES[kind]) {
    const value = z.string().refine((v) => c.normalise(v) === v, { error: `${c.field}: ${c.rule}` });
    shape[c.field] = c.required ? value : value.optional();
  }
  return z.strictObject(shape);
}

export const CrmCustomerSchema = crmRecordSchema('users') as unknown as z.ZodType<CrmCustomer>;
export const CrmTransactionSchema = crmRecordSchema('transactions') as unknown as z.ZodType<CrmTransaction>;
