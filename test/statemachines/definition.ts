import { readFileSync } from 'node:fs';
import { FILE_INGESTION_ASL, WORKFLOW_TASK_FUNCTIONS } from '../../lambdas/contracts/infrastructure';

/** What the state machine tests read of a state of file-ingestion.asl.json. */
export interface State {
  Type: string;
  Resource?: string;
  Parameters?: { FunctionName?: string };
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  HeartbeatSeconds?: number;
  Retry?: { ErrorEquals: string[]; MaxAttempts?: number }[];
  Catch?: { ErrorEquals: string[] }[];
  States?: Record<string, State>;
  Branches?: { States: Record<string, State> }[];
}

/** Every state of the definition, nested ones included, with its name. */
export function states(all: Record<string, State>): [string, State][] {
  return Object.entries(all).flatMap(([name, state]) => [
    [name, state] as [string, State],
    ...(state.Branches ?? []).flatMap((branch) => states(branch.States)),
  ]);
}

/** The deployed file as it is, before substitutions. */
export const definition = JSON.parse(readFileSync(FILE_INGESTION_ASL, 'utf8')) as { States: Record<string, State> };

/** The function a Task state invokes (directly or through lambda:invoke), by its ARN's substitution. */
export const functionOf = (state: State) => {
  const placeholder = /^\$\{(\w+)\}$/.exec(state.Parameters?.FunctionName ?? state.Resource ?? '')?.[1];
  return WORKFLOW_TASK_FUNCTIONS[placeholder as keyof typeof WORKFLOW_TASK_FUNCTIONS];
};
