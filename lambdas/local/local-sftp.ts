import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  CopyObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { Server, utils, type Attributes, type Connection, type FileEntry, type SFTPWrapper } from 'ssh2';
import { DEFAULT_LANDING_PREFIX } from '../core/workflow/storage-keys';

const { OPEN_MODE, STATUS_CODE } = utils.sftp;

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

type OpenHandle =
  | { readonly kind: 'write'; readonly file: FileHandle; readonly path: string; readonly key: string }
  | { readonly kind: 'read'; readonly file: FileHandle; readonly path: string }
  | { readonly kind: 'dir'; readonly entries: FileEntry[]; sent: boolean };

const FILE_MODE = 0o100644;
const DIR_MODE = 0o040755;

function attributes(mode: number, size: number, modified: Date | undefined): Attributes {
  const seconds = Math.floor((modified?.getTime() ?? Date.now()) / 1000);
  return { mode, uid: 0, gid: 0, size, atime: seconds, mtime: seconds };
}

function entry(name: string, attrs: Attributes): FileEntry {
  const type = (attrs.mode & 0o170000) === 0o040000 ? 'd' : '-';
  const permissions = type === 'd' ? 'rwxr-xr-x' : 'rw-r--r--';
  const date = new Date(attrs.mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
  return { filename: name, longname: `${type}${permissions} 1 partner partner ${attrs.size} ${date} ${name}`, attrs };
}

const isMissing = (error: unknown) => {
  const name = (error as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound';
};

/**
 * The landing zone's SFTP server on one machine (ssh2), in place of AWS Transfer Family: each partner logs in
 * with a password and sees only their own home, which is the landing bucket's `incoming/<partner>/` prefix.
 * An upload is written to a temporary file and stored in S3 when the client closes it (as Transfer Family does
 * on close), so the Object Created event comes only for a complete file. Listing, download, rename and remove
 * work on the same prefix.
 */
export async function startLocalSftp(options: LocalSftpOptions): Promise<LocalSftp> {
  const landingPrefix = options.landingPrefix ?? DEFAULT_LANDING_PREFIX;
  // Node's own key generation: ssh2's ed25519 generator now and then writes a public key it cannot parse back.
  const hostKey = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'sec1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const parsedKey = utils.parseKey(hostKey.privateKey);
  if (parsedKey instanceof Error) throw parsedKey;
  const hostKeyFingerprint = `SHA256:${createHash('sha256').update(parsedKey.getPublicSSH()).digest('base64').replace(/=+$/, '')}`;
  const scratch = mkdtempSync(join(tmpdir(), 'ingest-sftp-'));
  let uploads = 0;
  const passwords = new Map(options.users.map((user) => [user.name, Buffer.from(user.password)]));

  const connections = new Set<Connection>();
  const server = new Server({ hostKeys: [hostKey.privateKey] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    let user = '';
    client.on('authentication', (context) => {
      const expected = passwords.get(context.username);
      if (context.method === 'password' && expected && safeEqual(expected, Buffer.from(context.password))) {
        user = context.username;
        context.accept();
      } else {
        context.reject(['password']);
      }
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        acceptSession().on('sftp', (acceptSftp) => {
          serveSftp(acceptSftp(), `${landingPrefix}${user}/`, user);
        });
      });
    });
    client.on('error', () => undefined);
  });

  function serveSftp(sftp: SFTPWrapper, home: string, user: string) {
    const handles = new Map<string, OpenHandle>();
    const directories = new Set<string>(['/']);
    let nextHandle = 0;
    const newHandle = (handle: OpenHandle) => {
      const id = Buffer.alloc(4);
      id.writeUInt32BE(nextHandle++);
      handles.set(id.toString('hex'), handle);
      return id;
    };
    /** Paths are relative to the home; `..` cannot climb out of it. */
    const resolve = (path: string) => posix.normalize(`/${path}`).replace(/\/+$/, '') || '/';
    const keyOf = (path: string) => `${home}${resolve(path).slice(1)}`;
    const fail = (id: number, error: unknown) =>
      sftp.status(id, isMissing(error) ? STATUS_CODE.NO_SUCH_FILE : STATUS_CODE.FAILURE, String(error));
    const guard = (id: number, work: () => Promise<void>) => void work().catch((error: unknown) => fail(id, error));

    const listing = async (path: string) => {
      const prefix = path === '/' ? home : `${keyOf(path)}/`;
      const entries: FileEntry[] = [];
      let ContinuationToken: string | undefined;
      do {
        const page = await options.s3.send(
          new ListObjectsV2Command({ Bucket: options.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken }),
        );
        for (const common of page.CommonPrefixes ?? []) {
          const name = (common.Prefix ?? '').slice(prefix.length).replace(/\/$/, '');
          if (name) entries.push(entry(name, attributes(DIR_MODE, 0, undefined)));
        }
        for (const object of page.Contents ?? []) {
          const name = (object.Key ?? '').slice(prefix.length);
          if (name) entries.push(entry(name, attributes(FILE_MODE, object.Size ?? 0, object.LastModified)));
        }
        ContinuationToken = page.NextContinuationToken;
      } while (ContinuationToken);
      return entries;
    };

    const stat = async (path: string): Promise<Attributes | undefined> => {
      const resolved = resolve(path);
      if (directories.has(resolved)) return attributes(DIR_MODE, 0, undefined);
      try {
        const head = await options.s3.send(new HeadObjectCommand({ Bucket: options.bucket, Key: keyOf(resolved) }));
        return attributes(FILE_MODE, head.ContentLength ?? 0, head.LastModified);
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
      const children = await options.s3.send(
        new ListObjectsV2Command({ Bucket: options.bucket, Prefix: `${keyOf(resolved)}/`, MaxKeys: 1 }),
      );
      return (children.KeyCount ?? 0) > 0 ? attributes(DIR_MODE, 0, undefined) : undefined;
    };

    const statRequest = (id: number, path: string) =>
      guard(id, async () => {
        const attrs = await stat(path);
        if (attrs) sftp.attrs(id, attrs);
        else sftp.status(id, STATUS_CODE.NO_SUCH_FILE, `no such file: ${resolve(path)}`);
      });

    sftp.on('REALPATH', (id, path) => {
      const resolved = resolve(path);
      sftp.name(id, [{ filename: resolved, longname: resolved, attrs: {} as Attributes }]);
    });
    sftp.on('STAT', statRequest);
    sftp.on('LSTAT', statRequest);
    sftp.on('OPEN', (id, path, flags) =>
      guard(id, async () => {
        const local = join(scratch, `${++uploads}.part`);
        if (flags & OPEN_MODE.WRITE) {
          const file = await open(local, 'w+');
          sftp.handle(id, newHandle({ kind: 'write', file, path: local, key: keyOf(path) }));
          return;
        }
        const object = await options.s3.send(new GetObjectCommand({ Bucket: options.bucket, Key: keyOf(path) }));
        await pipeline(object.Body as Readable, createWriteStream(local));
        sftp.handle(id, newHandle({ kind: 'read', file: await open(local, 'r'), path: local }));
      }),
    );
    sftp.on('WRITE', (id, handleId, offset, data) =>
      guard(id, async () => {
        const handle = handles.get(handleId.toString('hex'));
        if (handle?.kind !== 'write') return void sftp.status(id, STATUS_CODE.FAILURE, 'not open for writing');
        await handle.file.write(data, 0, data.length, offset);
        sftp.status(id, STATUS_CODE.OK);
      }),
    );
    sftp.on('READ', (id, handleId, offset, length) =>
      guard(id, async () => {
        const handle = handles.get(handleId.toString('hex'));
        if (handle?.kind !== 'read') return void sftp.status(id, STATUS_CODE.FAILURE, 'not open for reading');
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.file.read(buffer, 0, length, offset);
        if (bytesRead === 0) sftp.status(id, STATUS_CODE.EOF);
        else sftp.data(id, buffer.subarray(0, bytesRead));
      }),
    );
    sftp.on('FSTAT', (id, handleId) =>
      guard(id, async () => {
        const handle = handles.get(handleId.toString('hex'));
        if (!handle || handle.kind === 'dir') return void sftp.attrs(id, attributes(DIR_MODE, 0, undefined));
        const stats = await handle.file.stat();
        sftp.attrs(id, attributes(FILE_MODE, stats.size, stats.mtime));
      }),
    );
    sftp.on('SETSTAT', (id) => sftp.status(id, STATUS_CODE.OK));
    sftp.on('FSETSTAT', (id) => sftp.status(id, STATUS_CODE.OK));
    sftp.on('CLOSE', (id, handleId) =>
      guard(id, async () => {
        const key = handleId.toString('hex');
        const handle = handles.get(key);
        handles.delete(key);
        if (!handle) return void sftp.status(id, STATUS_CODE.FAILURE, 'unknown handle');
        if (handle.kind === 'dir') return void sftp.status(id, STATUS_CODE.OK);
        const { size } = await handle.file.stat();
        await handle.file.close();
        try {
          if (handle.kind === 'write') {
            // Stored on close, in parts when large: the Object Created event follows the whole file.
            await new Upload({
              client: options.s3,
              params: { Bucket: options.bucket, Key: handle.key, Body: createReadStream(handle.path) },
              partSize: 16 * 1024 * 1024,
            }).done();
            options.onUpload?.({ user, key: handle.key, size });
          }
        } finally {
          rmSync(handle.path, { force: true });
        }
        sftp.status(id, STATUS_CODE.OK);
      }),
    );
    sftp.on('OPENDIR', (id, path) =>
      guard(id, async () => {
        const attrs = await stat(path);
        if (!attrs || (attrs.mode & 0o170000) !== 0o040000) {
          return void sftp.status(id, STATUS_CODE.NO_SUCH_FILE, `no such directory: ${resolve(path)}`);
        }
        sftp.handle(id, newHandle({ kind: 'dir', entries: await listing(resolve(path)), sent: false }));
      }),
    );
    sftp.on('READDIR', (id, handleId) => {
      const handle = handles.get(handleId.toString('hex'));
      if (handle?.kind !== 'dir') return void sftp.status(id, STATUS_CODE.FAILURE, 'not a directory handle');
      if (handle.sent || handle.entries.length === 0) return void sftp.status(id, STATUS_CODE.EOF);
      handle.sent = true;
      sftp.name(id, handle.entries);
    });
    sftp.on('MKDIR', (id, path) => {
      directories.add(resolve(path));
      sftp.status(id, STATUS_CODE.OK);
    });
    sftp.on('RMDIR', (id, path) => {
      directories.delete(resolve(path));
      sftp.status(id, STATUS_CODE.OK);
    });
    sftp.on('REMOVE', (id, path) =>
      guard(id, async () => {
        await options.s3.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: keyOf(path) }));
        sftp.status(id, STATUS_CODE.OK);
      }),
    );
    sftp.on('RENAME', (id, from, to) =>
      guard(id, async () => {
        const source = keyOf(from);
        await options.s3.send(
          new CopyObjectCommand({
            Bucket: options.bucket,
            Key: keyOf(to),
            CopySource: `${options.bucket}/${source.split('/').map(encodeURIComponent).join('/')}`,
          }),
        );
        await options.s3.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: source }));
        sftp.status(id, STATUS_CODE.OK);
      }),
    );
    sftp.on('end', () => {
      for (const handle of handles.values()) {
        if (handle.kind === 'dir') continue;
        // A connection lost mid-upload: the partial file is dropped, never handed on.
        void handle.file.close().finally(() => rmSync(handle.path, { force: true }));
      }
      handles.clear();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    users: options.users,
    hostKeyFingerprint,
    close: async () => {
      for (const connection of connections) connection.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
