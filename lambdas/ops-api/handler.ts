import { lambdaEntry } from '../adapters/aws/lambda-entry';
import { opsApiContract } from './contract';
import { awsDependencies, makeHandler } from './make-handler';

/** The Lambda entry: the environment read once, the real adapters. */
export const handler = lambdaEntry(opsApiContract, awsDependencies, makeHandler);
