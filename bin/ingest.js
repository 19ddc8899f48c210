#!/usr/bin/env node
// `npx ingest`: runs the TypeScript entry through tsx, so there is no build step.
require('tsx/cjs');
void require('./ingest.ts').main(process.argv);
