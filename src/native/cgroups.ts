/**
 * The cgroup exports of the addon, typed. The native side is deliberately generic (make
 * dirs, read/write files, kill, remove); which file gets which value is decided in
 * src/linux/cgroups/. Every function returns a Promise: cgroupfs operations can sleep in
 * the kernel and so run on the libuv pool, never on the event loop.
 *
 * Directories are absolute paths; file names are single components. Failures reject with
 * a SyscallError whose `path` names the file or directory involved.
 */
import { nativeFunction } from './binding';

export interface CgroupCreateSpec {
  /** Mount point of the hierarchy; must be a cgroup filesystem. */
  root: string;
  /** Path below the root ("a/b"); intermediate directories are made too. */
  path: string;
  /**
   * Files that, when empty in a directory on the way (new or existing), are filled from
   * its parent: v1 cpuset needs ["cpuset.cpus", "cpuset.mems"] before a task can join.
   */
  inheritFiles: string[];
}

export interface CgroupFileWrite {
  dir: string;
  file: string;
  value: string;
  /** When true a failure is reported in the result array instead of rejecting. */
  mayFail: boolean;
}

export interface CgroupFileRead {
  dir: string;
  file: string;
}

export interface CgroupKillSpec {
  /** v2 cgroups whose cgroup.kill is written (skipped where missing). */
  killDirs: string[];
  /** Cgroups (with their sub-cgroups) whose cgroup.procs must end up empty. */
  procsDirs: string[];
  /** Freezer used to hold tasks still while they are signalled, or null. */
  freezerDir: string | null;
  /** 1: v1 freezer.state; 2: v2 cgroup.freeze. Ignored when freezerDir is null. */
  freezerVersion: 1 | 2;
  /** Reject with EBUSY if tasks remain after this long. */
  timeoutMs: number;
}

/**
 * One device rule for the cgroup2 device program, as a v1 devices cgroup would be written
 * it (src/linux/cgroups/devices.ts checks them first; the addon refuses with EINVAL what it
 * cannot express).
 */
export interface CgroupDeviceRule {
  allow: boolean;
  /** "a": every device (major and minor null, access "rwm") */
  type: 'a' | 'c' | 'b';
  /** null: any */
  major: number | null;
  minor: number | null;
  /** a non-empty combination of r, w and m */
  access: string;
}

/** mkdir -p for each spec, in order; existing directories are fine. */
export const cgroupCreate = nativeFunction<(specs: CgroupCreateSpec[]) => Promise<void>>('cgroupCreate');

/**
 * Writes in order, each value with one write(2). Stops at the first failing entry that
 * may not fail. Resolves to one errno per entry (0 when written).
 */
export const cgroupWriteFiles = nativeFunction<(writes: CgroupFileWrite[]) => Promise<number[]>>('cgroupWriteFiles');

/** Reads each file whole; null where the file or its directory does not exist. */
export const cgroupReadFiles = nativeFunction<(reads: CgroupFileRead[]) => Promise<(string | null)[]>>('cgroupReadFiles');

const nKillRound =
  nativeFunction<(spec: CgroupKillSpec, first: boolean, signal: boolean, expired: boolean) => Promise<{ remaining: number; kernelKills: boolean }>>('cgroupKillRound');

/**
 * Kills every task in the cgroups and waits until none is left (EBUSY after timeoutMs).
 * Each round is a short job on the pool; the waits between them are timers on the loop,
 * so a slow death never holds a pool thread.
 */
export async function cgroupKillAll(spec: CgroupKillSpec): Promise<void> {
  const deadline = performance.now() + Math.max(spec.timeoutMs, 0);
  const first = await nKillRound(spec, true, false, false);
  // If tasks outlive cgroup.kill (in hybrid mode a task may sit in v1 cgroups but not in
  // the unified one), we signal them ourselves after a short grace.
  const signalFrom = first.kernelKills ? performance.now() + 100 : 0;
  let remaining = first.remaining;
  for (let delay = 1; remaining > 0; delay = Math.min(delay * 2, 20)) {
    await new Promise((r) => setTimeout(r, delay));
    const now = performance.now();
    remaining = (await nKillRound(spec, false, now >= signalFrom, now >= deadline)).remaining;
  }
}

/**
 * Removes each cgroup directory with the cgroups below it, deepest first, retrying while
 * the kernel says EBUSY. Missing directories are fine.
 */
export const cgroupRemove = nativeFunction<(dirs: string[]) => Promise<void>>('cgroupRemove');

/**
 * Builds the BPF_PROG_TYPE_CGROUP_DEVICE program for `rules` (the last matching rule
 * decides; the first must be an "a" rule), loads it and attaches it to the cgroup2 dir
 * with BPF_F_ALLOW_MULTI, replacing the program attached before. No fd stays open: the
 * attachment lives as long as the cgroup.
 */
export const cgroupDeviceFilter = nativeFunction<(dir: string, rules: CgroupDeviceRule[]) => Promise<void>>('cgroupDeviceFilter');

/** Ids of the cgroup device programs attached to a cgroup2 dir. */
export const cgroupDevicePrograms = nativeFunction<(dir: string) => Promise<number[]>>('cgroupDevicePrograms');

/** 0 when this kernel loads cgroup device programs for the daemon, else the errno. */
export const cgroupDeviceFilterProbe = nativeFunction<() => Promise<number>>('cgroupDeviceFilterProbe');

/**
 * The program cgroupDeviceFilter would load, as raw struct bpf_insn (8 bytes each). Pure
 * and synchronous: for tests and diagnostics.
 */
export const cgroupDeviceProgram = nativeFunction<(rules: CgroupDeviceRule[]) => Buffer>('cgroupDeviceProgram');

/** The facade as one injectable object, so the manager can be driven by a fake in tests. */
export interface CgroupNative {
  cgroupCreate(specs: CgroupCreateSpec[]): Promise<void>;
  cgroupWriteFiles(writes: CgroupFileWrite[]): Promise<number[]>;
  cgroupReadFiles(reads: CgroupFileRead[]): Promise<(string | null)[]>;
  cgroupKillAll(spec: CgroupKillSpec): Promise<void>;
  cgroupRemove(dirs: string[]): Promise<void>;
  cgroupDeviceFilter(dir: string, rules: CgroupDeviceRule[]): Promise<void>;
  cgroupDeviceFilterProbe(): Promise<number>;
}

export const cgroupNative: CgroupNative = {
  cgroupCreate,
  cgroupWriteFiles,
  cgroupReadFiles,
  cgroupKillAll,
  cgroupRemove,
  cgroupDeviceFilter,
  cgroupDeviceFilterProbe,
};
