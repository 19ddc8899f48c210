import type { Context } from 'aws-lambda';

/**
 * A Lambda context for a handler that works in slices. Not `short`: 10 minutes, plenty of time. `short`: the
 * first `answersWithTime` questions (middy's timeout, the slice's margin) are told 10 minutes and every later
 * one (shouldStop) 1 ms, so each slice stops at its first chance after them.
 */
export const sliceContext = (functionName: string, short: boolean, answersWithTime = 2): Context => {
  let calls = 0;
  return {
    functionName,
    awsRequestId: 'r1',
    getRemainingTimeInMillis: () => (!short || calls++ < answersWithTime ? 600_000 : 1),
  } as unknown as Context;
};
