import type { Context } from 'aws-lambda';

/**
 * A slice of a whole-file step (classify, prepare, finalise) ends this long before the Lambda's timeout, so its
 * checkpoint is saved and returned: 60 s, or half the invocation when that is shorter. What is in hand when a
 * slice stops is finished in that margin (prepare's window of sends in flight, finalise's carried text), and on one
 * machine, where one event loop carries every embedded service, that took up to 0.8 s of a 3 s scaled run.
 */
export const SLICE_MARGIN_MS = 60_000;

/** What a slice throws when asked to go on after its invocation's time is up. */
export class InvocationOver extends Error {
  override readonly name = 'InvocationOver';
}

/**
 * The `shouldStop` of a slice: true once the invocation is within its margin of the timeout. Past the timeout
 * itself it throws: middy has already ended the invocation with a TimeoutError and the workflow retries its input.
 * On Lambda the sandbox is gone by then; on one machine the abandoned handler must not go on writing beside that
 * retry. (middy's abort signal cannot say it: one middy handler shares one signal across the concurrent
 * invocations the local runtime makes.)
 */
export function sliceDeadline(context: Pick<Context, 'getRemainingTimeInMillis'>): () => boolean {
  const marginMs = Math.min(SLICE_MARGIN_MS, context.getRemainingTimeInMillis() / 2);
  return () => {
    const remainingMs = context.getRemainingTimeInMillis();
    if (remainingMs <= 0) throw new InvocationOver('the invocation was ended at its timeout; its slice stops here');
    return remainingMs < marginMs;
  };
}
