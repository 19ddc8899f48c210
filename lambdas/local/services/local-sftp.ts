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
import { DEFAULT_LANDING_PREFIX } from '../../core/workflow/storage-keys';
import { attributes, DIR_MODE, entry, FILE_MODE, isMissing, startSftpServer, type SftpFiles } from './sftp-server';

export interface SftpUser {
  readonly name: string;
  readonly password: string;
}

export interface LocalSftpOptions {
  /** The S3 client and the landing bucket that uploads go to (as Transfer Family stores them). */
  readonly s3: S3Client;
  readonly bucket: string;
  /** One user per partner; each is confined to `<landingPrefix><name>/` (a logical home directory). */
  readonly users: readonly SftpUser[];
  /** @default 'incoming/' */
  readonly landingPrefix?: string;
  /** Called once an uploaded file has been stored, with its key. */
  readonly onUpload?: (upload: { user: string; key: string; size: number }) => void;
}

export interface LocalSftp {
  readonly host: string;
  readonly port: number;
  readonly users: readonly SftpUser[];
  /** The server's host key fingerprint (SHA-256, base64, as `ssh` prints it). */
  readonly hostKeyFingerprint: string;
  close(): Promise<void>;
}

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
        const local = scratchFile();
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(path) }));
        await pipeline(object.Body as Readable, createWriteStream(local));
        const file = await open(local, 'r');
        return { file, close: () => file.close().finally(() => rmSync(local, { force: true })) };
      },
      async openWrite(path) {
        const local = scratchFile();
        const file = await open(local, 'w+');
        const drop = () => file.close().finally(() => rmSync(local, { force: true }));
        return {
          file,
          async commit() {
            const { size } = await file.stat();
            try {
              // Stored on close, in parts when large: the Object Created event follows the whole file.
              await new Upload({
                client: s3,
                params: { Bucket: bucket, Key: keyOf(path), Body: createReadStream(local) },
                partSize: 16 * 1024 * 1024,
              }).done();
              options.onUpload?.({ user, key: keyOf(path), size });
            } finally {
              await drop();
            }
            return { size };
          },
          discard: drop,
        };
      },
      async remove(path) {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(path) }));
      },
      async rename(from, to) {
        const source = keyOf(from);
        await s3.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: keyOf(to),
            CopySource: `${bucket}/${source.split('/').map(encodeURIComponent).join('/')}`,
          }),
        );
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: source }));
      },
      async mkdir(path) {
        directories.add(path);
      },
      async rmdir(path) {
        directories.delete(path);
      },
    };
  };

  const homes = new Map<string, SftpFiles>();
  const server = await startSftpServer({
    users: options.users,
    files: (user) => {
      const files = homes.get(user) ?? homeFiles(user);
      homes.set(user, files);
      return files;
    },
  });
  return {
    host: server.host,
    port: server.port,
    users: options.users,
    hostKeyFingerprint: server.hostKeyFingerprint,
    close: async () => {
      await server.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
