/**
 * Crash-safe file primitives for the image store: a file or directory appears under its
 * final name only when complete (write to a temp name, fsync, rename, fsync the parent), so
 * a kill -9 or a power cut leaves either the old state or the new one, never half.
 */
import fsp from 'node:fs/promises';
import { writeFileAtomic as writeStateFile } from '../state/atomic-file';

export { fsyncDir, readJson } from '../state/atomic-file';

/** Writes `data` to `file` atomically and durably, readable by all (image metadata). */
export function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  return writeStateFile(file, data, 0o644);
}

/** Whether `p` exists (without following a final symlink). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

export function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}
