import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';

type Execution = ReturnType<StateMachine['run']>;
/** One entry of an execution's event log (the library does not export the type). */
export type EventLog = Execution['eventLogs'] extends AsyncGenerator<infer E> ? E : never;
type TaskHandlers = NonNullable<
  NonNullable<NonNullable<Parameters<StateMachine['run']>[1]>['overrides']>['taskResourceLocalHandlers']
>;

// aws-local-stepfunctions 3 calls Promise.withResolvers, which Node 20 lacks (DESIGN.md).
const promises = Promise as unknown as { withResolvers?: unknown };
promises.withResolvers ??= function withResolvers<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

export const STATE_MACHINES_DIR = join(__dirname, '../../../statemachines');

/** A Lambda function run locally: it gets the payload AWS would send and returns what it would return. */
export type LocalLambda = (payload: unknown) => Promise<unknown> | unknown;

/** The ARN a local Lambda stands under in the definition, as CDK substitutes real ones on AWS. */
export const localLambdaArn = (name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`;

type Definition = {
  States: Record<
    string,
    {
      Type: string;
      Resource?: string;
      Parameters?: { FunctionName?: string; [field: string]: unknown };
      TimeoutSecondsPath?: string;
    }
  >;
};

/** Where the runner carries a Task's timeout, read from the state's input as on AWS. */
const TIMEOUT_FIELD = 'localTimeoutSeconds';

/**
 * aws-local-stepfunctions reads `TimeoutSecondsPath` from the task's parameters, where AWS reads it from the
 * state's input. The runner restores AWS's meaning: the path is read from the input into a parameter that
 * only the runner sees (a `lambda:invoke` handler gets `Payload` alone).
 */
function timeoutsAsOnAws(definition: Definition): Definition {
  const states = Object.fromEntries(
    Object.entries(definition.States).map(([name, state]) => {
      if (state.Type !== 'Task' || !state.TimeoutSecondsPath) return [name, state];
      return [
        name,
        {
          ...state,
          Parameters: { ...state.Parameters, [`${TIMEOUT_FIELD}.$`]: state.TimeoutSecondsPath },
          TimeoutSecondsPath: `$.${TIMEOUT_FIELD}`,
        },
      ];
    }),
  );
  return { ...definition, States: states };
}

/**
 * Reads a state machine file and applies `${Name}` substitutions exactly as CDK's definitionSubstitutions
 * do on AWS: the file the tests and the local runner execute is the file that is deployed.
 */
export function loadDefinition(file: string, substitutions: Record<string, string>): Definition {
  let text = readFileSync(join(STATE_MACHINES_DIR, file), 'utf8');
  text = text.replace(/\$\{([A-Za-z0-9]+)\}/g, (whole, name: string) => {
    const value = substitutions[name];
    if (value === undefined) throw new Error(`${file}: no substitution for ${whole}`);
    return value;
  });
  return JSON.parse(text) as Definition;
}

/** The Lambda function name a Task state invokes: its Resource, or FunctionName for the lambda:invoke integrations. */
function functionOf(state: Definition['States'][string]): string | undefined {
  const arn = state.Resource?.startsWith('arn:aws:lambda:') ? state.Resource : state.Parameters?.FunctionName;
  return arn?.split(':function:')[1];
}

export interface RunOptions {
  /** Local handlers by Lambda function name. */
  readonly lambdas: Readonly<Record<string, LocalLambda>>;
  /** Milliseconds instead of each named Wait state's own duration (tests). */
  readonly waitTimeOverrides?: Record<string, number>;
  /** Milliseconds instead of each named state's retry intervals (tests). */
  readonly retryIntervalOverrides?: Record<string, number>;
}

/**
 * Runs a definition locally. Each Task that invokes a Lambda runs that function's local handler with the
 * payload AWS would send: the Task's input for a direct Lambda resource, `Payload` for `lambda:invoke`
 * (so `.waitForTaskToken` tasks give their handler the task token, and whatever the handler returns is what
 * the callback would have sent).
 */
export function runStateMachine(definition: Definition, input: unknown, options: RunOptions) {
  const taskResourceLocalHandlers: TaskHandlers = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    const functionName = functionOf(state);
    const handler = functionName ? options.lambdas[functionName] : undefined;
    if (!handler) throw new Error(`state ${name}: no local handler for Lambda ${functionName ?? state.Resource}`);
    const viaInvoke = !state.Resource?.startsWith('arn:aws:lambda:');
    taskResourceLocalHandlers[name] = async (taskInput) => {
      let payload = viaInvoke ? (taskInput as { Payload?: unknown }).Payload : taskInput;
      if (!viaInvoke && state.TimeoutSecondsPath) {
        const { [TIMEOUT_FIELD]: _timeout, ...rest } = taskInput as Record<string, unknown>;
        payload = rest;
      }
      return (await handler(payload)) as never;
    };
  }
  const machine = new StateMachine(timeoutsAsOnAws(definition) as never, { validationOptions: { checkArn: false } });
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers,
      waitTimeOverrides: options.waitTimeOverrides ?? {},
      retryIntervalOverrides: options.retryIntervalOverrides ?? {},
    },
    context: { Task: { Token: 'local-task-token' } } as never,
  });
  return execution;
}
