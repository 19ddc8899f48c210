import type { MiddlewareObj } from '@middy/core';
import { ErrorNames, PipelineError, type ErrorName } from '../../core/errors';
import { asTransient } from './clients';
import { InvocationOver } from './slice-deadline';

/**
 * The one mapping from what a task handler met to the names the state machine matches: the pipeline's own
 * errors keep their names (a file rejection is quarantined, File.Gone ends the execution); a missing object is
 * File.Gone; an AWS hiccup is Pipeline.Transient (retried with back-off); anything else is Pipeline.Failed,
 * which fails the state for a redrive. A name the task's contract does not list is Pipeline.Failed too: a task
 * handler throws nothing else, so the state machine's Catch and Retry see only what they were written for.
 */
export function toStateMachineError(error: unknown, event?: unknown, allowed?: readonly ErrorName[]): PipelineError {
  const mapped = mapError(error, event);
  if (!allowed || allowed.includes(mapped.name)) return mapped;
  return new PipelineError(ErrorNames.failed, `${mapped.name}: ${mapped.message}`);
}

function mapError(error: unknown, event: unknown): PipelineError {
  if (error instanceof PipelineError) return error;
  const failure = error as { name?: string; message?: string };
  if (failure.name === 'NotFound' || failure.name === 'NoSuchKey') {
    const file = (event as { file?: { bucket?: string; key?: string } } | undefined)?.file;
    const where = file?.bucket && file.key ? `s3://${file.bucket}/${file.key}` : 'the object';
    // Typically the same event delivered again after the first execution moved the file.
    return new PipelineError(ErrorNames.fileGone, `${where} is no longer there`);
  }
  const transient = asTransient(error);
  if (transient instanceof PipelineError) return transient;
  return new PipelineError(ErrorNames.failed, `${failure.name ?? 'Error'}: ${failure.message ?? String(error)}`);
}

/**
 * middy's own end of an invocation just before the Lambda timeout (its TimeoutError, caused by @middy/core): a
 * cut-off like Lambda's Sandbox.Timedout, which the workflow retries from the Task's input (CUT_OFF_ERRORS), not an
 * AWS hiccup; an SDK call that timed out is a TimeoutError too, and stays Pipeline.Transient.
 */
export const isInvocationCutOff = (error: unknown): boolean => {
  if (error instanceof InvocationOver) return true;
  const failure = error as { name?: unknown; cause?: { package?: unknown } } | undefined;
  return failure?.name === 'TimeoutError' && failure.cause?.package === '@middy/core';
};

/** Middy middleware of the task handlers: {@link toStateMachineError} on every error, by the contract's names. */
export const stateMachineErrors = (contract: { readonly errors: readonly ErrorName[] }): MiddlewareObj => ({
  onError: (request) => {
    if (isInvocationCutOff(request.error)) return;
    request.error = toStateMachineError(request.error, request.event, contract.errors);
  },
});
