import { lambdaEntry } from '../adapters/aws/lambda-entry';
import { dispatchCrmCallsContract } from './contract';
import { awsDependencies, makeHandler } from './make-handler';

/** The Lambda entry: the environment read once, the real adapters. */
export const handler = lambdaEntry(dispatchCrmCallsContract, awsDependencies, makeHandler);
