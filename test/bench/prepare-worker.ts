/**
 * One benchmark scenario in its own process, so its peak RSS is its own:
 * `prepare-worker.ts <stage> <file> <kind>` prints one JSON line {records, seconds, peakRssMb}.
 * Stages, each including the ones before: split (the floor: bytes -> gunzip -> UTF-8 -> count lines),
 * decode (the pipeline's checked decoding), read (+ CSV/JSONL parsing into records with line numbers),
 * validate (+ rules and normalisation), prepare (+ serialisation, batching and SHA-256: the whole prepare).
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createGunzip } from 'node:zlib';
import { decodeText } from '../../lambdas/core/files/file-encoding';
import { prepareFile } from '../../lambdas/core/files/prepare-file';
import { readRecords } from '../../lambdas/core/files/read-records';
import { validateRecord, type FileKind } from '../../lambdas/core/files/record-schemas';

const [stage = 'prepare', path = '', kind = 'users'] = process.argv.slice(2);
const name = basename(path);
const open = () => createReadStream(path, { highWaterMark: 64 * 1024 });

async function split(): Promise<number> {
  const source = name.endsWith('.gz') ? open().pipe(createGunzip()) : open();
  const decoder = new TextDecoder();
  let lines = 0;
  for await (const chunk of source) {
    const text = decoder.decode(chunk as Buffer, { stream: true });
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
  }
  return lines - 1;
}

async function decode(): Promise<number> {
  let lines = 0;
  for await (const text of decodeText(open())) {
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
  }
  return lines - 1;
}

async function read(check: boolean): Promise<number> {
  let records = 0;
  for await (const chunk of readRecords(open(), { name })) {
    if (check) for (const record of chunk) validateRecord(kind as FileKind, record.fields);
    records += chunk.length;
  }
  return records;
}

async function prepare(): Promise<number> {
  const summary = await prepareFile(open(), {
    name,
    kind: kind as FileKind,
    maxRecords: 100,
    maxBytes: 200 * 1024,
    onBatches: () => undefined,
    onRejected: () => undefined,
  });
  return summary.received;
}

const stages: Record<string, () => Promise<number>> = {
  split,
  decode,
  read: () => read(false),
  validate: () => read(true),
  prepare,
};

async function main() {
  const run = stages[stage];
  if (!run) throw new Error(`unknown stage ${stage}`);
  const started = process.hrtime.bigint();
  const records = await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ records, seconds, peakRssMb })}\n`);
}

void main();
