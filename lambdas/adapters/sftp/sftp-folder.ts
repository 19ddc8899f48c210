import { posix } from 'node:path';
import { Readable } from 'node:stream';
import SftpClient from 'ssh2-sftp-client';
import { z } from 'zod';
import { ErrorNames, PipelineError } from '../../core/errors';
import type { PollSource, RemoteFile, RemoteFolder } from '../../core/polling/poll-source';
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
  try {
    await client.connect({
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
  return sftpFolder(client);
}

/** The remote-folder port on an open ssh2-sftp-client connection. */
export function sftpFolder(client: SftpClient): RemoteFolder {
  return {
    async list(dir) {
      const entries = await client.list(dir);
      return entries
        .filter((entry) => entry.type === '-')
        .map((entry): RemoteFile => ({ name: entry.name, size: entry.size, modifiedAt: entry.modifyTime }));
    },
    read: (path) => client.createReadStream(path) as AsyncIterable<Uint8Array>,
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
