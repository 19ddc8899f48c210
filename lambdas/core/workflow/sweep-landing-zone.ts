import { createHash } from 'node:crypto';
import { isPartnerReport } from './storage-keys';

/** An object waiting in the landing zone. */
export interface LandedObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
  /** The object's ETag (or version): a new upload under the same name is a new file. */
  readonly etag: string;
}

export interface LandingZone {
  list(bucket: string, prefix: string): AsyncIterable<LandedObject>;
}

export interface WorkflowStarter {
  /** Starts the file workflow under `name`; a name already running (or run) starts nothing: `already`. */
  start(name: string, input: unknown): Promise<'started' | 'already'>;
}

export interface SweepResult {
  readonly listed: number;
  readonly started: number;
  readonly alreadyStarted: number;
  /** Objects younger than the minimum age: their own event is most likely being handled. */
  readonly young: number;
}

/**
 * The execution name of an object's sweep: the same object always gets the same name, so two sweeps (or a
 * sweep repeated) start it once; a new upload under the same key (new ETag) gets a new one. At most 80 chars.
 */
export const sweepExecutionName = (bucket: string, object: LandedObject) =>
  `sweep-${createHash('sha256').update(`${bucket}\n${object.key}\n${object.etag}`).digest('hex').slice(0, 48)}`;

/** The event the workflow starts from, in the shape of S3's Object Created on EventBridge. */
export const objectCreatedEvent = (bucket: string, key: string, size: number) => ({
  version: '0',
  source: 'aws.s3',
  'detail-type': 'Object Created',
  detail: { bucket: { name: bucket }, object: { key, size }, reason: 'sweep' },
});

/**
 * The periodic file watcher: everything still under the landing prefix has not been segregated, so either its
 * event is being handled right now, or it was missed (or its execution failed before the move). Objects older
 * than `minAgeMs` get an execution; if one already owns the file, its claim makes the new one stop quietly.
 */
export async function sweepLandingZone(
  zone: LandingZone,
  starter: WorkflowStarter,
  options: { bucket: string; prefix: string; minAgeMs: number; now?: Date },
): Promise<SweepResult> {
  const now = (options.now ?? new Date()).getTime();
  let listed = 0;
  let started = 0;
  let alreadyStarted = 0;
  let young = 0;
  for await (const object of zone.list(options.bucket, options.prefix)) {
    listed++;
    // Folder markers, and the reports the pipeline put in partners' reports/ folders, are not files to process.
    if (object.key.endsWith('/') || isPartnerReport(object.key, options.prefix)) continue;
    if (now - object.lastModified.getTime() < options.minAgeMs) {
      young++;
      continue;
    }
    const outcome = await starter.start(
      sweepExecutionName(options.bucket, object),
      objectCreatedEvent(options.bucket, object.key, object.size),
    );
    if (outcome === 'started') started++;
    else alreadyStarted++;
  }
  return { listed, started, alreadyStarted, young };
}
