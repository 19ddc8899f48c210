import type { Context } from 'aws-lambda';
import type { FunctionRuntime } from '../../adapters/aws/lambda-entry';
import type { DeployedSource } from '../../adapters/aws/source-config';
import * as awaitPhase from '../../await-phase/make-handler';
import * as classifyFile from '../../classify-file/make-handler';
import { FUNCTION_CONTRACTS } from '../../contracts/functions';
import type { FunctionName } from '../../contracts/telemetry';
import type { Config } from '../../core/config';
import * as deliverReports from '../../deliver-reports/make-handler';
import * as dispatchCrmCalls from '../../dispatch-crm-calls/make-handler';
import * as finaliseFile from '../../finalise-file/make-handler';
import * as opsApi from '../../ops-api/make-handler';
import type { OpsApiDeps } from '../../ops-api/make-handler';
import * as pollSource from '../../poll-source/make-handler';
import * as prepareFile from '../../prepare-file/make-handler';
import * as sweepLandingZone from '../../sweep-landing-zone/make-handler';
import { localLambdaArn } from '../integrations/state-machine-runner';
import { ROUTE_GROUPS } from '../../ops-api/contract';

/** A function as the local runtime invokes it: the payload AWS would send, and a Lambda context. */
export type LocalFunction = (event: unknown) => Promise<unknown>;

/** The resources the functions are bound to on one machine: what CDK passes them on AWS. */
export interface LocalResources {
  readonly landingBucket: string;
  readonly archiveBucket: string;
  readonly failedBucket: string;
  readonly ledgerTable: string;
  readonly limiterTable: string;
  readonly callQueueUrl: string;
  readonly landingPrefix: string;
  readonly stateMachineArn: string;
  readonly crmUrl: string;
  readonly crmToken?: string;
  readonly sources: readonly DeployedSource[];
  readonly sweepMinAgeSeconds: number;
  /** The operations API's one-machine parts: its stats from the handlers' own metrics, report paths, ... */
  readonly opsApi?: (deps: OpsApiDeps) => OpsApiDeps;
}

/** The timeout a function gets on one machine: its own, or `LOCAL_FUNCTION_TIMEOUT_S` when that is shorter. */
export const localTimeoutSeconds = (name: FunctionName, settings: Pick<Config, 'localFunctionTimeoutSeconds'>) =>
  Math.min(FUNCTION_CONTRACTS[name].timeoutSeconds, settings.localFunctionTimeoutSeconds);

/** A Lambda context whose remaining time counts down from the function's timeout, as on AWS. */
function lambdaContext(name: FunctionName, timeoutMs: number): Context {
  const { memoryMb } = FUNCTION_CONTRACTS[name];
  const started = Date.now();
  return {
    functionName: name,
    functionVersion: '$LATEST',
    awsRequestId: `local-${started}-${Math.random().toString(36).slice(2)}`,
    invokedFunctionArn: localLambdaArn(name),
    memoryLimitInMB: String(memoryMb),
    getRemainingTimeInMillis: () => timeoutMs - (Date.now() - started),
  } as unknown as Context;
}

interface FunctionEnvironmentOwner<E, V> {
  readonly name: FunctionName;
  readonly environment: {
    build(variables: V, settings: Partial<Config>): Record<string, string>;
    read(env: Record<string, string | undefined>): E;
  };
}

interface FunctionModule<E, D> {
  awsDependencies(environment: E, runtime: FunctionRuntime): D;
  makeHandler(deps: D): (event: never, context: Context) => Promise<unknown>;
}

/**
 * Every function built in process, as its AWS entry builds it: the environment CDK would set (from the
 * function's contract, so it holds only what the function reads), validated by the same schema, then the same
 * adapters on the embedded services' clients. Nothing is read from or written to the process environment.
 */
export function localFunctions(
  resources: LocalResources,
  settings: Config,
  runtime: FunctionRuntime,
): Record<FunctionName, LocalFunction> {
  const build = <E, D, V>(
    contract: FunctionEnvironmentOwner<E, V>,
    module: FunctionModule<E, D>,
    variables: NoInfer<V>,
    adjust: (deps: D) => D = (deps) => deps,
  ): LocalFunction => {
    const environment = contract.environment.read(contract.environment.build(variables, settings));
    const handler = module.makeHandler(adjust(module.awsDependencies(environment, runtime)));
    const timeoutMs = localTimeoutSeconds(contract.name, settings) * 1000;
    // middy ends an invocation with a TimeoutError just before the context's time is up, on AWS as here.
    return (event) => handler(event as never, lambdaContext(contract.name, timeoutMs));
  };
  const ledger = { LEDGER_TABLE_NAME: resources.ledgerTable };
  const landing = { LANDING_BUCKET_NAME: resources.landingBucket, LANDING_PREFIX: resources.landingPrefix };
  return {
    'classify-file': build(FUNCTION_CONTRACTS['classify-file'], classifyFile, {
      ...ledger,
      LANDING_PREFIX: resources.landingPrefix,
    }),
    'prepare-file': build(FUNCTION_CONTRACTS['prepare-file'], prepareFile, {
      ...ledger,
      CALL_QUEUE_URL: resources.callQueueUrl,
      LANDING_PREFIX: resources.landingPrefix,
    }),
    'await-phase': build(FUNCTION_CONTRACTS['await-phase'], awaitPhase, ledger),
    'finalise-file': build(FUNCTION_CONTRACTS['finalise-file'], finaliseFile, {
      ...ledger,
      ARCHIVE_BUCKET_NAME: resources.archiveBucket,
      FAILED_BUCKET_NAME: resources.failedBucket,
      LANDING_PREFIX: resources.landingPrefix,
    }),
    'dispatch-crm-calls': build(FUNCTION_CONTRACTS['dispatch-crm-calls'], dispatchCrmCalls, {
      ...ledger,
      LIMITER_TABLE_NAME: resources.limiterTable,
      CALL_QUEUE_URL: resources.callQueueUrl,
      CRM_BASE_URL: resources.crmUrl,
      CRM_API_TOKEN: resources.crmToken,
    }),
    'sweep-landing-zone': build(FUNCTION_CONTRACTS['sweep-landing-zone'], sweepLandingZone, {
      ...landing,
      STATE_MACHINE_ARN: resources.stateMachineArn,
      SWEEP_MIN_AGE_S: resources.sweepMinAgeSeconds,
    }),
    'poll-source': build(FUNCTION_CONTRACTS['poll-source'], pollSource, {
      ...ledger,
      ...landing,
      POLL_SOURCES: [...resources.sources],
    }),
    'deliver-reports': build(FUNCTION_CONTRACTS['deliver-reports'], deliverReports, {
      ...landing,
      POLL_SOURCES: [...resources.sources],
    }),
    // Every route group in one function (on AWS, one function per group).
    'ops-api': build(
      FUNCTION_CONTRACTS['ops-api'],
      opsApi,
      {
        ...ledger,
        ...landing,
        OPS_ROUTES: [...ROUTE_GROUPS],
        ARCHIVE_BUCKET_NAME: resources.archiveBucket,
        CALL_QUEUE_URL: resources.callQueueUrl,
        STATE_MACHINE_ARN: resources.stateMachineArn,
      },
      resources.opsApi,
    ),
  };
}
