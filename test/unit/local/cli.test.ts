import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS } from '../../../lambdas/core/config';
import type * as Cli from '../../../bin/ingest';

// bin/ingest.js is the `npx ingest` shim, which runs a command as it loads: take the module behind it.
const { buildProgram, runCli } = jest.requireActual<typeof Cli>('../../../bin/ingest.ts');

/** What `runCli` writes on stderr and sets as the exit status when a command fails with `error`. */
async function failWith(error: unknown) {
  const written: string[] = [];
  const write = jest.spyOn(process.stderr, 'write').mockImplementation((text) => {
    written.push(String(text));
    return true;
  });
  const previous = process.exitCode;
  try {
    const program = new Command('ingest').exitOverride();
    program.command('run').action(() => {
      throw error;
    });
    await runCli(['node', 'ingest', 'run'], program);
    return { stderr: written.join(''), exitCode: process.exitCode };
  } finally {
    write.mockRestore();
    process.exitCode = previous;
  }
}

describe('the command line on a failure', () => {
  it('names the cause of an error whose code is a number (an SFTP status), exit 1', async () => {
    const failure = Object.assign(new Error('Permission denied: /data/users_acme_20261124_001.csv'), { code: 3 });
    expect(await failWith(failure)).toEqual({
      stderr: 'ingest: Permission denied: /data/users_acme_20261124_001.csv\n',
      exitCode: 1,
    });
  });

  it('names the cause of a system error (a string code), exit 1', async () => {
    const failure = Object.assign(new Error('EACCES: permission denied, open /data/x.csv'), { code: 'EACCES' });
    expect(await failWith(failure)).toEqual({
      stderr: 'ingest: EACCES: permission denied, open /data/x.csv\n',
      exitCode: 1,
    });
  });
});

describe('the command line options', () => {
  const commands = ['run', 'up', 'demo'].map((name) => buildProgram().commands.find((c) => c.name() === name)!);
  const documented = [
    ...readFileSync(join(__dirname, '../../../docs/configuration.md'), 'utf8').matchAll(/\| `(--[a-z-]+)`/g),
  ].map((match) => match[1]);

  it('take every flag docs/configuration.md documents, from the one settings table', () => {
    expect(documented.sort()).toEqual(
      Object.values(SETTINGS)
        .map((setting) => `--${setting.flag}`)
        .sort(),
    );
    for (const command of commands) {
      const flags = command.options.map((option) => option.long);
      expect({ command: command.name(), missing: documented.filter((flag) => !flags.includes(flag)) }).toEqual({
        command: command.name(),
        missing: [],
      });
    }
  });

  it('say the default partner, and cite only documents the repository has', () => {
    const run = commands[0]!;
    expect(run.helpInformation()).toContain('(default: demo)');
    expect(run.helpInformation()).not.toContain('[]');
    for (const command of buildProgram().commands) {
      for (const cited of command.helpInformation().match(/[\w./-]+\.md\b/g) ?? []) {
        expect(() => readFileSync(join(__dirname, '../../..', cited))).not.toThrow();
      }
    }
  });
});
