import type { ObjectRef, TextUpload } from '../../../lambdas/core/files/object-store';
import type { RedoMark } from '../../../lambdas/core/ledger/file-claim';
import { abandonRedoRound, selectRedoLines } from '../../../lambdas/core/workflow/redo-round';
import { MemorySchedule } from '../../support/memory-schedule';

/**
 * A redo round's own steps in the workflow (finalise-file's select-redo and abandon-redo): the lines it sends,
 * picked from results.csv, and its end when it fails.
 */
const FILE = 'b'.repeat(64);
const RESULTS = [
  'line,record_id,operations,outcome,code,error,attempts',
  '2,T1,ADD_TRX,succeeded,200,,1',
  '3,T2,ADD_TRX+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,2',
  '4,T3,,failed,,"VALIDATION: amount: must be a number, got ""1,5""",0',
  '5,T4,ADD_TRX,failed,624,DUPLICATE,1',
  '6,T5,ADD_TRX+ADD_TRX,failed,4404,CUSTOMER_NOT_FOUND,2',
  '7,T6,,failed,,cancelled by an operator before it was sent,0',
].join('\n');

function memoryStore(objects: Map<string, string>, chunkBytes = 7) {
  return {
    read: async function* (ref: ObjectRef) {
      const text = objects.get(`${ref.bucket}/${ref.key}`);
      if (text === undefined) throw Object.assign(new Error(`no ${ref.key}`), { name: 'File.Gone' });
      // In small chunks: a row split across chunks is still one row.
      const bytes = Buffer.from(text);
      for (let at = 0; at < bytes.length; at += chunkBytes) yield bytes.subarray(at, at + chunkBytes);
    },
    upload: (ref: ObjectRef): TextUpload => {
      let text = '';
      return {
        write: (part) => {
          text += part;
          return Promise.resolve();
        },
        end: () => {
          objects.set(`${ref.bucket}/${ref.key}`, text);
          return Promise.resolve();
        },
        abort: () => Promise.resolve(),
      };
    },
  };
}

describe('selectRedoLines (select-redo)', () => {
  const results = { bucket: 'archive', key: 'reports/acme/t.csv/bbbb/results.csv' };
  const lines = { bucket: 'archive', key: `redo/${FILE}/1.lines` };

  it('writes the lines of the failed records with those codes, ascending, and counts them', async () => {
    const objects = new Map([[`archive/${results.key}`, `${RESULTS}\n`]]);
    const count = await selectRedoLines(memoryStore(objects), { codes: ['4404', 'CANCELLED'], results, lines });
    expect(count).toBe(3);
    expect(objects.get(`archive/${lines.key}`)).toBe('3\n6\n7\n');
  });

  it('0 when no failed record has them (the round is then given up): an empty lines object', async () => {
    const objects = new Map([[`archive/${results.key}`, RESULTS]]);
    expect(await selectRedoLines(memoryStore(objects), { codes: ['3217', '200'], results, lines })).toBe(0);
    expect(objects.get(`archive/${lines.key}`)).toBe('');
  });

  it('a results.csv that is gone fails the step (the round is given up with that error)', async () => {
    await expect(selectRedoLines(memoryStore(new Map()), { codes: ['4404'], results, lines })).rejects.toMatchObject({
      name: 'File.Gone',
    });
  });
});

describe('abandonRedoRound (abandon-redo)', () => {
  function world(mark: RedoMark | undefined) {
    const schedule = new MemorySchedule();
    const order: string[] = [];
    let current = mark;
    const deps = {
      outcomes: { read: () => Promise.resolve({ ...(current ? { redo: current } : {}) }) },
      marks: {
        abandonRedo: (_fileId: string, round: number, reason?: string) => {
          order.push(`abandon ${round}: ${reason}`);
          const ended = current?.round === round && !current.done;
          if (ended) current = { ...current!, done: true, abandoned: true, ...(reason ? { reason } : {}) };
          return Promise.resolve(ended);
        },
      },
      schedule: {
        read: (fileId: string) => schedule.read(fileId),
        view: () => schedule.view(),
        takeTurnToken: (fileId: string, token: string) => schedule.takeTurnToken(fileId, token),
        finish: (file: { fileId: string; partner: string; kind: 'users' | 'transactions' }, at: string) => {
          order.push(`finish ${file.fileId.slice(0, 4)}`);
          return schedule.finish(file, at);
        },
      },
    };
    return { deps, schedule, order, mark: () => current };
  }
  const inFlight: RedoMark = { round: 2, codes: ['4404'], lines: 2, requestedAt: '2026-11-25T09:00:00.000Z' };
  const error = { Error: 'File.Unreadable', Cause: '{"errorMessage":"line 3: not UTF-8"}' };

  it('takes the file out of the schedule, then ends the round on the claim with the reason', async () => {
    const { deps, schedule, order, mark } = world(inFlight);
    await schedule.register({
      fileId: FILE,
      name: 't.csv',
      partner: 'acme',
      kind: 'transactions',
      landedAt: '2026-11-24T08:00:00.000Z',
    });
    expect(await abandonRedoRound(deps, { fileId: FILE, round: 2, error })).toBe(true);
    expect(order).toEqual(['finish bbbb', 'abandon 2: File.Unreadable: line 3: not UTF-8']);
    expect(await schedule.read(FILE)).toBeUndefined();
    expect(mark()).toMatchObject({
      round: 2,
      done: true,
      abandoned: true,
      reason: 'File.Unreadable: line 3: not UTF-8',
    });
  });

  it('a file never registered (SelectRedo failed) only has its round ended', async () => {
    const { deps, order } = world(inFlight);
    expect(await abandonRedoRound(deps, { fileId: FILE, round: 2, error })).toBe(true);
    expect(order).toEqual(['abandon 2: File.Unreadable: line 3: not UTF-8']);
  });

  it('a round already ended (a repeated step, or its summary kept) changes nothing: a later round keeps its entry', async () => {
    for (const mark of [{ ...inFlight, done: true }, { ...inFlight, round: 3 }, undefined]) {
      const { deps, schedule, order } = world(mark);
      await schedule.register({
        fileId: FILE,
        name: 't.csv',
        partner: 'acme',
        kind: 'transactions',
        landedAt: '2026-11-24T08:00:00.000Z',
      });
      expect(await abandonRedoRound(deps, { fileId: FILE, round: 2, error })).toBe(false);
      expect(order).toEqual([]);
      expect(await schedule.read(FILE)).toBeDefined();
    }
  });
});
