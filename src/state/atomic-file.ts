/**
 * Crash-safe file writes: the new content goes to a temp file in the same directory, is
 * fsync'ed, renamed over the target, and the directory is fsync'ed so that the rename
 * itself survives a power cut. A reader sees the old file or the new one, never a part.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * `durable: false` skips the fsyncs: for runtime files that a reboot makes moot anyway
 * (a pod's hostname and hosts, the CNI result cache), where the rename alone keeps readers
 * from seeing half a file.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600, durable = true): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  if (durable) await fsyncDir(dir);
}

/**
 * State records hold bigints (byte sizes, limits): JSON has no such type, so they are
 * written as {"$bigint": "123"} and revived on reading.
 */
export function toJson(value: unknown, space?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v), space);
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && typeof (v as { $bigint?: unknown }).$bigint === 'string' && Object.keys(v).length === 1 ? BigInt((v as { $bigint: string }).$bigint) : v,
  ) as T;
}

/** Reads and parses a JSON state file; null when it does not exist. */
export async function readJson<T>(file: string): Promise<T | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return fromJson<T>(text);
}

export function writeJsonAtomic(file: string, value: unknown, durable = true): Promise<void> {
  return writeFileAtomic(file, `${toJson(value, 1)}\n`, 0o600, durable);
}
