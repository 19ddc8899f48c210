import { readFileSync } from 'node:fs';
import { FUNCTION_CONTRACTS } from '../../lambdas/contracts/functions';
import { FILE_INGESTION_ASL, WORKFLOW_TASK_FUNCTIONS } from '../../lambdas/contracts/infrastructure';
import { ERROR_NAMES } from '../../lambdas/core/errors';

/** The names AWS itself gives: Step Functions' own and the Lambda service's. */
const AWS_ERROR = /^(States\.[A-Za-z]+|Lambda\.[A-Za-z]+)$/;

interface State {
  Type: string;
  Resource?: string;
  Parameters?: { FunctionName?: string };
  Retry?: { ErrorEquals: string[] }[];
  Catch?: { ErrorEquals: string[] }[];
  States?: Record<string, State>;
  Branches?: { States: Record<string, State> }[];
}

/** Every state of the definition, nested ones included, with its name. */
function states(all: Record<string, State>): [string, State][] {
  return Object.entries(all).flatMap(([name, state]) => [
    [name, state] as [string, State],
    ...(state.Branches ?? []).flatMap((branch) => states(branch.States)),
  ]);
}

const definition = JSON.parse(readFileSync(FILE_INGESTION_ASL, 'utf8')) as { States: Record<string, State> };
const functionOf = (state: State) => {
  const placeholder = /^\$\{(\w+)\}$/.exec(state.Parameters?.FunctionName ?? state.Resource ?? '')?.[1];
  return WORKFLOW_TASK_FUNCTIONS[placeholder as keyof typeof WORKFLOW_TASK_FUNCTIONS];
};

describe('the error names of file-ingestion.asl.json', () => {
  const matched = states(definition.States).flatMap(([name, state]) =>
    [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((rule) =>
      rule.ErrorEquals.map((error) => ({ state: name, error, fn: functionOf(state) })),
    ),
  );

  it('matches only names the pipeline raises (lambdas/core/errors.ts) or AWS gives', () => {
    expect(matched.length).toBeGreaterThan(20);
    const unknown = matched.filter(({ error }) => !ERROR_NAMES.includes(error as never) && !AWS_ERROR.test(error));
    expect(unknown).toEqual([]);
  });

  it("matches on each task only names that task's function may throw (its contract)", () => {
    const tasks = matched.filter(({ fn, error }) => fn && !AWS_ERROR.test(error));
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
