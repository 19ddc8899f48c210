/**
 * One enqueue scenario in its own process: `enqueue-worker.ts <mode> <file> <kind> <roundTripMs> [before]`.
 * Every batch goes through the real SqsCallQueue, over an SQS client whose every SendMessageBatch takes
 * `roundTripMs` (SQS from Lambda: about 20 ms).
 * - `prepare`: the whole prepare (read, validate, batch) and its sends, timed together; with `before` (the path
 *   of another prepare-file.ts, an older one), that module's prepareFile instead.
 * - `sends`: the send path alone. The batches are cut first, untimed; then timed: the current send window
 *   (sends overlapping, bounded), or with `before`, the old path: the batches grouped as that module's
 *   prepareFile handed them on (one group a text chunk), each group's send awaited before the next.
 * Prints one JSON line {batches, requests, maxRequestsInFlight, seconds, peakRssMb}.
 */
import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createReadStream } from 'node:fs';
import { basename, resolve } from 'node:path';
import { SqsCallQueue } from '../../lambdas/adapters/aws/sqs-call-queue';
import { callMessageBody, operationFor } from '../../lambdas/core/crm/call-message';
import type { PlannedBatch } from '../../lambdas/core/files/plan-batches';
import * as current from '../../lambdas/core/files/prepare-file';
import type { FileKind } from '../../lambdas/core/files/record-schemas';

const [mode = 'prepare', path = '', kind = 'users', roundTrip = '20', before] = process.argv.slice(2);
const roundTripMs = Number(roundTrip);

/** An SQS client that answers every SendMessageBatch after the round trip, counting what it was sent. */
function slowSqs() {
  const counts = { requests: 0, messages: 0, inFlight: 0, maxInFlight: 0 };
  const client = {
    async send(command: SendMessageBatchCommand) {
      counts.requests++;
      counts.messages += command.input.Entries?.length ?? 0;
      counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight);
      await new Promise((done) => setTimeout(done, roundTripMs));
      counts.inFlight--;
      return { Failed: [], Successful: [] };
    },
  };
  return { client: client as unknown as SQSClient, counts };
}

const sqs = slowSqs();
const queue = new SqsCallQueue(sqs.client, 'https://sqs.local/calls');
const meta = { fileId: 'f'.repeat(64), phase: 'ADD', operation: operationFor(kind as FileKind, 'ADD') };
const send = (batches: readonly PlannedBatch[]) =>
  queue.send(batches.map((batch) => ({ body: callMessageBody(batch, meta), records: batch.items.length })));

/** prepareFile of `module` over the file, its batches handed to `onBatches`; the number of batches. */
async function prepareWith(module: typeof current, onBatches: current.PrepareOptions['onBatches']) {
  const summary = await module.prepareFile(createReadStream(path, { highWaterMark: 64 * 1024 }), {
    name: basename(path),
    kind: kind as FileKind,
    maxRecords: 100,
    maxBytes: 200 * 1024,
    onBatches,
    onRejected: () => undefined,
  });
  return summary.batches;
}

/** Times `run`, which returns the number of batches it sent. */
async function timed(run: () => Promise<number>) {
  const started = process.hrtime.bigint();
  const batches = await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (sqs.counts.messages !== batches) throw new Error(`${batches} batches but ${sqs.counts.messages} messages sent`);
  return { batches, seconds };
}

async function main() {
  const module = before ? ((await import(resolve(before))) as typeof current) : current;
  let result: { batches: number; seconds: number };
  if (mode === 'prepare') {
    result = await timed(() => prepareWith(module, send));
  } else if (mode === 'sends') {
    const groups: (readonly PlannedBatch[])[] = [];
    await prepareWith(module, (batches) => void groups.push(batches));
    const batches = groups.flat();
    if (before) {
      result = await timed(async () => {
        for (const group of groups) await send(group);
        return batches.length;
      });
    } else {
      result = await timed(async () => {
        const window = new current.SendWindow(send);
        for (let at = 0; at < batches.length; at += current.BATCHES_PER_SEND) {
          await window.send(batches.slice(at, at + current.BATCHES_PER_SEND));
        }
        await window.drain();
        return batches.length;
      });
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(
    `${JSON.stringify({
      ...result,
      requests: sqs.counts.requests,
      maxRequestsInFlight: sqs.counts.maxInFlight,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
}

void main();
