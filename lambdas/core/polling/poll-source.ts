import { posix } from 'node:path';
import picomatch from 'picomatch';
import { z } from 'zod';
import { ErrorNames, PipelineError } from '../errors';
import { metadataValue } from '../files/object-store';
import { DEFAULT_LANDING_PREFIX } from '../workflow/storage-keys';

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const PARTNER = /^[A-Za-z0-9-]+$/;
/** As `ssh-keygen -lf` prints it: `SHA256:` and 43 characters of unpadded base64. */
export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/**
 * A partner's own SFTP server that the pipeline collects from (cdk.json `pollSources`, or `--poll` locally).
 * Credentials are not here: they come from the source's secret (Secrets Manager), `{"password": ...}` or
 * `{"privateKey": ..., "passphrase"?: ...}`.
 */
export const PollSourceSchema = z.object({
  /** The source's own name: in metrics, alarms, the collection ledger and the secret's name. */
  name: z.string().regex(NAME, { error: 'lower-case letters, digits and dashes, at most 40' }),
  /** The partner the files are landed for: `incoming/<partner>/` (as if they had uploaded them). */
  partner: z.string().regex(PARTNER, { error: 'letters, digits and dashes only' }),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  username: z.string().min(1),
  /** The server's host key, pinned: any other key is refused before anything is read. */
  hostKeyFingerprint: z
    .string()
    .regex(FINGERPRINT, { error: 'must be a SHA-256 fingerprint as ssh-keygen -lf prints it: SHA256:<43 chars>' })
    .optional(),
  /** The folder listed (not its subfolders). */
  remoteDir: z.string().min(1).default('/'),
  /** Which names are collected (a glob: `*.csv`, `{users,transactions}_*`); hidden files never are. */
  pattern: z.string().min(1).default('*'),
  /** `stable`: size and modification time unchanged across two listings; `marker`: `<name><markerSuffix>` exists. */
  completeWhen: z.enum(['stable', 'marker']).default('stable'),
  markerSuffix: z.string().min(1).default('.done'),
  /** `move`: into `processedDir` once landed; `leave`: left where it is, remembered as collected. */
  afterCollect: z.enum(['move', 'leave']).default('move'),
  /** Relative to remoteDir unless absolute. */
  processedDir: z.string().min(1).default('processed'),
  /** Where each file's reports are uploaded (relative to remoteDir unless absolute); none when unset. */
  resultsDir: z.string().min(1).optional(),
  /** Minutes between polls (AWS: the source's schedule). */
  intervalMinutes: z.number().int().min(1).max(1440).default(5),
});

export type PollSource = z.infer<typeof PollSourceSchema>;

export const sourcePath = (source: PollSource, path: string) =>
  posix.isAbsolute(path) ? posix.normalize(path) : posix.join(source.remoteDir, path);

/**
 * The file is not as listed any more (it grew, shrank or was rewritten while it was read): nothing is landed, and
 * it waits for the next poll like any file still being written. Not a failure of the source.
 */
export class RemoteFileChanged extends PipelineError {
  constructor(message: string) {
    super(ErrorNames.sourceFileChanged, message);
  }
}

/** A file in the listed folder. */
export interface RemoteFile {
  readonly name: string;
  readonly size: number;
  /** Modification time, ms since the epoch (SFTP gives seconds). */
  readonly modifiedAt: number;
}

/** An open connection to a source (ssh2-sftp-client in lambdas/adapters/sftp). */
export interface RemoteFolder {
  /** Regular files in `dir` (not folders, not links). */
  list(dir: string): Promise<RemoteFile[]>;
  /**
   * The bytes of a file as listed; fails if it turns out to have changed since (another size or time), so
   * a file still being written is not taken.
   */
  read(path: string, listed: { size: number; modifiedAt: number }): AsyncIterable<Uint8Array>;
  /** Uploads whole, under a temporary name first, then renamed into place (replacing what was there). */
  write(path: string, body: AsyncIterable<Uint8Array> | string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  close(): Promise<void>;
}

/** A file's identity at a source: the same path, size and time is the same file. */
export interface RemoteFileId {
  readonly path: string;
  readonly size: number;
  readonly modifiedAt: number;
}

export type CollectionState =
  { readonly status: 'collected'; readonly key: string; readonly moved: boolean } | { readonly status: 'collecting' };

/** What has been seen and collected, per source (DynamoDB: the ledger table, `pk` = `source#<name>`). */
export interface CollectionClaims {
  state(source: string, file: RemoteFileId): Promise<CollectionState | undefined>;
  /**
   * Records this listing of the file; returns the one before it (another poll's), if any.
   * `listedAt` is when this poll listed the folder.
   */
  observe(
    source: string,
    file: RemoteFileId,
    listedAt: number,
  ): Promise<{ size: number; modifiedAt: number; listedAt: number } | undefined>;
  /** Takes the file for collecting (a conditional write): false when collected, or another poller holds it. */
  claim(source: string, file: RemoteFileId, owner: string, leaseUntil: number): Promise<boolean>;
  /** The collection failed: the claim is dropped, so the next poll tries again. */
  release(source: string, file: RemoteFileId, owner: string): Promise<void>;
  collected(source: string, file: RemoteFileId, owner: string, key: string): Promise<void>;
  moved(source: string, file: RemoteFileId): Promise<void>;
}

/** Where collected files land (the landing bucket): written whole or not at all. */
export interface LandingWriter {
  /** Stores `body` under `key`; fails, storing nothing, unless exactly `size` bytes arrive. */
  land(key: string, body: AsyncIterable<Uint8Array>, size: number, metadata: Record<string, string>): Promise<void>;
}

export interface PollDeps {
  readonly connect: (source: PollSource) => Promise<RemoteFolder>;
  readonly claims: CollectionClaims;
  readonly landing: LandingWriter;
  /** Who polls (the invocation's request id): the owner of its claims. */
  readonly owner: string;
  /** How long a claim is held: longer than a poll can run (the Lambda's timeout). */
  readonly leaseMs: number;
  readonly landingPrefix?: string;
  readonly now?: () => number;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

export interface CollectedFile {
  readonly path: string;
  readonly key: string;
  readonly size: number;
}

export interface PollResult {
  readonly source: string;
  /** Files in the folder that match the pattern. */
  readonly listed: number;
  readonly collected: readonly CollectedFile[];
  /** Not complete yet (still changing, or seen once; or no marker): looked at again next poll. */
  readonly waiting: number;
  /** Collected before (by this or another poll): not collected again. */
  readonly alreadyCollected: number;
  /** Held by another poller right now. */
  readonly heldElsewhere: number;
  /** Landed, but could not be moved to processedDir: tried again next poll (never collected again). */
  readonly moveFailures: number;
}

/** The landing key of a collected file: the partner's folder, as if they had uploaded it. */
export const collectedKey = (source: PollSource, name: string, landingPrefix = DEFAULT_LANDING_PREFIX) =>
  `${landingPrefix}${source.partner}/${name}`;

/**
 * One poll of one source: lists its folder, and collects every complete file matching the pattern that has
 * not been collected: claimed in the ledger (so overlapping polls take it once), streamed into the landing
 * bucket (stored only if every listed byte arrived: a half-collected file is never handed on), recorded as
 * collected, then moved to processedDir (or left). A file collected but not moved is only moved next time.
 * @throws PipelineError Source.* when the source cannot be reached, read, or trusted.
 */
export async function pollSource(source: PollSource, deps: PollDeps): Promise<PollResult> {
  const now = deps.now ?? Date.now;
  const listedAt = now();
  const matches = picomatch(source.pattern, { dot: false });
  const folder = await deps.connect(source);
  const result = {
    source: source.name,
    listed: 0,
    collected: [] as CollectedFile[],
    waiting: 0,
    alreadyCollected: 0,
    heldElsewhere: 0,
    moveFailures: 0,
  };
  try {
    const files = await folder.list(source.remoteDir);
    const names = new Set(files.map((file) => file.name));
    const marker = source.completeWhen === 'marker' ? source.markerSuffix : undefined;
    const candidates = files.filter(
      (file) => !file.name.startsWith('.') && matches(file.name) && !(marker && file.name.endsWith(marker)),
    );
    result.listed = candidates.length;
    let processedReady = false;
    const moveAway = async (file: RemoteFile, id: RemoteFileId) => {
      try {
        const processed = sourcePath(source, source.processedDir);
        if (!processedReady) await folder.mkdir(processed);
        processedReady = true;
        await moveInto(folder, id.path, processed, file);
        if (marker) await moveInto(folder, `${id.path}${marker}`, processed, file).catch(() => undefined);
        await deps.claims.moved(source.name, id);
      } catch (error) {
        result.moveFailures++;
        deps.log?.('collected file not moved; tried again next poll', { path: id.path, error: String(error) });
      }
    };

    for (const file of candidates) {
      const id: RemoteFileId = {
        path: posix.join(source.remoteDir, file.name),
        size: file.size,
        modifiedAt: file.modifiedAt,
      };
      const state = await deps.claims.state(source.name, id);
      if (state?.status === 'collected') {
        result.alreadyCollected++;
        if (source.afterCollect === 'move' && !state.moved) await moveAway(file, id);
        continue;
      }
      // 'collecting': another poller holds it, or one that died did; the claim's lease decides below.
      const complete = marker
        ? names.has(`${file.name}${marker}`)
        : isStable(await deps.claims.observe(source.name, id, listedAt), id, listedAt);
      if (!complete) {
        result.waiting++;
        continue;
      }
      if (!(await deps.claims.claim(source.name, id, deps.owner, now() + deps.leaseMs))) {
        result.heldElsewhere++;
        continue;
      }
      const key = collectedKey(source, file.name, deps.landingPrefix);
      try {
        await deps.landing.land(key, folder.read(id.path, id), file.size, {
          'collected-from': source.name,
          'remote-path': metadataValue(id.path),
        });
      } catch (error) {
        await deps.claims.release(source.name, id, deps.owner).catch(() => undefined);
        if (!(error instanceof RemoteFileChanged)) throw transferFailure(source, id.path, error);
        result.waiting++;
        deps.log?.('file changed while it was read; collected at a later poll', { path: id.path });
        continue;
      }
      await deps.claims.collected(source.name, id, deps.owner, key);
      result.collected.push({ path: id.path, key, size: file.size });
      deps.log?.('file collected', { path: id.path, key, size: file.size });
      if (source.afterCollect === 'move') await moveAway(file, id);
    }
    return result;
  } finally {
    await folder.close().catch(() => undefined);
  }
}

/** Unchanged since a listing of an earlier poll. */
function isStable(
  previous: { size: number; modifiedAt: number; listedAt: number } | undefined,
  file: RemoteFileId,
  listedAt: number,
): boolean {
  return (
    previous !== undefined &&
    previous.listedAt < listedAt &&
    previous.size === file.size &&
    previous.modifiedAt === file.modifiedAt
  );
}

/** Renames into `dir`; when a file of that name is there already, under the name with its time appended. */
async function moveInto(folder: RemoteFolder, path: string, dir: string, file: RemoteFile): Promise<void> {
  const name = posix.basename(path);
  try {
    await folder.rename(path, posix.join(dir, name));
  } catch {
    await folder.rename(path, posix.join(dir, `${name}.${Math.floor(file.modifiedAt / 1000)}`));
  }
}

function transferFailure(source: PollSource, path: string, error: unknown): PipelineError {
  if (error instanceof PipelineError) return error;
  return new PipelineError(
    ErrorNames.sourceTransferFailed,
    `${source.name}: collecting ${path} broke off (${(error as Error).message}); nothing was handed on, tried again next poll`,
  );
}
