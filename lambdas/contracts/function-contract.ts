import { z } from 'zod';
import { configEnvironment, loadSettings, type Config, type PipelineSettingKey } from '../core/config';
import type { ErrorName } from '../core/errors';
import type { FunctionName, MetricName, MetricOf } from './telemetry';

/**
 * What one function needs and gives, in one place: its inputs and outputs (by action, as the state machine
 * calls it), its environment (the resources it is bound to, and the pipeline settings it reads), the errors it
 * may throw and the metrics it emits. CDK sets the environment with {@link FunctionEnvironment.build}; the AWS
 * entry reads it once with {@link FunctionEnvironment.read}; the one-machine runtime passes the same values in
 * process; the state machine tests check their fakes against the outputs.
 */
export interface FunctionContract<
  S extends FunctionName,
  I extends z.ZodType,
  R extends z.ZodRawShape,
  K extends PipelineSettingKey,
  O extends Record<string, z.ZodType>,
> {
  readonly name: S;
  readonly description: string;
  /** The function's timeout, and so how long a local invocation may run. */
  readonly timeoutSeconds: number;
  /** Lambda memory (MB), which also sets its CPU share: a full vCPU at 1,769 MB (docs/development.md). */
  readonly memoryMb: number;
  readonly input: I;
  /** The output of each action (`default` when the function has one). */
  readonly outputs: O;
  readonly environment: FunctionEnvironment<R, K>;
  /** The names a task handler may throw: the state machine's Retry and Catch match on these. */
  readonly errors: readonly ErrorName[];
  readonly metrics: readonly MetricOf<S>[];
}

/** Variables that may be left out (they have a default, or are optional). */
type OptionalKeys<R extends z.ZodRawShape> = {
  [K in keyof R]: undefined extends z.input<R[K]> ? K : never;
}[keyof R];

/** A function's resources as CDK (or the local runtime) gives them: typed values, written as text. */
export type ResourceValues<R extends z.ZodRawShape> = {
  [K in Exclude<keyof R, OptionalKeys<R>>]: z.output<R[K]>;
} & { [K in OptionalKeys<R>]?: z.output<R[K]> };

/** A function's environment once read: its resources by variable name, and its settings. */
export type EnvironmentOf<R extends z.ZodRawShape, K extends PipelineSettingKey> = z.infer<z.ZodObject<R>> & {
  readonly settings: Pick<Config, K>;
};

export interface FunctionEnvironment<R extends z.ZodRawShape, K extends PipelineSettingKey> {
  /** The settings the function reads, by key. */
  readonly settings: readonly K[];
  readonly resources: z.ZodObject<R>;
  /** The environment variables CDK sets: the resources as given, and only the settings named. */
  build(resources: ResourceValues<R>, settings: Partial<Config>): Record<string, string>;
  /**
   * Reads and validates the environment once, at start.
   * @throws Error naming every missing or bad variable, e.g. `Invalid environment: LEDGER_TABLE_NAME: required`
   */
  read(env: Record<string, string | undefined>): EnvironmentOf<R, K>;
}

export function defineEnvironment<R extends z.ZodRawShape, K extends PipelineSettingKey>(
  resources: R,
  settings: readonly K[],
  /** A rule across variables: the problem, naming the variable, or nothing. */
  check?: (values: z.output<z.ZodObject<R>>) => { variable: string; message: string } | undefined,
): FunctionEnvironment<R, K> {
  const object = z.object(resources);
  const schema = check
    ? object.superRefine((values, ctx) => {
        const problem = check(values);
        if (problem) ctx.addIssue({ code: 'custom', path: [problem.variable], message: problem.message });
      })
    : object;
  return {
    settings,
    resources: object,
    build(values, config) {
      const env: Record<string, string> = {};
      for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
        if (value === undefined) continue;
        env[name] = typeof value === 'string' ? value : JSON.stringify(value);
      }
      // The CRM token is never an environment variable on AWS: the dispatcher reads its secret.
      return { ...env, ...configEnvironment(config, { keys: settings, secrets: false }) };
    },
    read(env) {
      return { ...(readEnvironment(schema, env) as z.output<z.ZodObject<R>>), settings: loadSettings(settings, env) };
    },
  };
}

/** A contract, typed by what it holds. */
export const defineContract = <
  S extends FunctionName,
  I extends z.ZodType,
  R extends z.ZodRawShape,
  K extends PipelineSettingKey,
  O extends Record<string, z.ZodType>,
>(
  contract: FunctionContract<S, I, R, K, O>,
) => contract;

/** What every contract shows, whatever its types: for CDK and the tests that check them all. */
export interface AnyContract {
  readonly name: FunctionName;
  readonly description: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly input: z.ZodType;
  readonly outputs: Readonly<Record<string, z.ZodType>>;
  readonly environment: { readonly settings: readonly PipelineSettingKey[]; readonly resources: z.ZodObject };
  readonly errors: readonly ErrorName[];
  readonly metrics: readonly MetricName[];
}

/** A JSON-valued environment variable (e.g. the polled sources): parsed from its text. */
export const jsonVariable = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (typeof value === 'string' ? JSON.parse(value) : value), schema);

export const FileRefSchema = z.object({ bucket: z.string().min(1), key: z.string().min(1) });
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * Variables read once at start: every missing or bad one is named with its rule,
 * e.g. `Invalid environment: LEDGER_TABLE_NAME: required`, instead of a stack trace later.
 */
export function readEnvironment<T>(schema: z.ZodType<T>, env: Record<string, string | undefined>): T {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')}: ${issue.message}`);
  throw new Error(`Invalid environment: ${problems.join('; ')}`);
}
