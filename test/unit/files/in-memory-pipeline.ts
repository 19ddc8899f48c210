import type { CallAnswer } from '../../../lambdas/core/crm/dispatch-call';
import type { ObjectRef, ObjectStore, TextUpload } from '../../../lambdas/core/files/object-store';
import type { PlannedBatch } from '../../../lambdas/core/files/plan-batches';
import { prepareFile, type PrepareSummary, type RejectedRecord } from '../../../lambdas/core/files/prepare-file';
import type { FileKind } from '../../../lambdas/core/files/record-schemas';
import {
  finaliseFile,
  type FinaliseAnswerSource,
  type FinaliseDeps,
  type FinalSummary,
} from '../../../lambdas/core/workflow/finalise-file';

const keyOf = (ref: ObjectRef) => `${ref.bucket}/${ref.key}`;

/** An object store in memory: enough of S3 for the prepare and finalise use cases. */
export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Uint8Array>();

  constructor(private readonly chunkSize = 64 * 1024) {}

  put(ref: ObjectRef, body: string | Uint8Array): Promise<void> {
    this.objects.set(keyOf(ref), typeof body === 'string' ? Buffer.from(body) : body);
    return Promise.resolve();
  }

  text(ref: ObjectRef): string | undefined {
    const bytes = this.objects.get(keyOf(ref));
    return bytes && Buffer.from(bytes).toString('utf8');
  }

  head(ref: ObjectRef) {
    const bytes = this.objects.get(keyOf(ref));
    if (!bytes) return Promise.reject(Object.assign(new Error('gone'), { name: 'File.Gone' }));
    return Promise.resolve({ size: bytes.length, metadata: {} });
  }

  tags() {
    return Promise.resolve({});
  }

  async *read(ref: ObjectRef, range?: { start: number; end: number }): AsyncGenerator<Uint8Array> {
    const bytes = this.objects.get(keyOf(ref));
    if (!bytes) throw Object.assign(new Error('gone'), { name: 'File.Gone' });
    const part = range ? bytes.subarray(range.start, range.end + 1) : bytes;
    for (let at = 0; at < part.length; at += this.chunkSize) yield part.subarray(at, at + this.chunkSize);
  }

  move(from: ObjectRef, to: ObjectRef): Promise<boolean> {
    const bytes = this.objects.get(keyOf(from));
    if (!bytes) return Promise.resolve(this.objects.has(keyOf(to)));
    this.objects.set(keyOf(to), bytes);
    this.objects.delete(keyOf(from));
    return Promise.resolve(true);
  }

  copy(from: ObjectRef, to: ObjectRef): Promise<void> {
    this.objects.set(keyOf(to), this.objects.get(keyOf(from)) as Uint8Array);
    return Promise.resolve();
  }

  upload(ref: ObjectRef): TextUpload {
    const parts: string[] = [];
    return {
      write: (text) => {
        parts.push(text);
        return Promise.resolve();
      },
      end: () => this.put(ref, parts.join('')),
      abort: () => Promise.resolve(),
    };
  }
}

/** Finalise's ports around `store` and `answers`: the file's outcome kept in memory, no events, buckets as in tests. */
export function finaliseDeps(
  store: ObjectStore,
  answers: FinaliseAnswerSource,
  archiveBucket = 'archive',
): FinaliseDeps {
  let kept: unknown;
  return {
    store,
    answers,
    outcomes: {
      read: () => Promise.resolve(kept === undefined ? undefined : { summary: kept }),
      recordSummary: (_fileId, summary) => {
        kept = summary;
        return Promise.resolve();
      },
    },
    events: { fileCompleted: () => Promise.resolve() },
    archiveBucket,
    failedBucket: 'failed',
    landingPrefix: 'incoming/',
    acceptedEncodings: ['csv', 'jsonl', 'gzip'],
  };
}

type TextLimit = { readonly maxDecompressedBytes?: number };

export interface PipelineRun {
  readonly prepared: PrepareSummary;
  readonly batches: readonly PlannedBatch[];
  readonly rejected: readonly RejectedRecord[];
  readonly final: FinalSummary;
  readonly results: string;
  readonly failedRecords: string;
}

/**
 * One file through the real prepare (batches for the CRM) and finalise (reconcile, results.csv, the
 * failed-records file) use cases, with a CRM that accepts every record it is sent.
 */
export async function runThroughPipeline(
  name: string,
  kind: FileKind,
  bytes: Uint8Array | string,
  limits: { readonly prepare?: TextLimit; readonly finalise?: TextLimit } = {},
): Promise<PipelineRun> {
  const store = new MemoryStore();
  const file = { bucket: 'landing', key: `incoming/${kind}/acme/${name}` };
  await store.put(file, bytes);
  const batches: PlannedBatch[] = [];
  const rejected: RejectedRecord[] = [];
  const prepared = await prepareFile(store.read(file), {
    name: file.key,
    kind,
    maxRecords: 100,
    maxBytes: 200 * 1024,
    ...limits.prepare,
    onBatches: (b) => void batches.push(...b),
    onRejected: (r) => void rejected.push(...r),
  });
  const answers: CallAnswer[] = batches.map((batch) => ({
    fileId: prepared.sha256,
    phase: 'ADD',
    batchIndex: batch.index,
    operation: kind === 'users' ? 'ADD_CUST' : 'ADD_TRX',
    outcomes: batch.items.map((item) => ({ line: item.line, status: 'succeeded', code: 200 })),
    attempts: 1,
    replayed: false,
  }));
  const final = await finaliseFile(
    { file, kind, fileId: prepared.sha256, format: /\.(jsonl|ndjson)/.test(name) ? 'jsonl' : 'csv', retryPhases: 0 },
    {
      ...finaliseDeps(store, {
        async *answers(_fileId: string, phase: string) {
          if (phase === 'ADD') yield* answers;
        },
      }),
      ...limits.finalise,
    },
  );
  const reportText = (key: string | undefined) => (key ? (store.text({ bucket: 'archive', key }) ?? '') : '');
  return {
    prepared,
    batches,
    rejected,
    final,
    results: reportText(final.reports.results),
    failedRecords: reportText(final.reports.failedRecords),
  };
}
