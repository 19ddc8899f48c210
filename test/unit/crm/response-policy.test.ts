import {
  decideCall,
  decideRecord,
  parseCallResults,
  type CrmOperation,
} from '../../../lambdas/core/crm/response-policy';

describe('decideRecord: the per-record table of crm-api.md', () => {
  it.each([
    ['ADD_CUST', { code: 200, status: 'OK' }, { action: 'succeeded' }],
    [
      'ADD_CUST',
      { code: 8006, status: 'ERROR', error: 'CUSTOMER_EXISTS' },
      { action: 'retry-with-update', reason: '8006' },
    ],
    ['ADD_CUST', { code: 3217, status: 'ERROR' }, { action: 'failed', reason: '3217' }],
    ['UPD_CUST', { code: 200, status: 'OK' }, { action: 'succeeded' }],
    [
      'UPD_CUST',
      { code: 200, status: 'ERROR', error: 'CONFLICTING_PROFILE' },
      { action: 'failed', reason: 'CONFLICTING_PROFILE' },
    ],
    ['UPD_CUST', { code: 3217, status: 'ERROR' }, { action: 'failed', reason: '3217' }],
    ['ADD_TRX', { code: 200, status: 'OK' }, { action: 'succeeded' }],
    ['ADD_TRX', { code: 624, status: 'ERROR' }, { action: 'failed', reason: '624' }],
    [
      'ADD_TRX',
      { code: 4404, status: 'ERROR', error: 'CUSTOMER_NOT_FOUND' },
      { action: 'retry-later', reason: '4404' },
    ],
    ['ADD_TRX', { code: 8006, status: 'ERROR' }, { action: 'failed', reason: '8006' }],
    [
      'UPD_CUST',
      { code: 200, status: 'ERROR', error: 'SOMETHING_NEW' },
      { action: 'failed', reason: 'SOMETHING_NEW', error: 'SOMETHING_NEW' },
    ],
    ['ADD_CUST', { code: 9999, status: 'ERROR', error: 'ODD' }, { action: 'failed', reason: '9999', error: 'ODD' }],
    ['ADD_CUST', { code: 200, status: 'ERROR' }, { action: 'failed', reason: '200' }],
  ] as const)('%s %j -> %j', (operation, result, expected) => {
    const decision = decideRecord(operation as CrmOperation, { index: 0, ...result });
    expect(decision).toMatchObject(expected);
    if (expected.action === 'succeeded') expect(decision.reason).toBeUndefined();
  });
});

describe('decideCall: the whole-call table', () => {
  it.each([
    [200, 'per-record'],
    [400, 'fail-all'],
    [401, 'circuit-open'],
    [403, 'circuit-open'],
    [409, 'halt'],
    [429, 'throttled'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [507, 'transient'],
    [404, 'halt'],
  ])('%i -> %s', (status, action) => expect(decideCall(status)).toBe(action));
});

describe('parseCallResults', () => {
  const ok = (index: number) => ({ index, code: 200, status: 'OK', crmId: `c-${index}` });

  it('returns the results in request order', () => {
    expect(parseCallResults({ results: [ok(1), ok(0)] }, 2)?.map((r) => r.crmId)).toEqual(['c-0', 'c-1']);
  });

  it.each([
    ['too few results', { results: [ok(0)] }, 2],
    ['too many results', { results: [ok(0), ok(1), ok(2)] }, 2],
    ['a repeated index', { results: [ok(0), ok(0)] }, 2],
    ['an index out of range', { results: [ok(0), ok(5)] }, 2],
    ['no results array', { ok: true }, 1],
    ['a result without a code', { results: [{ index: 0, status: 'OK' }] }, 1],
  ])('treats %s as not matching (transient)', (_case, body, count) =>
    expect(parseCallResults(body, count)).toBeUndefined(),
  );
});
