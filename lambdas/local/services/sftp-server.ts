import { generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, posix } from 'node:path';
import { keyFingerprint } from '../../adapters/sftp/host-key';
import { Server, utils, type Attributes, type Connection, type FileEntry, type SFTPWrapper } from 'ssh2';

const { OPEN_MODE, STATUS_CODE } = utils.sftp;

/** A user of an embedded SFTP server: a password, a public key (OpenSSH `authorized_keys` line), or both. */
export interface SftpLogin {
  readonly name: string;
  readonly password?: string;
  readonly publicKey?: string;
}

/** A file being written: its local handle, and what to do when the client closes it (or the connection drops). */
export interface WriteTarget {
  readonly file: FileHandle;
  commit(): Promise<{ size: number }>;
  discard(): Promise<void>;
}

/**
 * What one user sees, with paths normalised and confined to their home (`/` is the home): the storage behind
 * an embedded SFTP server (S3 for the landing zone, a folder for a partner's own server).
 */
export interface SftpFiles {
  stat(path: string): Promise<Attributes | undefined>;
  list(path: string): Promise<FileEntry[]>;
  /**
   * `attrs`: what FSTAT reports while the file is open, when `file` is a local copy whose own size and time
   * are not the stored file's (else FSTAT reports `file`'s, as a file system does).
   */
  openRead(path: string): Promise<{ file: FileHandle; close(): Promise<void>; attrs?: Attributes }>;
  openWrite(path: string): Promise<WriteTarget>;
  remove(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
}

export interface EmbeddedSftpServer {
  readonly host: string;
  readonly port: number;
  /** The server's host key fingerprint (SHA-256, base64, as `ssh` prints it). */
  readonly hostKeyFingerprint: string;
  close(): Promise<void>;
}

/** A failed login, as `onAuthFailure` gets it: never the password. */
export interface AuthFailure {
  readonly user: string;
  /** The SSH method tried: `password`, or `publickey` with a signature that did not verify. */
  readonly method: string;
  /** `ip:port` of the client. */
  readonly remote: string;
}

/** How an embedded SFTP server runs, whatever its storage. */
export interface SftpServerSettings {
  /** @default a free port */
  readonly port?: number;
  /**
   * Where the host key is kept (PEM), so that its fingerprint survives restarts: read if the file is there,
   * else made and written there (mode 0600, folders created).
   * @default a new key at each start
   */
  readonly hostKeyFile?: string;
  /**
   * How long a failed login waits for its answer, times the failures so far on that connection (1 s, 2 s, 3 s
   * by default): a password guesser gets few tries a minute, a right password is answered at once.
   * @default 1000
   */
  readonly authFailureDelayMs?: number;
  /** Called at each failed login (a wrong password, an unknown user), for the log. */
  readonly onAuthFailure?: (failure: AuthFailure) => void;
}

/** A host key file that holds no usable private key: the server does not start, rather than change its key. */
export class HostKeyFileInvalid extends Error {
  override readonly name = 'Sftp.HostKeyFileInvalid';
}

/**
 * A request the storage refuses for a reason the client should read (a name it cannot store): answered with
 * `status` and exactly `message`, where other errors are answered as failures of the server.
 */
export class SftpRequestRefused extends Error {
  override readonly name = 'Sftp.RequestRefused';
  constructor(
    message: string,
    readonly status: number = STATUS_CODE.FAILURE,
  ) {
    super(message);
  }
}

export const FILE_MODE = 0o100644;
export const DIR_MODE = 0o040755;
const isDirectory = (attrs: Attributes) => (attrs.mode & 0o170000) === 0o040000;

export function attributes(mode: number, size: number, modified: Date | undefined): Attributes {
  const seconds = Math.floor((modified?.getTime() ?? Date.now()) / 1000);
  return { mode, uid: 0, gid: 0, size, atime: seconds, mtime: seconds };
}

export function entry(name: string, attrs: Attributes): FileEntry {
  const type = isDirectory(attrs) ? 'd' : '-';
  const permissions = type === 'd' ? 'rwxr-xr-x' : 'rw-r--r--';
  const date = new Date(attrs.mtime * 1000).toISOString().slice(0, 16).replace('T', ' ');
  return { filename: name, longname: `${type}${permissions} 1 partner partner ${attrs.size} ${date} ${name}`, attrs };
}

/**
 * A new key pair for SSH: ECDSA P-256 from Node's own generator (ssh2's ed25519 generator now and then writes
 * a public key it cannot parse back). `privateKey` is PEM (OpenSSH and ssh2 read it), `publicKey` an
 * `authorized_keys` line, `fingerprint` the SHA-256 one.
 */
export function newSshKeyPair(): { privateKey: string; publicKey: string; fingerprint: string } {
  const pair = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'sec1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const parsed = utils.parseKey(pair.privateKey);
  if (parsed instanceof Error) throw parsed;
  const blob = parsed.getPublicSSH();
  return {
    privateKey: pair.privateKey,
    publicKey: `${parsed.type} ${blob.toString('base64')}`,
    fingerprint: keyFingerprint(blob),
  };
}

/**
 * The host key kept in `path`: read (PEM, or OpenSSH's own format, unencrypted) if the file is there, else made
 * and written there, readable by its owner only.
 * @throws HostKeyFileInvalid when the file cannot be read or holds no private key, naming the file.
 */
export function hostKeyFromFile(path: string): { privateKey: string; fingerprint: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') {
      throw new HostKeyFileInvalid(`host key file ${path} cannot be read: ${(error as Error).message}`);
    }
    const made = newSshKeyPair();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      // wx: two servers starting at once keep one key, the first one written.
      writeFileSync(path, made.privateKey, { mode: 0o600, flag: 'wx' });
    } catch (writeError) {
      if ((writeError as { code?: string }).code === 'EEXIST') return hostKeyFromFile(path);
      throw writeError;
    }
    return made;
  }
  const parsed = utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error || !key.isPrivateKey()) {
    const why = key instanceof Error ? key.message : 'it holds no private key';
    throw new HostKeyFileInvalid(
      `host key file ${path} is not a private key the server can use (${why}): fix it, or remove it for a new key`,
    );
  }
  return { privateKey: text, fingerprint: keyFingerprint(key.getPublicSSH()) };
}

/** Paths are relative to the home; `..` cannot climb out of it. */
export const homePath = (path: string) => posix.normalize(`/${path}`).replace(/\/+$/, '') || '/';

/** A missing object (S3) or file (the file system): SFTP's NO_SUCH_FILE. */
export const isMissing = (error: unknown) => {
  const name = (error as { name?: string; code?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound' || (error as { code?: string }).code === 'ENOENT';
};

type OpenHandle =
  | { readonly kind: 'write'; readonly target: WriteTarget }
  | { readonly kind: 'read'; readonly file: FileHandle; close(): Promise<void>; readonly attrs?: Attributes }
  | { readonly kind: 'dir'; readonly entries: FileEntry[]; sent: boolean };

const AUTH_METHODS: ('password' | 'publickey')[] = ['password', 'publickey'];

/**
 * An SFTP server (ssh2) on 127.0.0.1, on a free port, with a host key made at start (or kept in a file): each
 * user logs in with their password or key and is served `files(user)`; failed logins are answered late and
 * reported. The protocol is here; what a path means is the storage's.
 */
export async function startSftpServer(
  options: SftpServerSettings & {
    readonly users: readonly SftpLogin[];
    readonly files: (user: string) => SftpFiles;
  },
): Promise<EmbeddedSftpServer> {
  const hostKey = options.hostKeyFile ? hostKeyFromFile(options.hostKeyFile) : newSshKeyPair();
  const failureDelayMs = options.authFailureDelayMs ?? 1000;
  const logins = new Map(options.users.map((user) => [user.name, user]));
  const connections = new Set<Connection>();

  const server = new Server({ hostKeys: [hostKey.privateKey] }, (client, info) => {
    connections.add(client);
    const remote = `${info.ip}:${info.port}`;
    let failures = 0;
    const delayed = new Set<NodeJS.Timeout>();
    client.on('close', () => {
      connections.delete(client);
      for (const timer of delayed) clearTimeout(timer);
    });
    let user = '';
    client.on('authentication', (context) => {
      const login = logins.get(context.username);
      if (login && context.method === 'password' && login.password !== undefined) {
        if (safeEqual(Buffer.from(login.password), Buffer.from(context.password))) {
          user = login.name;
          return context.accept();
        }
      }
      if (login?.publicKey && context.method === 'publickey') {
        const allowed = utils.parseKey(login.publicKey);
        if (!(allowed instanceof Error) && safeEqual(allowed.getPublicSSH(), context.key.data)) {
          // Without a signature the client only asks whether the key would do; with one, it must verify.
          if (!context.signature || allowed.verify(context.blob as Buffer, context.signature, context.hashAlgo)) {
            user = login.name;
            return context.accept();
          }
        }
      }
      // `none` asks which methods there are, and an unsigned key asks whether it would do: neither is a guess.
      const guessed = context.method === 'password' || (context.method === 'publickey' && !!context.signature);
      if (!guessed) return context.reject(AUTH_METHODS);
      failures++;
      try {
        options.onAuthFailure?.({ user: context.username, method: context.method, remote });
      } catch {
        // A failing hook (the log) must not leave the login unanswered.
      }
      const timer = setTimeout(() => {
        delayed.delete(timer);
        context.reject(AUTH_METHODS);
      }, failureDelayMs * failures);
      delayed.add(timer);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        acceptSession().on('sftp', (acceptSftp) => serveSftp(acceptSftp(), options.files(user)));
      });
    });
    client.on('error', () => undefined);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    hostKeyFingerprint: hostKey.fingerprint,
    close: async () => {
      for (const connection of connections) connection.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serveSftp(sftp: SFTPWrapper, files: SftpFiles) {
  const handles = new Map<string, OpenHandle>();
  let nextHandle = 0;
  const newHandle = (handle: OpenHandle) => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(nextHandle++);
    handles.set(id.toString('hex'), handle);
    return id;
  };
  const handleOf = (id: Buffer) => handles.get(id.toString('hex'));
  const fail = (id: number, error: unknown) =>
    error instanceof SftpRequestRefused
      ? sftp.status(id, error.status, error.message)
      : sftp.status(id, isMissing(error) ? STATUS_CODE.NO_SUCH_FILE : STATUS_CODE.FAILURE, String(error));
  // Requests still being served: the session ends only once each has had its answer.
  const inFlight = new Set<Promise<void>>();
  const guard = (id: number, work: () => Promise<void>) => {
    const served: Promise<void> = work()
      .catch((error: unknown) => void fail(id, error))
      .finally(() => inFlight.delete(served));
    inFlight.add(served);
  };
  const ok = (id: number, work: () => Promise<void>) =>
    guard(id, async () => {
      await work();
      sftp.status(id, STATUS_CODE.OK);
    });

  const statRequest = (id: number, path: string) =>
    guard(id, async () => {
      const attrs = await files.stat(homePath(path));
      if (attrs) sftp.attrs(id, attrs);
      else sftp.status(id, STATUS_CODE.NO_SUCH_FILE, `no such file: ${homePath(path)}`);
    });

  sftp.on('REALPATH', (id, path) => {
    const resolved = homePath(path);
    sftp.name(id, [{ filename: resolved, longname: resolved, attrs: {} as Attributes }]);
  });
  sftp.on('STAT', statRequest);
  sftp.on('LSTAT', statRequest);
  sftp.on('OPEN', (id, path, flags) =>
    guard(id, async () => {
      if (flags & OPEN_MODE.WRITE) {
        sftp.handle(id, newHandle({ kind: 'write', target: await files.openWrite(homePath(path)) }));
      } else {
        sftp.handle(id, newHandle({ kind: 'read', ...(await files.openRead(homePath(path))) }));
      }
    }),
  );
  sftp.on('WRITE', (id, handleId, offset, data) =>
    guard(id, async () => {
      const handle = handleOf(handleId);
      if (handle?.kind !== 'write') return void sftp.status(id, STATUS_CODE.FAILURE, 'not open for writing');
      await handle.target.file.write(data, 0, data.length, offset);
      sftp.status(id, STATUS_CODE.OK);
    }),
  );
  sftp.on('READ', (id, handleId, offset, length) =>
    guard(id, async () => {
      const handle = handleOf(handleId);
      if (handle?.kind !== 'read') return void sftp.status(id, STATUS_CODE.FAILURE, 'not open for reading');
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.file.read(buffer, 0, length, offset);
      if (bytesRead === 0) sftp.status(id, STATUS_CODE.EOF);
      else sftp.data(id, buffer.subarray(0, bytesRead));
    }),
  );
  sftp.on('FSTAT', (id, handleId) =>
    guard(id, async () => {
      const handle = handleOf(handleId);
      if (!handle || handle.kind === 'dir') return void sftp.attrs(id, attributes(DIR_MODE, 0, undefined));
      // The stored file's size and time, as STAT and the listing give them: a client that compares (the polling
      // watcher does) must not see a local copy's.
      if (handle.kind === 'read' && handle.attrs) return void sftp.attrs(id, handle.attrs);
      const stats = await (handle.kind === 'write' ? handle.target.file : handle.file).stat();
      sftp.attrs(id, attributes(FILE_MODE, stats.size, stats.mtime));
    }),
  );
  sftp.on('SETSTAT', (id) => sftp.status(id, STATUS_CODE.OK));
  sftp.on('FSETSTAT', (id) => sftp.status(id, STATUS_CODE.OK));
  sftp.on('CLOSE', (id, handleId) =>
    ok(id, async () => {
      const handle = handleOf(handleId);
      handles.delete(handleId.toString('hex'));
      if (!handle) throw new Error('unknown handle');
      if (handle.kind === 'write') await handle.target.commit();
      else if (handle.kind === 'read') await handle.close();
    }),
  );
  sftp.on('OPENDIR', (id, path) =>
    guard(id, async () => {
      const attrs = await files.stat(homePath(path));
      if (!attrs || !isDirectory(attrs)) {
        return void sftp.status(id, STATUS_CODE.NO_SUCH_FILE, `no such directory: ${homePath(path)}`);
      }
      sftp.handle(id, newHandle({ kind: 'dir', entries: await files.list(homePath(path)), sent: false }));
    }),
  );
  sftp.on('READDIR', (id, handleId) => {
    const handle = handleOf(handleId);
    if (handle?.kind !== 'dir') return void sftp.status(id, STATUS_CODE.FAILURE, 'not a directory handle');
    if (handle.sent || handle.entries.length === 0) return void sftp.status(id, STATUS_CODE.EOF);
    handle.sent = true;
    sftp.name(id, handle.entries);
  });
  sftp.on('MKDIR', (id, path) => ok(id, () => files.mkdir(homePath(path))));
  sftp.on('RMDIR', (id, path) => ok(id, () => files.rmdir(homePath(path))));
  sftp.on('REMOVE', (id, path) => ok(id, () => files.remove(homePath(path))));
  sftp.on('RENAME', (id, from, to) => ok(id, () => files.rename(homePath(from), homePath(to))));
  // The client's EOF (the end of `sftp -b`, `bye`) or CLOSE on the channel, or a lost connection: ssh2 leaves
  // closing an SFTP channel to us, and OpenSSH's client waits for that close before it exits.
  sftp.on('end', () => {
    void (async () => {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      sftp.end();
      const open = [...handles.values()];
      handles.clear();
      for (const handle of open) {
        // A connection lost mid-upload: the partial file is dropped (or, on a plain folder, left as it is).
        if (handle.kind === 'write') await handle.target.discard().catch(() => undefined);
        else if (handle.kind === 'read') await handle.close().catch(() => undefined);
      }
    })();
  });
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
