/**
 * `npx tsx test/bench/record-index.bench.ts`: the record lookup index (docs/design.md, Record lookup index) on
 * dynalite. Indexes `--files` users files and as many transactions files of `--records` records each (default
 * 5 + 5 x 100,000: 1M records; users files overlap by 20% of their customers, as updates do), then one file of
 * `--large` records (default 1,000,000: chunks of 500,000), through the same buffer and DynamoDB adapter finalise
 * uses. Prints, per million records: items, bytes and write request units (sum of ceil(item bytes / 1 KB)),
 * beside a write per record (computed: the item such a design would write per record); lookup latency p50/p99
 * over `--lookups` random ids and for a miss; and what a lookup would read and decode at 30 days of 120M-record
 * loads (a shard's partition built in memory at that size, decoded as the adapter does).
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { DynamoDbRecordIndex, indexItems, itemBytes } from '../../lambdas/adapters/aws/dynamodb-record-index';
import type { FileKind } from '../../lambdas/core/files/record-schemas';
import type { RecordResult } from '../../lambdas/core/ledger/file-report';
import {
  entriesWithId,
  encodeShard,
  FLUSH_RECORDS,
  RECORD_INDEX_SHARDS,
  RecordIndexBuffer,
  shardOf,
  type IndexChunk,
  type IndexEntry,
  type RecordIndexWriter,
} from '../../lambdas/core/ledger/record-index';
import { idOf } from '../../lambdas/local/cli/generate-files';
import { startLocalDynamoDb, TABLES } from '../../lambdas/local/services/local-dynamodb';
import { draw, mixedFates } from './answers';
import { numberOption, percentile } from './bench-support';

const inflate = promisify(gunzip);
const KB = 1024;
const MB = 1024 * 1024;
const WRITE_UNIT_PRICE = 1.25 / 1e6;
const LOAD = { users: 20e6, transactions: 100e6 };
const RETENTION_LOADS = 30;

/** A record's result as finalise reports it: 1% VALIDATION, then the fates of test/bench/answers.ts. */
function resultOf(kind: FileKind, id: string, line: number): RecordResult {
  if (draw(line, 1) < 10) {
    const error =
      kind === 'users' ? 'VALIDATION: email: an email address' : 'VALIDATION: currency: an ISO 4217 currency code';
    return { line, recordId: id, operations: [], outcome: 'failed', reason: 'VALIDATION', error, attempts: 0 };
  }
  const fates = mixedFates(kind, line);
  const last = fates[fates.length - 1] as (typeof fates)[number];
  const succeeded = last.status === 'succeeded';
  return {
    line,
    recordId: id,
    operations: [],
    outcome: succeeded ? 'succeeded' : 'failed',
    ...(last.code === undefined ? {} : { code: last.code }),
    ...(succeeded ? {} : { reason: last.reason ?? String(last.code) }),
    ...(last.error === undefined ? {} : { error: last.error }),
    attempts: fates.length,
  };
}

interface Tally {
  records: number;
  items: number;
  bytes: number;
  writeUnits: number;
  flushSeconds: number[];
}

const emptyTally = (): Tally => ({ records: 0, items: 0, bytes: 0, writeUnits: 0, flushSeconds: [] });

/** The adapter, with every item it writes sized as DynamoDB bills it. */
function tallied(index: RecordIndexWriter, tally: Tally): RecordIndexWriter {
  return {
    async writeChunk(chunk: IndexChunk) {
      for (const item of indexItems(chunk, { expiresAt: 1_800_000_000, indexedAt: Date.now() })) {
        const bytes = itemBytes(item);
        tally.items++;
        tally.bytes += bytes;
        tally.writeUnits += Math.ceil(bytes / KB);
      }
      const started = performance.now();
      await index.writeChunk(chunk);
      tally.flushSeconds.push((performance.now() - started) / 1000);
    },
  };
}

/** What a write per record would store: one item per (id, file, line), the same attributes. */
function perRecordBytes(file: { fileId: string; name: string; partner: string }, kind: FileKind, result: RecordResult) {
  return itemBytes({
    pk: `record#${kind}#${result.recordId}`,
    sk: `${file.fileId}#${String(result.line).padStart(10, '0')}`,
    name: file.name,
    partner: file.partner,
    outcome: result.outcome,
    ...(result.outcome === 'failed' ? { code: result.reason } : { code: String(result.code) }),
    ...(result.error === undefined ? {} : { error: result.error }),
    indexedAt: Date.now(),
    expiresAt: 1_800_000_000,
  });
}

interface BenchFile {
  readonly kind: FileKind;
  readonly fileId: string;
  readonly name: string;
  readonly partner: string;
  readonly ids: (n: number) => string;
  readonly records: number;
}

async function indexFiles(index: RecordIndexWriter, files: readonly BenchFile[]) {
  const tally = emptyTally();
  const perRecord = { items: 0, bytes: 0, writeUnits: 0 };
  const writer = tallied(index, tally);
  let peakHeld = 0;
  const started = performance.now();
  for (const file of files) {
    const buffer = new RecordIndexBuffer(writer, file);
    for (let n = 0; n < file.records; n++) {
      const result = resultOf(file.kind, file.ids(n), n + 2);
      const bytes = perRecordBytes(file, file.kind, result);
      perRecord.items++;
      perRecord.bytes += bytes;
      perRecord.writeUnits += Math.ceil(bytes / KB);
      const told = buffer.add(result);
      if (told) await told;
      peakHeld = Math.max(peakHeld, buffer.size);
    }
    await buffer.flush({ finishedAt: new Date().toISOString() });
    tally.records += file.records;
  }
  return { tally, perRecord, peakHeld, seconds: (performance.now() - started) / 1000 };
}

function printWrites(label: string, result: Awaited<ReturnType<typeof indexFiles>>) {
  const { tally, perRecord } = result;
  const perM = 1e6 / tally.records;
  const row = (name: string, items: number, bytes: number, units: number) =>
    `  ${name.padEnd(16)} ${(items * perM).toFixed(0).padStart(9)} items ${((bytes * perM) / MB).toFixed(1).padStart(7)} MB ` +
    `${(units * perM).toFixed(0).padStart(9)} WRU  $${(units * perM * WRITE_UNIT_PRICE).toFixed(3)}  ` +
    `(${(bytes / items).toFixed(0)} B an item)`;
  console.log(`${label}: ${tally.records.toLocaleString('en')} records, per million records:`);
  console.log(row('index', tally.items, tally.bytes, tally.writeUnits));
  console.log(row('write per record', perRecord.items, perRecord.bytes, perRecord.writeUnits));
  const flushes = tally.flushSeconds;
  console.log(
    `  written in ${result.seconds.toFixed(1)} s on dynalite (${flushes.length} chunks, ` +
      `p50 ${percentile(flushes, 50).toFixed(2)} s a chunk); the buffer held at most ${result.peakHeld.toLocaleString('en')} entries`,
  );
}

/** Heap a full buffer takes: FLUSH_RECORDS entries held (the writer never called). */
function bufferHeapMb(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  const buffer = new RecordIndexBuffer(
    { writeChunk: () => Promise.reject(new Error('not written')) },
    { fileId: 'f'.repeat(64), name: 'x', partner: 'p', kind: 'transactions' },
  );
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let n = 0; n < FLUSH_RECORDS; n++) void buffer.add(resultOf('transactions', idOf('T', n), n + 2));
  gc();
  const heldMb = (process.memoryUsage().heapUsed - before) / MB;
  if (buffer.size !== FLUSH_RECORDS) throw new Error(`the buffer holds ${buffer.size}`);
  return heldMb;
}

/**
 * One shard's partition at 30 days of loads, for `kind`, built in memory: its entries in items of a 500,000-record
 * chunk's size; then gunzipped and scanned as the adapter does for one id. What the partition holds and what it
 * takes to decode: the CPU part of a lookup at that size (on AWS, the Query pages come on top).
 */
async function retainedPartition(kind: FileKind) {
  const entries = Math.round((LOAD[kind] * RETENTION_LOADS) / RECORD_INDEX_SHARDS);
  const perItem = Math.round(FLUSH_RECORDS / RECORD_INDEX_SHARDS);
  const items: Uint8Array[] = [];
  let bytes = 0;
  let wanted = '';
  for (let at = 0, line = 2; at < entries; at += perItem) {
    const chunk: IndexEntry[] = [];
    for (let i = at; i < Math.min(entries, at + perItem); i++, line += RECORD_INDEX_SHARDS) {
      const result = resultOf(kind, idOf(kind === 'users' ? 'C' : 'T', i * 7919), line);
      chunk.push({
        id: result.recordId,
        line,
        outcome: result.outcome,
        code: result.outcome === 'failed' ? (result.reason as string) : String(result.code),
        ...(result.error === undefined ? {} : { error: result.error }),
      });
    }
    if (at === Math.floor(entries / 2 / perItem) * perItem) wanted = (chunk[0] as IndexEntry).id;
    const parts = encodeShard(0, chunk);
    const file = { fileId: 'f'.repeat(64), name: `${kind}_acme_20261124_001.csv`, partner: 'acme', kind };
    for (const item of indexItems({ file, firstLine: line, parts }, { expiresAt: 1_800_000_000, indexedAt: 1 })) {
      bytes += itemBytes(item);
    }
    items.push(...parts.map((part) => part.entries));
  }
  const times: number[] = [];
  for (let run = 0; run < 5; run++) {
    const started = performance.now();
    const texts = await Promise.all(items.map(async (item) => (await inflate(item)).toString('utf8')));
    const hits = texts.flatMap((text) => entriesWithId(text, wanted));
    if (hits.length !== 1) throw new Error(`found ${hits.length} of ${wanted}`);
    times.push(performance.now() - started);
  }
  return { entries, items: items.length, bytes, decodeMs: percentile(times, 50) };
}

async function main() {
  const files = numberOption('--files', 5);
  const records = numberOption('--records', 100_000);
  const large = numberOption('--large', 1_000_000);
  const lookups = numberOption('--lookups', 200);
  const db = await startLocalDynamoDb({ separateProcess: true });
  try {
    await db.createTable('ledger', TABLES.ledger);
    const index = new DynamoDbRecordIndex(db.client(), 'ledger');
    const fileId = (n: number) => n.toString(16).padStart(64, '0');
    const small: BenchFile[] = [];
    for (let f = 0; f < files; f++) {
      const sequence = String(f + 1).padStart(3, '0');
      small.push({
        kind: 'users',
        fileId: fileId(2 * f + 1),
        name: `users_acme_20261124_${sequence}.csv`,
        partner: 'acme',
        ids: (n) => idOf('C', f * Math.round(records * 0.8) + n),
        records,
      });
      small.push({
        kind: 'transactions',
        fileId: fileId(2 * f + 2),
        name: `transactions_acme_20261124_${sequence}.csv`,
        partner: 'acme',
        ids: (n) => idOf('T', f * records + n),
        records,
      });
    }
    printWrites(`${small.length} files of ${records.toLocaleString('en')}`, await indexFiles(index, small));
    const big: BenchFile = {
      kind: 'transactions',
      fileId: fileId(999),
      name: 'transactions_big_20261124_001.csv',
      partner: 'big',
      ids: (n) => idOf('X', n),
      records: large,
    };
    printWrites(`1 file of ${large.toLocaleString('en')}`, await indexFiles(index, [big]));

    // Lookups of ids drawn from every file, then a miss.
    const everyFile = [...small, big];
    const times: number[] = [];
    let random = 12345;
    const next = () => (random = Math.imul(random ^ (random >>> 15), 2246822507) >>> 0);
    for (let i = 0; i < lookups; i++) {
      const file = everyFile[next() % everyFile.length] as BenchFile;
      const id = file.ids(next() % file.records);
      const started = performance.now();
      const found = await index.lookup(file.kind, id);
      times.push(performance.now() - started);
      if (!found.some((hit) => hit.fileId === file.fileId)) throw new Error(`${id} not found in ${file.name}`);
    }
    const missTimes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const found = await index.lookup('users', `C-missing-${i}`);
      missTimes.push(performance.now() - started);
      if (found.length > 0) throw new Error('a miss was found');
    }
    console.log(
      `lookups on dynalite (${(small.length + 1).toString()} files indexed): p50 ${percentile(times, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(times, 99).toFixed(1)} ms over ${lookups} ids; a miss: p50 ${percentile(missTimes, 50).toFixed(1)} ms ` +
        `(shard of 'C-1042': ${shardOf('C-1042')})`,
    );
  } finally {
    await db.close();
  }

  const heap = bufferHeapMb();
  console.log(
    heap === undefined
      ? 'buffer heap: run with node --expose-gc --import tsx to measure it'
      : `buffer heap: ${heap.toFixed(0)} MB for ${FLUSH_RECORDS.toLocaleString('en')} entries held`,
  );
  for (const kind of ['users', 'transactions'] as const) {
    const partition = await retainedPartition(kind);
    console.log(
      `30 days of loads, ${kind}: a lookup reads ${partition.items.toLocaleString('en')} items, ` +
        `${(partition.bytes / MB).toFixed(1)} MB (${partition.entries.toLocaleString('en')} entries, ` +
        `${Math.ceil(partition.bytes / (4 * KB) / 2).toLocaleString('en')} read units eventually consistent), ` +
        `decoded and scanned in ${partition.decodeMs.toFixed(0)} ms`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
