/**
 * One daemon per root and runroot: an exclusive flock on `nodecri.lock` in each, taken
 * before anything touches them (image GC, restore, cgroups, the socket), so that a second
 * daemon given the same root (or runroot) with another socket stops at once, naming the
 * holder, instead of collecting the first one's images or adopting its containers. The
 * locks are held for the life of the process; a graceful restart keeps them across its
 * execve (the fds stay open and are named in NODECRI_LOCK_FDS), so they are never free.
 */
import fs from 'node:fs';
import path from 'node:path';
import { lockExclusive } from '../native/fs';
import { keepAcrossExec } from '../native/process';

const inheritedVar = 'NODECRI_LOCK_FDS';

export class StateDirsBusyError extends Error {
  constructor(
    readonly file: string,
    readonly holder: string,
  ) {
    super(`${file} is held by nodecri pid ${holder || '(unknown)'}: one daemon per root and runroot (stop it, or give this one its own --root and --runroot)`);
    this.name = 'StateDirsBusyError';
  }
}

export interface StateLocks {
  /** Keeps the locks across the daemon's own execve; returns the env entry that names them. */
  keepAcrossExec(): Record<string, string>;
  close(): void;
}

export async function lockStateDirs(dirs: string[]): Promise<StateLocks> {
  const inherited = (process.env[inheritedVar] ?? '')
    .split(',')
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
  delete process.env[inheritedVar];
  const files = [...new Set(dirs.map((d) => path.resolve(d)))].map((d) => path.join(d, 'nodecri.lock'));
  const fds: number[] = [];
  try {
    for (const [i, file] of files.entries()) {
      const r = await lockExclusive(file, inherited[i] ?? null);
      if (r.fd === null) throw new StateDirsBusyError(file, r.holder.trim());
      fds.push(r.fd);
    }
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    throw e;
  } finally {
    // An inherited lock fd that did not name one of our files any more is not ours to keep.
    for (const fd of inherited) if (!fds.includes(fd)) fs.close(fd, () => {});
  }
  return {
    keepAcrossExec() {
      keepAcrossExec(fds);
      return { [inheritedVar]: fds.join(',') };
    },
    close() {
      for (const fd of fds.splice(0)) fs.closeSync(fd);
    },
  };
}
