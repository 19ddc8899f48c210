import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { CUT_OFF_ERRORS, TASK_TIMEOUT_MARGIN_SECONDS } from '../../lambdas/contracts/infrastructure';
import { definition, functionOf, states } from './definition';

/**
 * Every Task of the workflow has the timeout AWS should give it: a Task without one waits forever on AWS, and
 * gets 60 s from the local runner (aws-local-stepfunctions' default), so a step over a minute failed on one
 * machine with an unnamed States.Timeout and never on AWS.
 */
describe('the task timeouts of file-ingestion.asl.json', () => {
  const tasks = states(definition.States).filter(([, state]) => state.Type === 'Task');

  it('give every Task a timeout, fixed or read from the input', () => {
    const without = tasks.filter(([, state]) => !state.TimeoutSeconds && !state.TimeoutSecondsPath).map(([n]) => n);
    expect(without).toEqual([]);
  });

  it('retry a function cut off (timeout, memory) twice from the same input, then fail under its name', () => {
    for (const [name, state] of tasks.filter(([, task]) => task.TimeoutSeconds !== undefined)) {
      const retry = (state.Retry ?? []).find((rule) => rule.ErrorEquals.includes('States.Timeout'));
      expect({ name, errors: retry?.ErrorEquals, attempts: retry?.MaxAttempts }).toEqual({
        name,
        errors: [...CUT_OFF_ERRORS],
        attempts: 2,
      });
    }
  });

  it('retry a function cut off while it stores its task token too; the wait timing out goes to CheckPhase', () => {
    const waits = tasks.filter(([, task]) => task.TimeoutSecondsPath !== undefined);
    expect(waits.length).toBeGreaterThan(0);
    for (const [name, state] of waits) {
      const retry = (state.Retry ?? []).find((rule) => rule.ErrorEquals.includes('Sandbox.Timedout'));
      expect({ name, errors: retry?.ErrorEquals, attempts: retry?.MaxAttempts }).toEqual({
        name,
        errors: CUT_OFF_ERRORS.filter((error) => error !== 'States.Timeout'),
        attempts: 2,
      });
    }
  });

  it("time a function's Task out just after the function's own timeout (its contract)", () => {
    const fixed = tasks.filter(([, state]) => state.TimeoutSeconds !== undefined);
    expect(fixed.length).toBeGreaterThan(0);
    for (const [name, state] of fixed) {
      const fn = functionOf(state);
      expect({ name, fn, timeout: state.TimeoutSeconds }).toEqual({
        name,
        fn: expect.any(String),
        timeout: FUNCTION_CONTRACTS[fn].timeoutSeconds + TASK_TIMEOUT_MARGIN_SECONDS,
      });
    }
  });
});
