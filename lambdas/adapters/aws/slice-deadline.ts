import type { Context } from 'aws-lambda';

/**
 * A slice of a whole-file step (classify, prepare, finalise) ends this long before the Lambda's timeout, so its
 * checkpoint is saved and returned: 60 s, or half the invocation when that is shorter. What is in hand when a
 * slice stops is finished in that margin (prepare's window of sends in flight, finalise's carried text), and on one
 * machine, where one event loop carries every embedded service, that took up to 0.8 s of a 3 s scaled run.
 */
export const SLICE_MARGIN_MS = 60_000;

/**
 * What a slice throws when asked to go on after its invocation's time is up. Named as middy's end of an
 * invocation, `TimeoutError`: should it reach the workflow first, it is the same cut-off, retried from the input.
 */
export class InvocationOver extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * The `shouldStop` of a slice: true once the invocation is within its margin of the timeout. Past the timeout
 * itself it throws: middy has ended the invocation with a TimeoutError just before, and the workflow runs its
 * input again. The handler's promise is abandoned, not stopped: on Lambda it may go on in the next invocation
 * of the same sandbox, and on one machine beside the retry, so it must not go on writing. (middy's abort signal
 * cannot say it: one middy handler shares one signal across the concurrent invocations the local runtime makes.)
 */
export function sliceDeadline(context: Pick<Context, 'getRemainingTimeInMillis'>): () => boolean {
  const marginMs = Math.min(SLICE_MARGIN_MS, context.getRemainingTimeInMillis() / 2);
  return () => {
    const remainingMs = context.getRemainingTimeInMillis();
    if (remainingMs <= 0) throw new InvocationOver('the invocation was ended at its timeout; its slice stops here');
    return remainingMs < marginMs;
  };
}
