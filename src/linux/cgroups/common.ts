/**
 * Helpers shared by the v1 and v2 managers and the controller writers: the shape of a
 * controller writer, path validation and parsing of cgroup files.
 */
import os from 'node:os';
import { RuntimeError } from '../../domain/errors';
import type { ControllerName, Resources } from './types';

/** A resource a CgroupConfigError is about: the domain names it in the caller's terms. */
export type ResourceField = keyof Resources;

/**
 * Invalid resources or paths handed to the manager: an invalid-argument RuntimeError, so
 * that a CRI caller gets INVALID_ARGUMENT with the message (not an internal error). With
 * a `field`, the message starts with it and `detail` is the rest.
 */
export class CgroupConfigError extends RuntimeError {
  readonly detail: string;
  constructor(
    message: string,
    readonly field: ResourceField | null = null,
  ) {
    super('invalid-argument', field === null ? message : `${field}: ${message}`);
    this.detail = message;
  }
}

/** Linux's PATH_MAX, counting the terminating NUL, and NAME_MAX. */
const PATH_MAX = 4096;
const NAME_MAX = 255;
/** Room kept after a cgroup directory for the longest control file name and a slash. */
const CONTROL_FILE_ROOM = 64;

/** A value for one control file of a controller; the manager decides the directory. */
export interface FileValue {
  file: string;
  value: string;
  /**
   * errno names ("EINVAL") with which this write may fail without failing the update
   * (see cpu's period retry, memory's swap on hosts without swap accounting).
   */
  tolerate: readonly string[];
}

/** Facts about the host and the cgroup that some writers need. */
export interface WriteContext {
  /** v1 memory.memsw.* exist (swap accounting on). */
  memswSupported: boolean;
  /** v1 memory.limit_in_bytes as read before writing, when the writer asked for it. */
  currentMemoryLimit: bigint | null;
}

/**
 * One controller's mapping of Resources to files, for each cgroup version (youki's
 * one-method controller trait, split by version). Pure: no I/O.
 */
export interface ControllerWriter {
  readonly name: ControllerName;
  /** Whether `r` sets anything this controller handles. */
  wants(r: Resources): boolean;
  v1(r: Resources, ctx: WriteContext): FileValue[];
  v2(r: Resources, ctx: WriteContext): FileValue[];
}

export function fv(file: string, value: string, tolerate: readonly string[] = []): FileValue {
  return { file, value, tolerate };
}

/**
 * "/a/b" -> "a/b". Refuses the root, relative paths, empty, "." and ".." components and
 * anything a directory name cannot hold, so a cgroup path can never reach outside its
 * hierarchy.
 */
export function relativeCgroupPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new CgroupConfigError(`cgroup path must be absolute: ${JSON.stringify(path)}`);
  }
  const parts = path.split('/').slice(1);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) {
    throw new CgroupConfigError('cgroup path must not be the root: "/"');
  }
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..' || p.includes('\0')) {
      throw new CgroupConfigError(`invalid cgroup path: ${JSON.stringify(path)}`);
    }
    // A newline would forge a line of /proc/<pid>/cgroup; the kernel refuses it in mkdir.
    if (/[\x00-\x1f\x7f]/.test(p)) throw new CgroupConfigError(`invalid cgroup path: ${JSON.stringify(path)} has a control character`);
    if (Buffer.byteLength(p) > NAME_MAX) {
      throw new CgroupConfigError(`invalid cgroup path: a component is ${Buffer.byteLength(p)} bytes, over NAME_MAX (${NAME_MAX})`);
    }
  }
  return parts.join('/');
}

/**
 * Refuses a cgroup directory whose control files' paths would not fit in PATH_MAX: the
 * kernel would refuse them only after some directories exist, and removal by path could
 * not reach those.
 */
export function checkCgroupDirLength(dir: string): void {
  const bytes = Buffer.byteLength(dir);
  if (bytes + CONTROL_FILE_ROOM >= PATH_MAX) {
    throw new CgroupConfigError(`cgroup path too long: ${bytes} bytes as ${dir.slice(0, 40)}..., over PATH_MAX (${PATH_MAX}) with its files`);
  }
}

/** The cgroup's ancestors as relative paths, outermost first: "a/b/c" -> ["a", "a/b"]. */
export function ancestors(rel: string): string[] {
  const parts = rel.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

export function joinDir(mount: string, rel: string): string {
  return rel === '' ? mount : `${mount.replace(/\/+$/, '')}/${rel}`;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events) into a map. */
export function parseKeyValues(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s*$/.exec(line);
    if (m) out.set(m[1], BigInt(m[2]));
  }
  return out;
}

/** A single unsigned number (memory.current, pids.current); null if absent or "max". */
export function parseSingle(text: string | null): bigint | null {
  if (text === null) return null;
  const t = text.trim();
  return /^\d+$/.test(t) ? BigInt(t) : null;
}

export function requireInteger(name: ResourceField, v: number): void {
  if (!Number.isSafeInteger(v)) throw new CgroupConfigError(`must be an integer: ${v}`, name);
}

/** Unique values in first-seen order. */
export function unique<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name] as [number, string]));

/** "ENOENT" for 2, like the addon's error codes. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}
