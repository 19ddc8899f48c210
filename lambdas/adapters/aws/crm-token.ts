import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** Where the CRM token comes from: read once, on first use. */
export type CrmTokenSource = () => Promise<string>;

/** The token in a Secrets Manager secret (AWS): read on first use, then kept for the life of the function. */
export function secretToken(secrets: SecretsManagerClient, secretId: string): CrmTokenSource {
  let token: Promise<string> | undefined;
  return () =>
    (token ??= secrets.send(new GetSecretValueCommand({ SecretId: secretId })).then(({ SecretString }) => {
      if (!SecretString) throw new Error('the CRM token secret is empty');
      return SecretString;
    })).catch((error: unknown) => {
      token = undefined;
      throw error;
    });
}

/** A token given as it is (one machine, or a CRM_API_TOKEN variable). */
export const givenToken =
  (token: string): CrmTokenSource =>
  async () =>
    token;
