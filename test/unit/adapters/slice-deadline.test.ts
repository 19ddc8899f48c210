import { InvocationOver, sliceDeadline, SLICE_MARGIN_MS } from '../../../lambdas/adapters/aws/slice-deadline';

/** When a slice of a whole-file step stops: its margin before the timeout, and never past the timeout. */
describe('a slice’s deadline', () => {
  const clock = (remainingMs: number) => {
    const state = { remainingMs };
    return { state, context: { getRemainingTimeInMillis: () => state.remainingMs } };
  };

  it('stops 60 s before a full invocation’s timeout', () => {
    const { state, context } = clock(900_000);
    const shouldStop = sliceDeadline(context);
    state.remainingMs = SLICE_MARGIN_MS + 1;
    expect(shouldStop()).toBe(false);
    state.remainingMs = SLICE_MARGIN_MS - 1;
    expect(shouldStop()).toBe(true);
  });

  it('keeps half of a short invocation for work', () => {
    const { state, context } = clock(4_000);
    const shouldStop = sliceDeadline(context);
    state.remainingMs = 2_001;
    expect(shouldStop()).toBe(false);
    state.remainingMs = 1_999;
    expect(shouldStop()).toBe(true);
  });

  it('throws once the invocation is over, so an abandoned handler writes nothing more', () => {
    const { state, context } = clock(4_000);
    const shouldStop = sliceDeadline(context);
    state.remainingMs = 0;
    expect(shouldStop).toThrow(InvocationOver);
  });
});
