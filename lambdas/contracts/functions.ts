import { awaitPhaseContract } from '../await-phase/contract';
import { classifyFileContract } from '../classify-file/contract';
import { deliverReportsContract } from '../deliver-reports/contract';
import { dispatchCrmCallsContract } from '../dispatch-crm-calls/contract';
import { finaliseFileContract } from '../finalise-file/contract';
import { opsApiContract } from '../ops-api/contract';
import { pollSourceContract } from '../poll-source/contract';
import { prepareFileContract } from '../prepare-file/contract';
import { sweepLandingZoneContract } from '../sweep-landing-zone/contract';
import type { AnyContract } from './function-contract';
import type { FunctionName } from './telemetry';

/** Every function's contract, by name. */
export const FUNCTION_CONTRACTS = {
  'classify-file': classifyFileContract,
  'prepare-file': prepareFileContract,
  'await-phase': awaitPhaseContract,
  'finalise-file': finaliseFileContract,
  'dispatch-crm-calls': dispatchCrmCallsContract,
  'sweep-landing-zone': sweepLandingZoneContract,
  'poll-source': pollSourceContract,
  'deliver-reports': deliverReportsContract,
  'ops-api': opsApiContract,
} as const satisfies Record<FunctionName, AnyContract>;
