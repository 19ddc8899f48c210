import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { stateMachineErrors } from '../../../lambdas/adapters/aws/task-errors';
import { CUT_OFF_ERRORS } from '../../../lambdas/contracts/infrastructure';
import { ErrorNames, PipelineError } from '../../../lambdas/core/errors';

/** What the state machine sees of a task handler's failure, by the one mapping every task handler uses. */
describe('the task handlers’ error mapping', () => {
  const contract = { errors: [ErrorNames.fileGone, ErrorNames.transient, ErrorNames.failed] };
  const context = (remainingMs: number) => {
    const started = Date.now();
    return { getRemainingTimeInMillis: () => remainingMs - (Date.now() - started) } as unknown as Context;
  };
  const failure = async (work: () => Promise<unknown>, remainingMs = 60_000) =>
    middy(work)
      .use(stateMachineErrors(contract))(undefined, context(remainingMs))
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );

  it('leaves middy’s end of an invocation as the cut-off the workflow retries from its input', async () => {
    const error = await failure(() => new Promise((resolve) => setTimeout(resolve, 300)), 100);
    expect(error?.name).toBe('TimeoutError');
    expect(CUT_OFF_ERRORS).toContain(error?.name);
  });

  it('maps an AWS SDK timeout (not the invocation’s) to Pipeline.Transient', async () => {
    const sdkTimeout = Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
    const error = await failure(() => Promise.reject(sdkTimeout));
    expect(error).toBeInstanceOf(PipelineError);
    expect(error?.name).toBe(ErrorNames.transient);
  });

  it('maps a missing object to File.Gone, a name the contract does not list and anything else to Pipeline.Failed', async () => {
    const missing = await failure(() => Promise.reject(Object.assign(new Error('gone'), { name: 'NoSuchKey' })));
    expect(missing?.name).toBe(ErrorNames.fileGone);
    const unlisted = await failure(() => Promise.reject(new PipelineError(ErrorNames.ledgerMismatch, 'changed')));
    expect(unlisted?.name).toBe(ErrorNames.failed);
    expect(unlisted?.message).toContain(ErrorNames.ledgerMismatch);
    const bug = await failure(() => Promise.reject(new TypeError('x is undefined')));
    expect(bug?.name).toBe(ErrorNames.failed);
  });
});
