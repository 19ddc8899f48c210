import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { SFTPWrapper, Stats } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { z } from 'zod';
import { ErrorNames, PipelineError } from '../../core/errors';
import { RemoteFileChanged, type PollSource, type RemoteFile, type RemoteFolder } from '../../core/polling/poll-source';
import { keyFingerprint } from './host-key';

/** A source's secret (Secrets Manager, JSON): a password, or a private key (PEM or OpenSSH) with its passphrase. */
export const SourceCredentialsSchema = z.union([
  z.object({ password: z.string().min(1) }),
  z.object({ privateKey: z.string().min(1), passphrase: z.string().optional() }),
]);
export type SourceCredentials = z.infer<typeof SourceCredentialsSchema>;

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
]);

export interface SftpConnectOptions {
  /** How long the connection and handshake may take. @default 20000 */
  readonly readyTimeoutMs?: number;
  /** Called with the key the server showed (every connection; with no pinned key, it is how one learns it). */
  readonly onHostKey?: (fingerprint: string) => void;
}

/**
 * Connects to a polled source over SFTP (ssh2-sftp-client), checking the server's host key against the pinned
 * fingerprint before anything is sent. Failures are named: Source.HostKeyRejected, Source.AuthRejected,
 * Source.Unreachable (tried again next poll).
 */
export async function connectSftpSource(
  source: PollSource,
  credentials: SourceCredentials,
  options: SftpConnectOptions = {},
): Promise<RemoteFolder> {
  const where = `${source.host}:${source.port}`;
  let shown = '';
  const client = new SftpClient(source.name, { error: () => undefined, end: () => undefined, close: () => undefined });
  let wire: SFTPWrapper;
  try {
    wire = await client.connect({
      host: source.host,
      port: source.port,
      username: source.username,
      ...credentials,
      readyTimeout: options.readyTimeoutMs ?? 20_000,
      hostVerifier: (key: Buffer) => {
        shown = keyFingerprint(key);
        options.onHostKey?.(shown);
        return !source.hostKeyFingerprint || shown === source.hostKeyFingerprint;
      },
    });
  } catch (error) {
    await client.end().catch(() => undefined);
    const failure = error as Error & { code?: string; level?: string };
    if (source.hostKeyFingerprint && shown && shown !== source.hostKeyFingerprint) {
      throw new PipelineError(
        ErrorNames.sourceHostKeyRejected,
        `${source.name}: the host key of ${where} is ${shown}, not the pinned ${source.hostKeyFingerprint}: ` +
          'refused, nothing read or sent (if the partner changed its key, pin the new fingerprint)',
      );
    }
    if (/authentication methods failed/i.test(failure.message)) {
      throw new PipelineError(
        ErrorNames.sourceAuthRejected,
        `${source.name}: ${where} refused user ${source.username}'s credentials`,
      );
    }
    const unreachable = UNREACHABLE.has(failure.code ?? '') || /timed out|timeout/i.test(failure.message);
    throw new PipelineError(
      unreachable ? ErrorNames.sourceUnreachable : ErrorNames.sourceTransferFailed,
      `${source.name}: cannot reach ${where} (${failure.message}); tried again next poll`,
    );
  }
  return sftpFolder(client, wire);
}

/** Requests in flight while reading a file, and their size: ssh2's fastGet defaults (2 MiB in flight). */
const READ_AHEAD = { concurrency: 64, chunkSize: 32 * 1024 };

const call = <T>(work: (done: (error: Error | null | undefined, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => work((error, value) => (error ? reject(error) : resolve(value as T))));

/**
 * The file's bytes, read with many requests in flight and handed on in order (a stream's one 64 KiB request at
 * a time is bound by the round trip: about 1 MB/s at 50 ms). Exactly the listed size is read; then the file
 * must still have that size and time, else it changed while it was read and the read fails (nothing is landed).
 */
export async function* readAhead(
  wire: SFTPWrapper,
  path: string,
  listed: { size: number; modifiedAt: number },
  { concurrency, chunkSize } = READ_AHEAD,
): AsyncGenerator<Uint8Array> {
  const handle = await call<Buffer>((done) => wire.open(path, 'r', done));
  const chunk = async (position: number, length: number): Promise<Buffer> => {
    const buffer = Buffer.allocUnsafe(length);
    for (let filled = 0; filled < length;) {
      const read = await call<number>((done) =>
        wire.read(handle, buffer, filled, length - filled, position + filled, (error, bytes) => done(error, bytes)),
      );
      if (read === 0) {
        throw new RemoteFileChanged(`${path} ended at ${position + filled} bytes, listed with ${listed.size}`);
      }
      filled += read;
    }
    return buffer;
  };
  const pending: Promise<Buffer>[] = [];
  let next = 0;
  const request = () => {
    const length = Math.min(chunkSize, listed.size - next);
    const read = chunk(next, length);
    read.catch(() => undefined); // seen when its turn comes; not an unhandled rejection meanwhile
    pending.push(read);
    next += length;
  };
  try {
    while (next < listed.size && pending.length < concurrency) request();
    while (pending.length > 0) {
      const data = await pending.shift()!;
      if (next < listed.size) request();
      yield data;
    }
    const now = await call<Stats>((done) => wire.fstat(handle, done));
    if (now.size !== listed.size || now.mtime * 1000 !== listed.modifiedAt) {
      throw new RemoteFileChanged(`${path} changed while it was read (now ${now.size} bytes)`);
    }
  } finally {
    await call<void>((done) => wire.close(handle, done)).catch(() => undefined);
  }
}

/** The remote-folder port on an open ssh2-sftp-client connection. */
export function sftpFolder(client: SftpClient, wire: SFTPWrapper): RemoteFolder {
  return {
    async list(dir) {
      const entries = await client.list(dir);
      return entries
        .filter((entry) => entry.type === '-')
        .map((entry): RemoteFile => ({ name: entry.name, size: entry.size, modifiedAt: entry.modifyTime }));
    },
    read: (path, listed) => readAhead(wire, path, listed),
    async write(path, body) {
      const temporary = posix.join(posix.dirname(path), `.${posix.basename(path)}.part`);
      await client.put(typeof body === 'string' ? Buffer.from(body) : Readable.from(body), temporary);
      await client.delete(path, true);
      await client.rename(temporary, path);
    },
    rename: async (from, to) => void (await client.rename(from, to)),
    async mkdir(path) {
      if ((await client.exists(path)) !== 'd') await client.mkdir(path, true);
    },
    close: async () => void (await client.end()),
  };
}
