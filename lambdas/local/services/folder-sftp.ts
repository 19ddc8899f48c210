import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  attributes,
  DIR_MODE,
  entry,
  FILE_MODE,
  startSftpServer,
  type EmbeddedSftpServer,
  type SftpFiles,
  type SftpLogin,
  type SftpServerSettings,
} from './sftp-server';

const missing = (error: unknown) => (error as { code?: string }).code === 'ENOENT';

/**
 * An SFTP server over a plain folder, as a partner's own server would be (OpenSSH with its file system): what
 * a client writes is visible, growing, while it is written; every user's home is `root`. For trying the
 * polling watcher (`ingest run --poll`) and for its tests without a real sshd.
 */
export async function startFolderSftp(
  options: SftpServerSettings & { readonly root: string; readonly users: readonly SftpLogin[] },
): Promise<EmbeddedSftpServer> {
  const { root, ...settings } = options;
  const local = (path: string) => join(root, path);
  const files: SftpFiles = {
    async stat(path) {
      try {
        const stats = await stat(local(path));
        return attributes(
          stats.isDirectory() ? DIR_MODE : FILE_MODE,
          stats.isDirectory() ? 0 : stats.size,
          stats.mtime,
        );
      } catch (error) {
        if (missing(error)) return undefined;
        throw error;
      }
    },
    async list(path) {
      const names = await readdir(local(path));
      const entries = [];
      for (const name of names.sort()) {
        const attrs = await files.stat(join(path, name));
        if (attrs) entries.push(entry(name, attrs));
      }
      return entries;
    },
    async openRead(path) {
      const file = await open(local(path), 'r');
      return { file, close: () => file.close() };
    },
    async openWrite(path) {
      const file = await open(local(path), 'w');
      return {
        file,
        commit: async () => {
          const { size } = await file.stat();
          await file.close();
          return { size };
        },
        // As OpenSSH does: what was written stays.
        discard: () => file.close(),
      };
    },
    remove: (path) => rm(local(path)),
    rename: (from, to) => rename(local(from), local(to)),
    mkdir: async (path) => void (await mkdir(local(path))),
    rmdir: (path) => rmdir(local(path)),
  };
  return startSftpServer({ ...settings, files: () => files });
}
