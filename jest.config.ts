import type { Config } from 'jest';

/** swc transpiles without type-checking (about 4x faster than ts-jest); `npm run typecheck` checks types. */
const transform: Config['transform'] = {
  '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' } }],
};

const layer = (name: string): Config => ({
  displayName: name,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  transform,
  setupFilesAfterEnv: ['<rootDir>/test/setup.ts'],
});

const config: Config = {
  projects: [layer('unit')],
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  testTimeout: 30_000,
};

export default config;
