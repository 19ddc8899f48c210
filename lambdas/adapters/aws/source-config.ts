import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { jsonVariable } from '../../contracts/function-contract';
import { PollSourceSchema, type PollSource } from '../../core/polling/poll-source';
import { SourceCredentialsSchema, type SourceCredentials } from '../sftp/sftp-folder';

/** A source as its Lambdas get it (POLL_SOURCES): the configuration and the secret that holds its credentials. */
export const DeployedSourceSchema = PollSourceSchema.extend({ secretId: z.string().min(1) });
export type DeployedSource = z.infer<typeof DeployedSourceSchema> & PollSource;

/**
 * POLL_SOURCES, JSON, the one variable that tells the poller and the report delivery their sources: written
 * by CDK (and the local runtime) through their contracts' builders, read by the same schema. Every source is
 * validated, names unique; a bad one is named at start.
 */
export const DeployedSourcesSchema = jsonVariable(
  z.array(DeployedSourceSchema).refine((sources) => new Set(sources.map((s) => s.name)).size === sources.length, {
    error: 'source names must be unique',
  }),
);

/** The source's credentials from Secrets Manager: `{"password"}` or `{"privateKey", "passphrase"?}`. */
export async function sourceCredentials(
  secrets: SecretsManagerClient,
  source: DeployedSource,
): Promise<SourceCredentials> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: source.secretId }));
  let value: unknown;
  try {
    value = JSON.parse(SecretString ?? '');
  } catch {
    throw new Error(`the secret of source ${source.name} is not JSON: put {"password": ...} or {"privateKey": ...}`);
  }
  const parsed = SourceCredentialsSchema.safeParse(value);
  if (!parsed.success) {
    throw new Error(`the secret of source ${source.name} holds neither "password" nor "privateKey"`);
  }
  return parsed.data;
}
