import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  CopyObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FileEntry } from 'ssh2';
import { MAX_FILE_NAME_BYTES } from '../../core/files/classify-file';
import { DEFAULT_LANDING_PREFIX } from '../../core/workflow/storage-keys';
import {
  attributes,
  DIR_MODE,
  entry,
  FILE_MODE,
  isMissing,
  SftpRequestRefused,
  startSftpServer,
  type SftpFiles,
  type SftpServerSettings,
} from './sftp-server';

export interface SftpUser {
  readonly name: string;
  readonly password: string;
}

export interface LocalSftpOptions extends SftpServerSettings {
  /** The S3 client and the landing bucket that uploads go to (as Transfer Family stores them). */
  readonly s3: S3Client;
  readonly bucket: string;
  /** One user per partner; each is confined to `<landingPrefix><name>/` (a logical home directory). */
  readonly users: readonly SftpUser[];
  /** @default 'incoming/' */
  readonly landingPrefix?: string;
  /** Called once an uploaded file has been stored, with its key. */
  readonly onUpload?: (upload: { user: string; key: string; size: number }) => void;
  /**
   * Called when an upload is refused (a name the landing zone cannot take), with the reason the client is sent:
   * some clients (OpenSSH's sftp) show only "Failure", so the operator hears it here.
   */
  readonly onRefused?: (refusal: { user: string; path: string; reason: string }) => void;
}

export interface LocalSftp {
  readonly host: string;
  readonly port: number;
  readonly users: readonly SftpUser[];
  /** The server's host key fingerprint (SHA-256, base64, as `ssh` prints it). */
  readonly hostKeyFingerprint: string;
  /** Where uploads wait until they are closed and stored (emptied as each is stored or dropped; removed on close). */
  readonly scratchDirectory: string;
  close(): Promise<void>;
}

/**
 * The longest key segment (bytes of UTF-8) the embedded S3 stores: s3rver keeps an object as files named after
 * it, the longest `<name>._S3rver_metadata.json`, within the file system's 255 bytes. A longer name fails in
 * s3rver half stored (past 240 bytes it stops the process), so it must never reach it.
 */
export const EMBEDDED_S3_NAME_MAX_BYTES = 255 - '._S3rver_metadata.json'.length;
/**
 * The longest file name the landing zone takes: what the pipeline takes (a longer one would only be quarantined),
 * and never more than the embedded S3 can store. Longer names are refused at upload, with the reason.
 */
export const LANDING_NAME_MAX_BYTES = Math.min(MAX_FILE_NAME_BYTES, EMBEDDED_S3_NAME_MAX_BYTES);
/** A folder of the key is a folder of s3rver's: the file system's limit. */
const FOLDER_NAME_MAX_BYTES = 255;
/** S3's own limit on a key. */
const KEY_MAX_BYTES = 1024;

/** A partner's password: 18 random bytes, URL-safe. */
export const newPassword = () => randomBytes(18).toString('base64url');

/**
 * The landing zone's SFTP server on one machine (ssh2), in place of AWS Transfer Family: each partner logs in
 * with a password and sees only their own home, which is the landing bucket's `incoming/<partner>/` prefix.
 * An upload is written to a temporary file and stored in S3 when the client closes it (as Transfer Family does
 * on close), so the Object Created event comes only for a complete file. Listing, download, rename and remove
 * work on the same prefix; the pipeline's reports for the partner appear under `reports/`.
 */
export async function startLocalSftp(options: LocalSftpOptions): Promise<LocalSftp> {
  const landingPrefix = options.landingPrefix ?? DEFAULT_LANDING_PREFIX;
  const scratch = mkdtempSync(join(tmpdir(), 'ingest-sftp-'));
  let scratchFiles = 0;
  const { s3, bucket } = options;

  /** A partner's home: paths map to keys under `incoming/<partner>/`. */
  const homeFiles = (user: string): SftpFiles => {
    const home = `${landingPrefix}${user}/`;
    const directories = new Set<string>(['/']);
    const keyOf = (path: string) => `${home}${path.slice(1)}`;
    const listPrefix = (path: string) => (path === '/' ? home : `${keyOf(path)}/`);
    const scratchFile = () => join(scratch, `${++scratchFiles}.part`);
    /** The key a path is stored under, refused (before any byte is taken) when s3rver could not store it. */
    const storableKey = (path: string) => {
      const names = path.slice(1).split('/');
      const name = names.pop() ?? '';
      const nameBytes = Buffer.byteLength(name);
      if (nameBytes > LANDING_NAME_MAX_BYTES) {
        throw new SftpRequestRefused(`file name too long: ${nameBytes} bytes, at most ${LANDING_NAME_MAX_BYTES}`);
      }
      for (const folder of names) {
        const folderBytes = Buffer.byteLength(folder);
        if (folderBytes > FOLDER_NAME_MAX_BYTES) {
          throw new SftpRequestRefused(`folder name too long: ${folderBytes} bytes, at most ${FOLDER_NAME_MAX_BYTES}`);
        }
      }
      // S3 keys take 1024 bytes: `incoming/<partner>/` takes its share (the path's leading `/` is not kept).
      const pathBytes = Buffer.byteLength(path);
      const mostBytes = KEY_MAX_BYTES - Buffer.byteLength(home) + 1;
      if (pathBytes > mostBytes) {
        throw new SftpRequestRefused(`path too long: ${pathBytes} bytes, at most ${mostBytes}`);
      }
      return keyOf(path);
    };
    return {
      async stat(path) {
        if (directories.has(path)) return attributes(DIR_MODE, 0, undefined);
        // A folder first (s3rver keeps objects as files: a HEAD of a key that is its folder fails). No MaxKeys:
        // s3rver's truncated listings fail on Node's OpenSSL 3 (DESIGN.md).
        const children = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix(path) }));
        if ((children.KeyCount ?? 0) > 0) return attributes(DIR_MODE, 0, undefined);
        try {
          const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(path) }));
          return attributes(FILE_MODE, head.ContentLength ?? 0, head.LastModified);
        } catch (error) {
          if (!isMissing(error)) throw error;
          return undefined;
        }
      },
      async list(path) {
        // Every key under the folder, grouped by its first name: s3rver's Delimiter listing leaves out folders
        // whose objects are more than one level down.
        const prefix = listPrefix(path);
        const files: FileEntry[] = [];
        const folders = new Set<string>();
        let ContinuationToken: string | undefined;
        do {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }));
          for (const object of page.Contents ?? []) {
            const [name = '', ...deeper] = (object.Key ?? '').slice(prefix.length).split('/');
            if (!name) continue;
            if (deeper.length > 0) folders.add(name);
            else files.push(entry(name, attributes(FILE_MODE, object.Size ?? 0, object.LastModified)));
          }
          ContinuationToken = page.NextContinuationToken;
        } while (ContinuationToken);
        return [...[...folders].map((name) => entry(name, attributes(DIR_MODE, 0, undefined))), ...files];
      },
      async openRead(path) {
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(path) }));
        const local = scratchFile();
        try {
          await pipeline(object.Body as Readable, createWriteStream(local));
          const file = await open(local, 'r');
          return {
            file,
            close: () => file.close().finally(() => rmSync(local, { force: true })),
            // The copy is made now; the object's size and time are what STAT and the listing show.
            attrs: attributes(FILE_MODE, object.ContentLength ?? 0, object.LastModified),
          };
        } catch (error) {
          rmSync(local, { force: true });
          throw error;
        }
      },
      async openWrite(path) {
        let key: string;
        try {
          key = storableKey(path);
        } catch (error) {
          if (error instanceof SftpRequestRefused) options.onRefused?.({ user, path, reason: error.message });
          throw error;
        }
        const local = scratchFile();
        const file = await open(local, 'w+');
        const drop = async () => {
          await file.close().catch(() => undefined);
          rmSync(local, { force: true });
        };
        return {
          file,
          async commit() {
            try {
              const { size } = await file.stat();
              // Stored on close, in parts when large: the Object Created event follows the whole file.
              await new Upload({
                client: s3,
                params: { Bucket: bucket, Key: key, Body: createReadStream(local) },
                partSize: 16 * 1024 * 1024,
              }).done();
              options.onUpload?.({ user, key, size });
              return { size };
            } finally {
              await drop();
            }
          },
          discard: drop,
        };
      },
      async remove(path) {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(path) }));
      },
      async rename(from, to) {
        const source = keyOf(from);
        const target = storableKey(to);
        await s3.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: target,
            CopySource: `${bucket}/${source.split('/').map(encodeURIComponent).join('/')}`,
          }),
        );
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: source }));
      },
      async mkdir(path) {
        storableKey(`${path}/`);
        directories.add(path);
      },
      async rmdir(path) {
        directories.delete(path);
      },
    };
  };

  const homes = new Map<string, SftpFiles>();
  const { users } = options;
  const server = await startSftpServer({
    port: options.port,
    hostKeyFile: options.hostKeyFile,
    authFailureDelayMs: options.authFailureDelayMs,
    onAuthFailure: options.onAuthFailure,
    users,
    files: (user) => {
      const files = homes.get(user) ?? homeFiles(user);
      homes.set(user, files);
      return files;
    },
  }).catch((error: unknown) => {
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  });
  return {
    host: server.host,
    port: server.port,
    users,
    hostKeyFingerprint: server.hostKeyFingerprint,
    scratchDirectory: scratch,
    close: async () => {
      await server.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
