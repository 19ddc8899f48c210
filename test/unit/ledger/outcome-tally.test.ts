import { cancelledOutcome, outcomeReason, type RecordOutcome } from '../../../lambdas/core/crm/dispatch-call';
import { comparePhases, OutcomeCounter, tallyOutcomes } from '../../../lambdas/core/ledger/phase-counters';
import { conflicting, exists, notYet, ok, refused } from '../../support/crm-outcomes';

describe('the records an answer ends, by outcome and reason', () => {
  it('counts succeeded and failed by reason; 8006 and 4404 are carried, never failed', () => {
    const outcomes: RecordOutcome[] = [
      ok(2),
      ok(3),
      exists(4),
      notYet(5),
      notYet(6),
      refused(7),
      refused(8),
      conflicting(9),
      cancelledOutcome(10),
    ];
    expect(tallyOutcomes(outcomes)).toEqual({
      update: 1,
      retryLater: 2,
      succeeded: 2,
      failed: 4,
      failures: { '3217': 2, CONFLICTING_PROFILE: 1, CANCELLED: 1 },
    });
  });

  it('names a failure as the report does: its reason, else its code, else UNKNOWN', () => {
    expect(outcomeReason({ reason: 'CONFLICTING_PROFILE', code: 200 })).toBe('CONFLICTING_PROFILE');
    expect(outcomeReason({ code: 624 })).toBe('624');
    expect(outcomeReason({})).toBe('UNKNOWN');
  });

  it('adds answers up one at a time, and a CRM error name such as __proto__ is just a reason', () => {
    const counter = new OutcomeCounter();
    counter.add([ok(2), { line: 3, status: 'failed', code: 200, reason: '__proto__' }]);
    counter.add([{ line: 4, status: 'failed', code: 200, reason: '__proto__' }, notYet(5)]);
    const tally = counter.tally();
    expect(tally).toMatchObject({ succeeded: 1, failed: 2, retryLater: 1, update: 0 });
    expect(Object.entries(tally.failures)).toEqual([['__proto__', 2]]);
  });

  it('an answer with nothing ended adds zeros', () => {
    expect(tallyOutcomes([exists(2), notYet(3)])).toEqual({
      update: 1,
      retryLater: 1,
      succeeded: 0,
      failed: 0,
      failures: {},
    });
  });
});

describe('phase order', () => {
  it('ADD, UPD, then RETRY phases by number (RETRY10 after RETRY9)', () => {
    const phases = ['RETRY10', 'RETRY2', 'UPD', 'RETRY9', 'ADD', 'RETRY1'];
    expect([...phases].sort(comparePhases)).toEqual(['ADD', 'UPD', 'RETRY1', 'RETRY2', 'RETRY9', 'RETRY10']);
  });
});
