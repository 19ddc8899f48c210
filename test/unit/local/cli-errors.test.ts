import { Command } from 'commander';
import type * as Cli from '../../../bin/ingest';

// bin/ingest.js is the `npx ingest` shim, which runs a command as it loads: take the module behind it.
const { runCli } = jest.requireActual<typeof Cli>('../../../bin/ingest.ts');

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
