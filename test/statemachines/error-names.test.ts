import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { CUT_OFF_ERRORS, WORKFLOW_TASK_FUNCTIONS } from '../../lambdas/contracts/infrastructure';
import { ERROR_NAMES } from '../../lambdas/core/errors';
import { definition, functionOf, states } from './definition';

/** The names AWS itself gives: Step Functions' own, the Lambda service's, and those of a function cut off. */
const AWS_ERROR = /^(States\.[A-Za-z]+|Lambda\.[A-Za-z]+)$/;
const isAwsError = (error: string) => AWS_ERROR.test(error) || (CUT_OFF_ERRORS as readonly string[]).includes(error);

describe('the error names of file-ingestion.asl.json', () => {
  const matched = states(definition.States).flatMap(([name, state]) =>
    [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((rule) =>
      rule.ErrorEquals.map((error) => ({ state: name, error, fn: functionOf(state) })),
    ),
  );

  it('matches only names the pipeline raises (lambdas/core/errors.ts) or AWS gives', () => {
    expect(matched.length).toBeGreaterThan(20);
    const unknown = matched.filter(({ error }) => !ERROR_NAMES.includes(error as never) && !isAwsError(error));
    expect(unknown).toEqual([]);
  });

  it("matches on each task only names that task's function may throw (its contract)", () => {
    const tasks = matched.filter(({ fn, error }) => fn && !isAwsError(error));
    expect(tasks.length).toBeGreaterThan(5);
    const foreign = tasks.filter(
      ({ fn, error }) => !(FUNCTION_CONTRACTS[fn!].errors as readonly string[]).includes(error),
    );
    expect(foreign).toEqual([]);
  });

  it('names in every task function contract only known errors, and Pipeline.Transient, which the tasks retry', () => {
    for (const name of Object.values(WORKFLOW_TASK_FUNCTIONS)) {
      const { errors } = FUNCTION_CONTRACTS[name];
      expect(errors.filter((error) => !ERROR_NAMES.includes(error))).toEqual([]);
      expect(errors).toContain('Pipeline.Transient');
    }
  });
});
