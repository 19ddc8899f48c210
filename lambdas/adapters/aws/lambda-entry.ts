import { awsClients, type AwsClients } from './clients';
import type { TelemetryOptions } from './telemetry';

/** What a function's adapters are built from: SDK clients and where its telemetry goes. */
export interface FunctionRuntime {
  readonly clients: AwsClients;
  readonly telemetry?: TelemetryOptions;
}

/**
 * A Lambda entry point (each `lambdas/<function>/handler.ts`): the one read of the environment, by the
 * function's contract, then the real adapters and the handler. Nothing else under lambdas/ reads `process.env`.
 */
export function lambdaEntry<E extends { readonly settings: { readonly logLevel: TelemetryOptions['logLevel'] } }, D, H>(
  contract: { readonly environment: { read(env: Record<string, string | undefined>): E } },
  dependencies: (environment: E, runtime: FunctionRuntime) => D,
  makeHandler: (deps: D) => H,
): H {
  const environment = contract.environment.read(process.env);
  return makeHandler(
    dependencies(environment, { clients: awsClients(), telemetry: { logLevel: environment.settings.logLevel } }),
  );
}
