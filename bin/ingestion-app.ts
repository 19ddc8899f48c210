/**
 * The CDK app: `cdk.json` context -> one validated configuration -> the stacks.
 * The stateful and stateless stacks are built in the infrastructure issue; until then this app validates
 * the configuration and synthesises an empty assembly.
 */
import { App } from 'aws-cdk-lib';
import { loadConfig, SETTINGS, type Config, type SettingKey } from '../lambdas/core/config';

/** Reads the settings from CDK context (keys as in {@link SETTINGS}, e.g. `callsPerMinute`); bad values fail synth. */
export function configFromContext(app: App): Config {
  const flags: Partial<Record<SettingKey, unknown>> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const value: unknown = app.node.tryGetContext(key);
    if (value !== undefined) flags[key] = value;
  }
  return loadConfig({ flags });
}

export function buildApp(context: Record<string, unknown> = {}): { app: App; config: Config } {
  const app = new App({ context });
  return { app, config: configFromContext(app) };
}

if (require.main === module) buildApp().app.synth();
