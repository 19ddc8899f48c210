import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { CallQueue, QueuedCall } from '../../lambdas/core/crm/call-message';
import type { PrepareCheckpoint } from '../../lambdas/core/files/prepare-file';
import { preparePhaseSlice } from '../../lambdas/core/workflow/prepare-phase';
import { phaseDeps } from '../support/prepare-deps';
import { MemoryStore } from '../unit/files/in-memory-pipeline';
import { countingReads } from '../support/counting-reads';

/**
 * Figures, not a timed assertion: a plain (and a gzip) users CSV prepared in SLICES slices, each stopped once it
 * has sent its share of batches, read from byte 0 every slice (before checkpoints) and from each checkpoint.
 * PREPARE_RESUME_RECORDS=1000000 npx jest test/integration/prepare-resume-figures.test.ts
 */
const RECORDS = Number(process.env.PREPARE_RESUME_RECORDS ?? 20_000);
const SLICES = Number(process.env.PREPARE_RESUME_SLICES ?? 20);

class CountingQueue implements CallQueue {
  sent = 0;
  send(calls: readonly QueuedCall[]): Promise<void> {
    this.sent += calls.length;
    return Promise.resolve();
  }
}

function usersCsv(records: number): Buffer {
  const rows = ['customer_id,first_name,last_name,email,country,created_at'];
  for (let i = 0; i < records; i++) rows.push(`C${i},Ann,Lee,u${i}@example.com,GB,2026-01-02T03:04:05Z`);
  return Buffer.from(`${rows.join('\n')}\n`);
}

async function run(bytes: Buffer, key: string, resume: boolean) {
  const file = { bucket: 'landing', key };
  const store = countingReads(new MemoryStore(64 * 1024));
  await store.put(file, bytes);
  const queue = new CountingQueue();
  const { deps } = phaseDeps(store, queue);
  const fileId = createHash('sha256').update(bytes).digest('hex');
  const perSlice = Math.ceil(RECORDS / 100 / SLICES);
  let firstBatch = 0;
  let checkpoint: PrepareCheckpoint | undefined;
  let slices = 0;
  const started = process.hrtime.bigint();
  for (;;) {
    slices++;
    const sentBefore = queue.sent;
    const result = await preparePhaseSlice(
      { file, kind: 'users', fileId, phase: 'ADD', firstBatch, ...(resume && checkpoint ? { checkpoint } : {}) },
      deps,
      () => queue.sent - sentBefore >= perSlice,
    );
    firstBatch = result.nextBatch;
    checkpoint = result.checkpoint;
    if (result.complete) break;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  expect(queue.sent).toBe(Math.ceil(RECORDS / 100));
  return { slices, bytesRead: store.bytesRead, seconds };
}

describe('prepare in slices: bytes read and time, from byte 0 each slice vs from each checkpoint', () => {
  it(`${RECORDS} records in about ${SLICES} slices`, async () => {
    const plain = usersCsv(RECORDS);
    const gz = gzipSync(plain, { level: 6 });
    const rows: string[] = [];
    for (const [name, bytes] of [
      ['users.csv', plain],
      ['users.csv.gz', gz],
    ] as const) {
      for (const resume of [false, true]) {
        const r = await run(bytes, `users/acme/${name}`, resume);
        rows.push(
          `${name.padEnd(13)} ${resume ? 'checkpoint ' : 'from byte 0'}  size ${(bytes.length / 1e6).toFixed(1)} MB  ` +
            `slices ${r.slices}  read ${(r.bytesRead / 1e6).toFixed(1)} MB (${(r.bytesRead / bytes.length).toFixed(2)}x)  ` +
            `${r.seconds.toFixed(2)} s`,
        );
        if (resume && !name.endsWith('.gz')) expect(r.bytesRead).toBeLessThan(bytes.length * 1.1);
      }
    }
    process.stdout.write(`\n${rows.join('\n')}\n`);
  }, 600_000);
});
