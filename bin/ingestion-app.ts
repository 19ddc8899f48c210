/**
 * The CDK app: `cdk.json` context -> one validated configuration -> the stateful and stateless stacks, checked
 * by cdk-nag (AwsSolutions) at synthesis.
 */
import { App, Validations, type StackProps } from 'aws-cdk-lib';
import { loadAppConfig, type AppConfig } from '../lib/config';
import { AwsSolutionsWithExpectedWildcards } from '../lib/constructs/nag';
import { StatefulStack } from '../lib/stacks/stateful-stack';
import { StatelessStack } from '../lib/stacks/stateless-stack';

/** CDK behaviours this app relies on (set here so tests and `cdk synth` agree). */
const FEATURE_FLAGS = {
  // Access logs are delivered through a bucket policy, not the legacy ACL (which needs ObjectWriter ownership).
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  // The stateless stack's references to the stateful one stay strong: data resources cannot be removed under it.
  '@aws-cdk/core:defaultCrossStackReferences': 'strong',
};

export interface IngestionApp {
  readonly app: App;
  readonly config: AppConfig;
  readonly stateful: StatefulStack;
  readonly stateless: StatelessStack;
}

/** Builds the app from context (`cdk.json`, `-c key=value`, or `context` in tests); a bad value fails synth. */
export function buildApp(
  context: Record<string, unknown> = {},
  { nag = true, outdir }: { nag?: boolean; outdir?: string } = {},
): IngestionApp {
  const app = new App({ context: { ...FEATURE_FLAGS, ...context }, ...(outdir ? { outdir } : {}) });
  const config = loadAppConfig((key) => app.node.tryGetContext(key));
  const env: StackProps['env'] = {
    account: process.env.CDK_DEFAULT_ACCOUNT,
    region: process.env.CDK_DEFAULT_REGION,
  };
  const stateful = new StatefulStack(app, 'CrmIngestionData', { config, env });
  const stateless = new StatelessStack(app, 'CrmIngestion', { config, stateful, env });
  if (nag) Validations.of(app).addPlugins(new AwsSolutionsWithExpectedWildcards(app));
  return { app, config, stateful, stateless };
}

if (require.main === module) buildApp().app.synth();
