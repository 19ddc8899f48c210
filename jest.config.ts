import type { Config } from 'jest';

/** swc transpiles without type-checking (about 4x faster than ts-jest); `npm run typecheck` checks types. */
const transform: Config['transform'] = {
  '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' } }],
};

const layer = (name: string): Config => ({
  displayName: name,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  transform,
  // middy is published as ES modules only: let swc turn it into CommonJS like our own code.
  transformIgnorePatterns: ['/node_modules/(?!@middy/)'],
  setupFilesAfterEnv: ['<rootDir>/test/setup.ts'],
});

const config: Config = {
  // The layers of STYLE.md (pure code and single handlers; CDK templates; state machine paths; the one-machine
  // pipeline) plus integration: clients and adapters against real local servers (CRM simulator, DynamoDB).
  // A layer with no tests yet simply runs none.
  projects: [layer('unit'), layer('integration'), layer('infra'), layer('statemachines'), layer('e2e')],
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  testTimeout: 30_000,
};

export default config;
