import {
  CrmCustomerSchema,
  CrmTransactionSchema,
  normaliseAmount,
  normaliseDateTime,
  normalisePhone,
  RefusedValue,
  validateRecord,
  type CrmRecord,
} from '../../../lambdas/core/files/record-schemas';

const user = {
  customer_id: 'C-1_a',
  first_name: ' Ada ',
  last_name: 'Alder',
  email: 'ada@example.com',
  phone: '+44 20.7946-0958',
  country: 'gb',
  created_at: '2026-11-24T03:00:00',
};
const transaction = {
  transaction_id: 'T1',
  customer_id: 'C1',
  amount: '-0012.5',
  currency: 'eur',
  occurred_at: '2026-11-24 03:00+0200',
  type: 'Refund',
  merchant: 'Books "&" Co',
};

describe('validateRecord', () => {
  it('normalises a user to the CRM shape', () => {
    expect(validateRecord('users', user)).toEqual({
      ok: true,
      record: {
        customerId: 'C-1_a',
        firstName: 'Ada',
        lastName: 'Alder',
        email: 'ada@example.com',
        phone: '+442079460958',
        country: 'GB',
        createdAt: '2026-11-24T03:00:00Z',
      },
    });
  });

  it('normalises a transaction to the CRM shape, amount as an exact string', () => {
    expect(validateRecord('transactions', transaction)).toEqual({
      ok: true,
      record: {
        transactionId: 'T1',
        customerId: 'C1',
        amount: '-12.50',
        currency: 'EUR',
        occurredAt: '2026-11-24T03:00:00+02:00',
        type: 'refund',
        merchant: 'Books "&" Co',
      },
    });
  });

  it('leaves optional fields out when empty or absent', () => {
    const { phone: _phone, ...noPhone } = user;
    const result = validateRecord('users', { ...noPhone });
    expect(result.ok && 'phone' in result.record).toBe(false);
    const empty = validateRecord('transactions', { ...transaction, type: '', merchant: '  ' });
    expect(empty.ok && Object.keys(empty.record)).toEqual([
      'transactionId',
      'customerId',
      'amount',
      'currency',
      'occurredAt',
    ]);
  });

  it.each([
    ['users', { customer_id: 'C 1' }, 'VALIDATION: customer_id: 1-64 characters of A-Z, a-z, 0-9, _ and -'],
    ['users', { customer_id: 'C'.repeat(65) }, 'VALIDATION: customer_id: 1-64 characters of A-Z, a-z, 0-9, _ and -'],
    ['users', { first_name: '' }, 'VALIDATION: first_name: required'],
    ['users', { last_name: 'x'.repeat(101) }, 'VALIDATION: last_name: 1-100 characters'],
    ['users', { email: 'ada.example.com' }, 'VALIDATION: email: an email address'],
    ['users', { email: 'ada@example' }, 'VALIDATION: email: an email address'],
    ['users', { phone: '020 7946 0958' }, 'VALIDATION: phone: + and 7-15 digits (spaces, dashes and dots allowed)'],
    ['users', { phone: '+123456' }, 'VALIDATION: phone: + and 7-15 digits (spaces, dashes and dots allowed)'],
    ['users', { phone: '+1234567890123456' }, 'VALIDATION: phone: + and 7-15 digits (spaces, dashes and dots allowed)'],
    ['users', { country: 'XX' }, 'VALIDATION: country: an ISO 3166-1 alpha-2 country code'],
    ['users', { country: 'GBR' }, 'VALIDATION: country: an ISO 3166-1 alpha-2 country code'],
    ['users', { created_at: '2026-11-24' }, 'VALIDATION: created_at: an ISO 8601 date-time'],
    ['users', { created_at: undefined }, 'VALIDATION: created_at: required'],
    [
      'transactions',
      { transaction_id: 'T/1' },
      'VALIDATION: transaction_id: 1-64 characters of A-Z, a-z, 0-9, _ and -',
    ],
    ['transactions', { amount: '12.345' }, 'VALIDATION: amount: a decimal with at most 2 fraction digits'],
    ['transactions', { amount: '1,000' }, 'VALIDATION: amount: a decimal with at most 2 fraction digits'],
    ['transactions', { amount: '1e3' }, 'VALIDATION: amount: a decimal with at most 2 fraction digits'],
    ['transactions', { currency: 'EURO' }, 'VALIDATION: currency: an ISO 4217 currency code'],
    ['transactions', { currency: 'ABC' }, 'VALIDATION: currency: an ISO 4217 currency code'],
    ['transactions', { occurred_at: '2026-02-29T00:00:00Z' }, 'VALIDATION: occurred_at: an ISO 8601 date-time'],
    ['transactions', { type: 'gift' }, 'VALIDATION: type: one of purchase, refund, adjustment'],
    ['transactions', { merchant: 'm'.repeat(201) }, 'VALIDATION: merchant: at most 200 characters'],
    ['transactions', { amount: { value: 1 } }, 'VALIDATION: amount: a text or number value, not nested JSON'],
    ['users', { first_name: [['Ada']] }, 'VALIDATION: first_name: a text or number value, not nested JSON'],
    ['transactions', { amount: true }, 'VALIDATION: amount: a decimal with at most 2 fraction digits'],
    ['transactions', { amount: Infinity }, 'VALIDATION: amount: a decimal with at most 2 fraction digits'],
  ] as const)('%s %j fails with "%s"', (kind, change, reason) => {
    const base = kind === 'users' ? user : transaction;
    const result = validateRecord(kind, { ...base, ...change });
    expect(result).toMatchObject({ ok: false, reason });
  });

  it('counts characters, not UTF-16 units: 100 emoji are a valid name', () => {
    expect(validateRecord('users', { ...user, first_name: '😀'.repeat(100) }).ok).toBe(true);
    expect(validateRecord('users', { ...user, first_name: '😀'.repeat(101) }).ok).toBe(false);
  });

  it('fails a value the reader refused with the rule it broke', () => {
    expect(validateRecord('users', { ...user, email: new RefusedValue('some rule') })).toMatchObject({
      ok: false,
      reason: 'VALIDATION: email: some rule',
    });
  });

  it('takes JSON numbers as written for amounts and ids', () => {
    const result = validateRecord('transactions', { ...transaction, amount: 12.5, transaction_id: 42 });
    expect(result).toMatchObject({ ok: true, record: { amount: '12.50', transactionId: '42' } });
  });
});

describe('normalisers', () => {
  it.each([
    ['12', '12.00'],
    ['12.5', '12.50'],
    ['+12.05', '12.05'],
    ['-0.5', '-0.50'],
    ['-0.00', '0.00'],
    ['007', '7.00'],
    ['0', '0.00'],
    ['123456789012345678901234567890.99', '123456789012345678901234567890.99'],
  ])('amount %s -> %s (exact, no float)', (input, output) => expect(normaliseAmount(input)).toBe(output));

  it('takes a megabyte of digits in linear time', () => {
    const started = Date.now();
    expect(normaliseAmount(`${'0'.repeat(1024 * 1024)}x`)).toBeUndefined();
    expect(normaliseAmount(`${'0'.repeat(1024 * 1024)}.123`)).toBeUndefined();
    expect(normaliseAmount(`-${'0'.repeat(1024 * 1024)}1.5`)).toBe('-1.50');
    expect(normaliseAmount('0'.repeat(1024 * 1024))).toBe('0.00');
    // The pattern before backtracked quadratically: 40 000 zeros took 2.5 s, a megabyte would take half an hour.
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it.each(['', '.5', '5.', '1.234', '--1', '1 000', 'NaN', '0x10'])('amount %j is refused', (input) =>
    expect(normaliseAmount(input)).toBeUndefined(),
  );

  it.each([
    ['2026-11-24T03:00:00Z', '2026-11-24T03:00:00Z'],
    ['2026-11-24T03:00:00', '2026-11-24T03:00:00Z'],
    ['2026-11-24 03:00', '2026-11-24T03:00:00Z'],
    ['2026-11-24t03:00:00z', '2026-11-24T03:00:00Z'],
    ['2026-11-24T03:00:00.123456+05:30', '2026-11-24T03:00:00.123456+05:30'],
    ['2026-11-24T03:00:00-0800', '2026-11-24T03:00:00-08:00'],
    ['2026-11-24T03:00+01', '2026-11-24T03:00:00+01:00'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00Z'],
  ])('date-time %s -> %s', (input, output) => expect(normaliseDateTime(input)).toBe(output));

  it.each([
    '2026-11-24',
    '2026-13-01T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2100-02-29T00:00:00Z',
    '2026-11-24T24:00:00Z',
    '2026-11-24T03:60:00Z',
    '2026-11-24T03:00:61Z',
    '2026-11-24T03:00:00+2400',
    '2026-11-24T03:00:00.Z',
    '2026-11-24T03:00:00ZZ',
    '2026/11/24T03:00:00Z',
    '24/11/2026 03:00',
  ])('date-time %j is refused', (input) => expect(normaliseDateTime(input)).toBeUndefined());

  it('phone keeps + and digits only', () => {
    expect(normalisePhone('+1 555.010-0199')).toBe('+15550100199');
    expect(normalisePhone('+1 (555) 0100199')).toBeUndefined();
  });
});

describe('the CRM record schemas', () => {
  const validated = (kind: 'users' | 'transactions', fields: Record<string, unknown>): CrmRecord => {
    const result = validateRecord(kind, fields);
    if (!result.ok) throw new Error(result.reason);
    return result.record;
  };

  it('accepts normalised records and refuses anything else at a boundary', () => {
    expect(CrmCustomerSchema.safeParse(validated('users', user)).success).toBe(true);
    expect(CrmTransactionSchema.safeParse(validated('transactions', transaction)).success).toBe(true);
    expect(CrmTransactionSchema.safeParse({ ...validated('transactions', transaction), amount: 12.5 }).success).toBe(
      false,
    );
    expect(CrmTransactionSchema.safeParse({ ...validated('transactions', transaction), amount: '12.5' }).success).toBe(
      false,
    );
    expect(CrmCustomerSchema.safeParse({ ...validated('users', user), extra: 'x' }).success).toBe(false);
  });
});
