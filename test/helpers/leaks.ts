/**
 * Leak checks for tests that touch the kernel: a snapshot of what exists under the test's
 * own roots (mounts, cgroup dirs, files) and of this process's children, taken before and
 * compared after. Scoped to the test's own paths so that tests (and other work on the
 * machine) running at the same time do not disturb each other.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mountTable } from './mountinfo';

export interface LeakScope {
  /** Mount points under these prefixes are tracked (e.g. the test's temp root). */
  mountPrefixes: string[];
  /** Directories whose whole tree is listed (files and dirs); mount points are skipped. */
  dirs?: string[];
  /** cgroup directories (any hierarchy) whose sub-directories are tracked. */
  cgroupDirs?: string[];
}

export interface Snapshot {
  mounts: string[];
  files: string[];
  cgroups: string[];
  children: string[];
}

function mountPoints(prefixes: string[]): string[] {
  const out: string[] = [];
  for (const { mountPoint } of mountTable()) {
    if (prefixes.some((p) => mountPoint === p || mountPoint.startsWith(p.endsWith('/') ? p : `${p}/`))) out.push(mountPoint);
  }
  return out.sort();
}

function walk(dir: string, out: string[], onlyDirs: boolean): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      out.push(`${p}/`);
      walk(p, out, onlyDirs);
    } else if (!onlyDirs) {
      out.push(p);
    }
  }
}

/** The children of `parent`: pid, state letter and command name. */
export function childrenOf(parent: number): Array<{ pid: number; state: string; comm: string }> {
  const out: Array<{ pid: number; state: string; comm: string }> = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (Number(ppid) === parent) out.push({ pid: Number(name), state, comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

/** Pids (with their command, and "(zombie)" for one) whose parent is this process. */
export function childProcesses(): string[] {
  // Identity is pid and name; the state only marks a zombie (R and S flip from one
  // snapshot to the next, and must not make a running child look new).
  return childrenOf(process.pid)
    .map((c) => `${c.pid} ${c.comm}${c.state === 'Z' ? ' (zombie)' : ''}`)
    .sort();
}

/**
 * Processes other than `except` and this one whose command line or environment names
 * `dir` (a test's temp dir): CNI plugins, pause, container processes a runtime left.
 */
export function processesNaming(dir: string, except: number[]): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid || except.includes(Number(name))) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`);
      const environ = fs.readFileSync(`/proc/${name}/environ`);
      if (cmdline.includes(dir) || environ.includes(dir)) out.push(`${name} ${cmdline.toString().replace(/\0/g, ' ').trim()}`);
    } catch {
      // gone
    }
  }
  return out;
}

export function snapshot(scope: LeakScope): Snapshot {
  const files: string[] = [];
  for (const d of scope.dirs ?? []) walk(d, files, false);
  const cgroups: string[] = [];
  for (const d of scope.cgroupDirs ?? []) walk(d, cgroups, true);
  return {
    mounts: mountPoints(scope.mountPrefixes),
    files: files.sort(),
    cgroups: cgroups.sort(),
    children: childProcesses(),
  };
}

/** What `after` has that `before` did not, per kind; empty arrays mean no leak. */
export function diff(before: Snapshot, after: Snapshot): Snapshot {
  const added = (a: string[], b: string[]): string[] => b.filter((x) => !a.includes(x));
  return {
    mounts: added(before.mounts, after.mounts),
    files: added(before.files, after.files),
    cgroups: added(before.cgroups, after.cgroups),
    children: added(before.children, after.children),
  };
}

/**
 * Runs `body` and then asserts that it left nothing behind in `scope`, whether it passed or
 * threw. Children are given time to be reaped.
 */
export async function withoutLeaks<T>(scope: LeakScope, body: () => Promise<T>): Promise<T> {
  const before = snapshot(scope);
  let result: T;
  try {
    result = await body();
  } catch (e) {
    // The body's own failure comes first; leaks it caused are added to its message.
    const leaked = await settleAndDiff(before, scope);
    if (leaked && e instanceof Error) e.message += `\n(also leaked: ${leaked})`;
    throw e;
  }
  const leaked = await settleAndDiff(before, scope);
  if (leaked) throw new Error(`leaked: ${leaked}`);
  return result;
}

/**
 * Describes what the body left, or null. A new child of this process that has exited (a
 * zombie) was awaited but not yet reaped: its reaper (libuv's SIGCHLD handler, an exit
 * watcher of the addon) runs on this event loop, which a loaded machine may delay, so the
 * count waits until it is gone (15 s at most: then nobody reaps it, and it counts). A new
 * child still running is a leak at once: the body did not wait for it.
 */
async function settleAndDiff(before: Snapshot, scope: LeakScope): Promise<string | null> {
  let d = diff(before, snapshot(scope));
  for (let i = 0; i < 750 && d.children.some((c) => c.endsWith(' (zombie)')); i++) {
    await new Promise((r) => setTimeout(r, 20));
    d = diff(before, snapshot(scope));
  }
  const leaked = Object.entries(d).filter(([, v]) => (v as string[]).length > 0);
  return leaked.length > 0 ? JSON.stringify(Object.fromEntries(leaked)) : null;
}

/**
 * Runs `body` in a fresh temp dir, checking that it leaves no mount or file there (the
 * body's own error wins over the leak report), then detaches whatever is still mounted in
 * the dir and removes it.
 */
export async function inTempDir(prefix: string, body: (dir: string) => Promise<void>): Promise<void> {
  const { unmount } = await import('../../src/native/mounts');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    await withoutLeaks({ mountPrefixes: [dir], dirs: [dir] }, () => body(dir));
  } finally {
    const mounts = snapshot({ mountPrefixes: [dir] }).mounts.sort((a, b) => b.length - a.length);
    for (const m of mounts) await unmount(m, { detach: true });
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
