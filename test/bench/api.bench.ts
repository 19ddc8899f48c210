/**
 * `npm run bench:api`: the operations API's latency over real HTTP (the one-machine server and the Lambda's own
 * handler) on a ledger in dynalite that holds `--files` x `--records` records' answers (default 10 x 100,000:
 * 1M), with their phase counters, claims (most finished with a summary, some in flight with a schedule entry)
 * and record index, written through the pipeline's own adapters. Prints p50/p99 of `--requests` requests each
 * for the file list, a file's view and a record lookup, the index's write cost per million records, and how long
 * the seeding took.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { DynamoDbCallAnswers } from '../../lambdas/adapters/aws/dynamodb-call-answers';
import { DynamoDbFileRegistry } from '../../lambdas/adapters/aws/dynamodb-file-registry';
import { DynamoDbPhaseCounters } from '../../lambdas/adapters/aws/dynamodb-phase-counters';
import { DynamoDbRecordIndex, indexItems, itemBytes } from '../../lambdas/adapters/aws/dynamodb-record-index';
import { DynamoDbSchedule } from '../../lambdas/adapters/aws/dynamodb-schedule';
import { createTelemetry } from '../../lambdas/adapters/aws/telemetry';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import { RecordIndexBuffer, type IndexChunk, type RecordIndexWriter } from '../../lambdas/core/ledger/record-index';
import { lookupRecord } from '../../lambdas/core/operations/record-lookup';
import { scheduleRules } from '../../lambdas/core/schedule/schedule';
import type { FinalSummary } from '../../lambdas/core/workflow/finalise-file';
import { loadConfig } from '../../lambdas/core/config';
import { startOpsServer } from '../../lambdas/local/api/ops-server';
import { startLocalDynamoDb, TABLES } from '../../lambdas/local/services/local-dynamodb';
import { makeHandler } from '../../lambdas/ops-api/make-handler';
import { ROUTE_GROUPS } from '../../lambdas/ops-api/contract';
import { numberOption, percentile } from './bench-support';

const FILES = numberOption('--files', 10);
const RECORDS = numberOption('--records', 100_000);
const REQUESTS = numberOption('--requests', 200);
/** Files still in flight (the rest are finished). */
const RUNNING = Math.min(2, FILES);
const TABLE = 'ledger';

/** The handler's logs and metrics: not part of what is measured. */
const discarded = new Writable({ write: (_chunk, _encoding, done) => done() });

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const idOf = (kind: FileKind, file: number, n: number) => `${kind === 'users' ? 'C' : 'T'}${file}-${n}`;

/** Runs `work` over `items` with at most `width` in flight. */
async function inParallel<T>(items: readonly T[], width: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

async function main() {
  const db = await startLocalDynamoDb({ separateProcess: true });
  try {
    await db.createTable(TABLE, TABLES.ledger);
    const client = db.client();
    const answers = new DynamoDbCallAnswers(client, TABLE);
    const phases = new DynamoDbPhaseCounters(client, TABLE, answers);
    const registry = new DynamoDbFileRegistry(client, TABLE);
    const schedule = new DynamoDbSchedule(client, TABLE);
    const index = new DynamoDbRecordIndex(client, TABLE);
    let indexWriteUnits = 0;
    let indexItemsWritten = 0;
    const countingIndex: RecordIndexWriter = {
      async writeChunk(chunk: IndexChunk) {
        for (const item of indexItems(chunk, { expiresAt: 0, indexedAt: Date.now() })) {
          indexItemsWritten++;
          indexWriteUnits += Math.ceil(itemBytes(item) / 1024);
        }
        await index.writeChunk(chunk);
      },
    };

    const seeded = Date.now();
    const files: { fileId: string; kind: FileKind; file: number }[] = [];
    for (let file = 0; file < FILES; file++) {
      const kind: FileKind = file % 2 === 0 ? 'users' : 'transactions';
      const fileId = sha(`bench-file-${file}`);
      const partner = `p${file % 3}`;
      const name = `${kind}_${partner}_20261124_${String(file).padStart(3, '0')}.csv`;
      const landedAt = new Date(Date.UTC(2026, 10, 24, 0, file)).toISOString();
      files.push({ fileId, kind, file });
      await registry.claim({
        fileId,
        bucket: 'landing',
        key: `${kind}/${partner}/${name}`,
        kind,
        name,
        partner,
        landedAt,
      });
      const operation = kind === 'users' ? 'ADD_CUST' : 'ADD_TRX';
      const batches = Array.from({ length: Math.ceil(RECORDS / 100) }, (_, b) => b);
      await inParallel(batches, 32, async (batchIndex) => {
        const outcomes = Array.from({ length: Math.min(100, RECORDS - batchIndex * 100) }, (_, i) => {
          const line = batchIndex * 100 + i + 2;
          return line % 97 === 0
            ? { line, status: 'failed' as const, code: 3217, reason: '3217', error: 'email refused' }
            : { line, status: 'succeeded' as const, code: 200 };
        });
        const answer = { fileId, phase: 'ADD', batchIndex, operation, outcomes, attempts: 1, replayed: false } as const;
        await answers.recordAnswer(answer);
        await phases.countAnswer(answer);
      });
      await phases.setBatchTotal(fileId, 'ADD', batches.length);
      const buffer = new RecordIndexBuffer(countingIndex, { fileId, name, partner, kind });
      let failed = 0;
      for (let n = 0; n < RECORDS; n++) {
        const line = n + 2;
        const refused = line % 97 === 0;
        if (refused) failed++;
        await buffer.add({
          line,
          recordId: idOf(kind, file, n),
          operations: [operation],
          outcome: refused ? 'failed' : 'succeeded',
          code: refused ? 3217 : 200,
          ...(refused ? { reason: '3217', error: 'email refused' } : {}),
          attempts: 1,
        });
      }
      const finishedAt = new Date(Date.UTC(2026, 10, 24, 1, file)).toISOString();
      await buffer.flush({ finishedAt });
      if (file < FILES - RUNNING) {
        const summary: FinalSummary = {
          name,
          sha256: fileId,
          kind,
          status: 'partial',
          received: RECORDS,
          succeeded: RECORDS - failed,
          failed,
          failures: { '3217': failed },
          reports: { bucket: 'archive', summary: `reports/${partner}/${name}/x/summary.json` },
          landedAt,
          startedAt: landedAt,
          finishedAt,
          calls: { made: batches.length, remaining: 0 },
        };
        await registry.recordSummary(fileId, summary);
      } else {
        await schedule.register({ fileId, name, partner, kind, landedAt });
        await schedule.update(fileId, {
          state: 'sending',
          phase: 'ADD',
          sent: batches.length,
          answered: batches.length - 10,
          batchesEstimate: batches.length,
          received: RECORDS,
          rejected: 0,
        });
      }
      process.stderr.write(`\rseeded ${file + 1}/${FILES} files`);
    }
    const seedSeconds = (Date.now() - seeded) / 1000;
    process.stderr.write('\n');

    const settings = loadConfig({ env: {} });
    const handler = makeHandler({
      routes: ROUTE_GROUPS,
      files: { catalog: registry, schedule, phases, rules: scheduleRules(settings), callsPerMinute: 1000 },
      reports: {
        head: () => Promise.reject(new Error('no reports')),
        tags: async () => ({}),
        read: async function* () {},
      },
      lookup: (query) =>
        lookupRecord({ index, finishedAt: async (id) => (await registry.get(id))?.summary?.finishedAt }, query),
      telemetry: createTelemetry('ops-api', { logLevel: 'ERROR', output: discarded }),
    });
    const server = await startOpsServer({ handle: (event) => handler(event as never, {} as never) });
    try {
      const time = async (path: () => string) => {
        const samples: number[] = [];
        for (let i = 0; i < REQUESTS; i++) {
          const started = process.hrtime.bigint();
          const response = await fetch(`${server.url}${path()}`, {
            headers: { authorization: `Bearer ${server.token}` },
          });
          await response.text();
          if (response.status !== 200) throw new Error(`${path()}: ${response.status}`);
          samples.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
        return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
      };
      const pick = () => files[Math.floor(Math.random() * files.length)] as (typeof files)[number];
      const results = {
        'GET /v1/files?limit=100': await time(() => '/v1/files?limit=100'),
        'GET /v1/files/{fileId}': await time(() => `/v1/files/${pick().fileId}`),
        'GET /v1/records/{recordId}?kind=': await time(() => {
          const file = pick();
          return `/v1/records/${idOf(file.kind, file.file, Math.floor(Math.random() * RECORDS))}?kind=${file.kind}`;
        }),
        'GET /v1/records/{recordId} (a miss, both kinds)': await time(() => '/v1/records/NOBODY'),
      };
      const total = FILES * RECORDS;
      console.log(
        `ledger: ${FILES} files x ${RECORDS.toLocaleString('en-US')} records = ${total.toLocaleString('en-US')} records' answers (${FILES - RUNNING} finished, ${RUNNING} in flight); seeded in ${seedSeconds.toFixed(0)} s`,
      );
      console.log(
        `requests: ${REQUESTS} each, one at a time, over HTTP to the one-machine server (dynalite in its own process)`,
      );
      for (const [route, { p50, p99 }] of Object.entries(results)) {
        console.log(
          `  ${route.padEnd(48)} p50 ${p50.toFixed(1)} ms   p99 ${p99.toFixed(1)} ms   p99/p50 ${(p99 / p50).toFixed(2)}`,
        );
      }
      const perMillion = 1e6 / total;
      console.log(
        `record index writes: ${Math.round(indexItemsWritten * perMillion).toLocaleString('en-US')} items, ` +
          `${Math.round(indexWriteUnits * perMillion).toLocaleString('en-US')} write units per million records ` +
          `($${((indexWriteUnits * perMillion * 1.25) / 1e6).toFixed(3)} on demand; a write per record: 1,000,000 units, $1.25)`,
      );
    } finally {
      await server.close();
    }
  } finally {
    await db.close();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
