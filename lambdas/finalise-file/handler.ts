import { lambdaEntry } from '../adapters/aws/lambda-entry';
import { finaliseFileContract } from './contract';
import { awsDependencies, makeHandler } from './make-handler';

/** The Lambda entry: the environment read once, the real adapters. */
export const handler = lambdaEntry(finaliseFileContract, awsDependencies, makeHandler);
