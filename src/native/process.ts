/**
 * Container processes: create (clone into new namespaces, build the rootfs, stop before
 * exec), start (exec), exec into a running container, signal, exit watching, and the
 * handoff of live processes across a daemon re-exec.
 *
 * Specs are flat and fully resolved: every property is set, optional ones are `T | null`.
 * Names (capabilities, rlimits, mount options) are turned into numbers here, before the
 * addon sees them; the addon turns the result into one flat plan before the clone.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import { Writable } from 'node:stream';
import { Semaphore } from '../util/semaphore';
import { nativeFunction } from './binding';
import { SyscallError } from './errors';
import { CLONE, NAMESPACE_FLAGS, NamespaceType, S_IF, capabilityMask, parseMountOptions, propagationFlags, rlimitNumber } from './process-spec';

// ------------------------------------------------------------------ public types

interface MountSpec {
  destination: string;
  /** "bind" for bind mounts (or a bind/rbind option), else the filesystem type */
  type: string | null;
  /** host path for binds; filesystem source otherwise */
  source: string | null;
  /** OCI options: ro, nosuid, nodev, noexec, bind, rbind, rprivate, ... and fs data (mode=755) */
  options: string[];
}

export interface NamespaceSpec {
  type: NamespaceType;
  /** join the namespace at this path; null = create a new one */
  path: string | null;
}

interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

interface DeviceSpec {
  path: string;
  type: 'c' | 'b' | 'p' | 'u';
  major: number;
  minor: number;
  fileMode: number | null;
  uid: number | null;
  gid: number | null;
  /** a host node to bind when mknod is refused (in a user namespace), or null */
  hostPath: string | null;
}

interface SymlinkSpec {
  /** inside the container */
  path: string;
  target: string;
}

interface CapabilitySets {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

interface RlimitSpec {
  /** "RLIMIT_NOFILE" */
  type: string;
  soft: number | bigint;
  hard: number | bigint;
}

interface SeccompArgSpec {
  index: number;
  value: number | bigint;
  valueTwo: number | bigint;
  op: string;
}

interface SeccompRuleSpec {
  names: string[];
  action: string;
  errnoRet: number | null;
  args: SeccompArgSpec[];
}

/** The OCI `linux.seccomp` shape (listener fields unsupported). */
export interface SeccompSpec {
  defaultAction: string;
  defaultErrnoRet: number | null;
  architectures: string[];
  flags: string[];
  syscalls: SeccompRuleSpec[];
}

/** 'pipe': a pipe whose parent end is returned; 'null': /dev/null; {fd}: a caller-owned fd. */
export type StdioSpec = 'pipe' | 'null' | { fd: number };

/** What runs, as whom, with which privileges: shared by create and exec. */
export interface ProcessIdentity {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  umask: number | null;
  capabilities: CapabilitySets | null;
  noNewPrivileges: boolean;
  rlimits: RlimitSpec[];
  oomScoreAdj: number | null;
  seccomp: SeccompSpec | null;
  /** cgroup.procs files to join (any hierarchy, v1 or v2) */
  cgroupProcs: string[];
  /** a pty: its master comes back as `terminal`, stdin/stdout/stderr are then ignored */
  terminal: boolean;
  stdin: StdioSpec;
  stdout: StdioSpec;
  stderr: StdioSpec;
}

export interface ProcessSpec extends ProcessIdentity {
  /** host path of the container's root filesystem */
  rootfs: string;
  rootReadonly: boolean;
  /** rootfs propagation (OCI linux.rootfsPropagation); null = rprivate */
  rootPropagation: string | null;
  namespaces: NamespaceSpec[];
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** in order */
  mounts: MountSpec[];
  /** device nodes made after the mounts (the caller's, defaults included: none are added) */
  devices: DeviceSpec[];
  /** symlinks made after the devices (an existing file at the path is left) */
  symlinks: SymlinkSpec[];
  hostname: string | null;
  domainname: string | null;
  maskedPaths: string[];
  readonlyPaths: string[];
  sysctls: Record<string, string>;
}

export type ExecSpec = ProcessIdentity;

/**
 * A spec that asks for nothing beyond running `args` as root in `rootfs`: no namespaces,
 * mounts, capabilities or limits. Callers spread their own settings over it, so every
 * property is still set once and in one place.
 */
export function baseProcessSpec(rootfs: string, args: string[]): ProcessSpec {
  return {
    rootfs,
    rootReadonly: false,
    rootPropagation: null,
    namespaces: [],
    uidMappings: [],
    gidMappings: [],
    mounts: [],
    devices: [],
    symlinks: [],
    hostname: null,
    domainname: null,
    maskedPaths: [],
    readonlyPaths: [],
    sysctls: {},
    args,
    env: [],
    cwd: '/',
    uid: 0,
    gid: 0,
    additionalGids: [],
    umask: null,
    capabilities: null,
    noNewPrivileges: false,
    rlimits: [],
    oomScoreAdj: null,
    seccomp: null,
    cgroupProcs: [],
    terminal: false,
    stdin: 'null',
    stdout: 'null',
    stderr: 'null',
  };
}

export interface ExitStatus {
  /** exit code when the process exited, else null */
  exitCode: number | null;
  /** the killing signal's name, else null; both null when the status is unknowable */
  signal: NodeJS.Signals | null;
}

declare const processBrand: unique symbol;

/** A live container or exec process. Fds are numbers: wrap them in net.Socket / streams. */
export interface ProcessHandle {
  readonly [processBrand]: true;
  readonly pid: number;
  /** owned by the handle: closed by releaseProcess() */
  readonly pidfd: number;
  /** parent ends of stdio pipes (owned by the caller once returned), or null */
  readonly stdin: number | null;
  readonly stdout: number | null;
  readonly stderr: number | null;
  /** pty master when terminal, or null (owned by the caller) */
  readonly terminal: number | null;
  /** degraded settings, e.g. an oom_score_adj clamped to 0 */
  readonly warnings: string[];
  /** settles once, when the process is reaped; never rejects */
  readonly exited: Promise<ExitStatus>;
}

/** What a new daemon image needs to adopt a process (see handoffProcess). */
interface AdoptRecord {
  pid: number;
  pidfd: number | null;
  stdin: number | null;
  stdout: number | null;
  stderr: number | null;
  terminal: number | null;
}

// ------------------------------------------------------------------ native surface

interface NativeCreated {
  pid: number;
  pidfd: number;
  seed: number;
  stdin: number | null;
  stdout: number | null;
  stderr: number | null;
  terminal: number | null;
  warnings: string[];
}

interface NativeExit {
  exitCode: number | null;
  signal: number | null;
}

interface NativeSpec {
  rootfs: string | null;
  rootReadonly: boolean;
  rootPropagation: number;
  newNamespaces: number;
  joinNamespaces: { path: string; type: number }[];
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  mounts: {
    destination: string;
    source: string | null;
    type: string | null;
    data: string | null;
    bind: boolean;
    flags: number;
    remount: number;
    propagation: number;
  }[];
  devices: { path: string; hostPath: string | null; mode: number; uid: number; gid: number; major: number; minor: number }[];
  symlinks: { target: string; path: string }[];
  sysctls: { key: string; value: string }[];
  maskedPaths: string[];
  readonlyPaths: string[];
  hostname: string | null;
  domainname: string | null;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  umask: number | null;
  capabilities: { bounding: bigint; effective: bigint; permitted: bigint; inheritable: bigint; ambient: bigint } | null;
  noNewPrivileges: boolean;
  rlimits: { resource: number; soft: bigint; hard: bigint }[];
  oomScoreAdj: number | null;
  seccomp: {
    defaultAction: string;
    defaultErrnoRet: number | null;
    architectures: string[];
    flags: string[];
    syscalls: { names: string[]; action: string; errnoRet: number | null; args: { index: number; value: bigint; valueTwo: bigint; op: string }[] }[];
  } | null;
  cgroupProcs: string[];
  terminal: boolean;
  stdio: [number, number, number];
  target: { pid: number; pidfd: number } | null;
}

const nCreate = nativeFunction<(spec: NativeSpec) => Promise<NativeCreated>>('processCreate');
const nStart = nativeFunction<(seed: number) => Promise<void>>('processStart');
const nAbort = nativeFunction<(seed: number) => Promise<void>>('processAbort');
const nSignal = nativeFunction<(pidfd: number, sig: number) => void>('processSignal');
const nWatchExit = nativeFunction<(pidfd: number, cb: (e: NativeExit) => void, ref: boolean) => number>('processWatchExit');
const nUnwatchExit = nativeFunction<(id: number) => void>('processUnwatchExit');
const nRefExit = nativeFunction<(id: number, ref: boolean) => void>('processRefExit');
const nReapStrays = nativeFunction<(pidfd: number) => number>('processReapStrays');
const nPidfdOpen = nativeFunction<(pid: number) => number>('processPidfdOpen');
const nPidfdPid = nativeFunction<(pidfd: number) => number>('processPidfdPid');
const nKeepAcrossExec = nativeFunction<(fds: number[], keep: boolean) => void>('processKeepAcrossExec');
const nDupFd = nativeFunction<(fd: number) => number>('processDupFd');
const nPtyResize = nativeFunction<(fd: number, cols: number, rows: number) => void>('processPtyResize');
const nDupNonBlocking = nativeFunction<(fd: number) => number>('processDupNonBlocking');
const nWriteSome = nativeFunction<(fd: number, data: Buffer) => number>('processWriteSome');
const nWatchWritable = nativeFunction<(fd: number, cb: (hungUp: boolean) => void) => number>('processWatchWritable');
const nUnwatchWritable = nativeFunction<(id: number) => void>('processUnwatchWritable');

// ------------------------------------------------------------------ translation

const STDIO_PIPE = -1;
const STDIO_NULL = -2;

function stdioNumber(s: StdioSpec): number {
  if (s === 'pipe') return STDIO_PIPE;
  if (s === 'null') return STDIO_NULL;
  return s.fd;
}

function big(v: number | bigint): bigint {
  if (typeof v === 'bigint') return v;
  // RLIM_INFINITY and friends do not fit a double exactly: accept -1 / Infinity as "all ones".
  if (v === Infinity || v < 0) return 0xffffffffffffffffn;
  return BigInt(v);
}

function identityToNative(
  p: ProcessIdentity,
): Omit<
  NativeSpec,
  | 'rootfs'
  | 'rootReadonly'
  | 'rootPropagation'
  | 'newNamespaces'
  | 'joinNamespaces'
  | 'uidMappings'
  | 'gidMappings'
  | 'mounts'
  | 'devices'
  | 'symlinks'
  | 'sysctls'
  | 'maskedPaths'
  | 'readonlyPaths'
  | 'hostname'
  | 'domainname'
  | 'target'
> {
  if (p.args.length === 0) throw new Error('process args must not be empty');
  return {
    args: p.args,
    env: p.env,
    cwd: p.cwd,
    uid: p.uid,
    gid: p.gid,
    additionalGids: p.additionalGids,
    umask: p.umask,
    capabilities: p.capabilities && {
      bounding: capabilityMask(p.capabilities.bounding),
      effective: capabilityMask(p.capabilities.effective),
      permitted: capabilityMask(p.capabilities.permitted),
      inheritable: capabilityMask(p.capabilities.inheritable),
      ambient: capabilityMask(p.capabilities.ambient),
    },
    noNewPrivileges: p.noNewPrivileges,
    rlimits: p.rlimits.map((r) => ({ resource: rlimitNumber(r.type), soft: big(r.soft), hard: big(r.hard) })),
    oomScoreAdj: p.oomScoreAdj,
    seccomp: p.seccomp && {
      defaultAction: p.seccomp.defaultAction,
      defaultErrnoRet: p.seccomp.defaultErrnoRet,
      architectures: p.seccomp.architectures,
      flags: p.seccomp.flags,
      syscalls: p.seccomp.syscalls.map((s) => ({
        names: s.names,
        action: s.action,
        errnoRet: s.errnoRet,
        args: s.args.map((a) => ({ index: a.index, value: big(a.value), valueTwo: big(a.valueTwo), op: a.op })),
      })),
    },
    cgroupProcs: p.cgroupProcs,
    terminal: p.terminal,
    stdio: [stdioNumber(p.stdin), stdioNumber(p.stdout), stdioNumber(p.stderr)],
  };
}

/** Exported for unit tests: the numeric spec the addon receives. */
function toNativeSpec(spec: ProcessSpec): NativeSpec {
  let newNamespaces = 0;
  const joinNamespaces: { path: string; type: number }[] = [];
  for (const ns of spec.namespaces) {
    const flag = NAMESPACE_FLAGS[ns.type];
    if (flag === undefined) throw new Error(`unknown namespace type ${ns.type}`);
    if (ns.path === null) newNamespaces |= flag;
    else joinNamespaces.push({ path: ns.path, type: flag });
  }
  if (!(newNamespaces & CLONE.NEWNS)) throw new Error('a container needs a new mount namespace');

  const mounts = spec.mounts.map((m) => {
    const o = parseMountOptions(m.options, m.type);
    return {
      destination: m.destination,
      source: m.source,
      type: o.bind ? null : m.type,
      data: o.data,
      bind: o.bind,
      flags: o.flags,
      remount: o.remount,
      propagation: o.propagation,
    };
  });

  const devices: NativeSpec['devices'] = spec.devices.map((d) => ({
    path: d.path,
    hostPath: d.hostPath,
    mode: S_IF[d.type] | (d.fileMode ?? 0o666),
    uid: d.uid ?? 0,
    gid: d.gid ?? 0,
    major: d.major,
    minor: d.minor,
  }));
  const symlinks: NativeSpec['symlinks'] = spec.symlinks.map((l) => ({ target: l.target, path: l.path }));

  return {
    rootfs: spec.rootfs,
    rootReadonly: spec.rootReadonly,
    rootPropagation: spec.rootPropagation === null ? 0 : propagationFlags(spec.rootPropagation),
    newNamespaces,
    joinNamespaces,
    uidMappings: spec.uidMappings,
    gidMappings: spec.gidMappings,
    mounts,
    devices,
    symlinks,
    sysctls: Object.entries(spec.sysctls).map(([key, value]) => ({ key, value })),
    maskedPaths: spec.maskedPaths,
    readonlyPaths: spec.readonlyPaths,
    hostname: spec.hostname,
    domainname: spec.domainname,
    ...identityToNative(spec),
    target: null,
  };
}

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function toExitStatus(e: NativeExit): ExitStatus {
  return { exitCode: e.exitCode, signal: e.signal === null ? null : (signalNames.get(e.signal) ?? null) };
}

// ------------------------------------------------------------------ handles

interface HandleState {
  watchId: number | null;
  seed: number | null;
  released: boolean;
}

const states = new WeakMap<ProcessHandle, HandleState>();
/** The handles whose exit is being watched now (for unwatchAllExits). */
const watching = new Set<HandleState>();

function state(h: ProcessHandle): HandleState {
  const s = states.get(h);
  if (!s) throw new Error('not a process handle');
  return s;
}

function makeHandle(
  fields: { pid: number; pidfd: number; stdin: number | null; stdout: number | null; stderr: number | null; terminal: number | null; warnings: string[] },
  seed: number | null,
): ProcessHandle {
  const st: HandleState = { watchId: null, seed, released: false };
  let resolveExit!: (e: ExitStatus) => void;
  const exited = new Promise<ExitStatus>((r) => (resolveExit = r));
  const h = { ...fields, exited } as unknown as ProcessHandle;
  st.watchId = nWatchExit(
    fields.pidfd,
    (e) => {
      st.watchId = null;
      watching.delete(st);
      resolveExit(toExitStatus(e));
    },
    true,
  );
  watching.add(st);
  states.set(h, st);
  return h;
}

/**
 * At most this many creates run at once. Each holds a libuv pool thread while the kernel
 * builds namespaces and the child sets up its rootfs (milliseconds of mostly kernel CPU).
 * Leaving pool threads for fs/DNS (Rule 7) and one CPU for the event loop matters on
 * small machines: with a non-preemptible kernel (PREEMPT_NONE), creates on every CPU
 * stall the JS thread for tens of milliseconds.
 */
const maxConcurrentCreates = Math.max(1, Math.min(2, os.availableParallelism() - 1));

/**
 * Exec sessions (ExecSync probes) wait in a queue of their own: behind a burst of creates
 * they would stall kubelet's probes; an exec's setup joins namespaces and makes none, so
 * a few at once cost little.
 */
const maxConcurrentExecs = 4;

const creates = new Semaphore(maxConcurrentCreates);
const execs = new Semaphore(maxConcurrentExecs);

/**
 * Creates a container process: it is fully set up (namespaces, rootfs, identity, seccomp)
 * and blocked before exec until startProcess(). A setup failure rejects with a
 * SyscallError naming the step and path (e.g. ENOENT "change to working directory" for a missing cwd),
 * and leaves nothing behind. A program that cannot be exec'd is not a setup failure: the
 * start fails (as runc's lookup does when containerd starts a container).
 */
export async function createProcess(spec: ProcessSpec): Promise<ProcessHandle> {
  const native = toNativeSpec(spec);
  const c = await creates.run(() => nCreate(native));
  return makeHandle(c, c.seed);
}

/**
 * Lets a created process exec. Resolves once it has exec'd; rejects if exec failed or the
 * program was not found (ENOENT or EACCES "find executable", naming args[0]).
 */
export async function startProcess(h: ProcessHandle): Promise<void> {
  const st = state(h);
  if (st.seed === null) throw new Error(`process ${h.pid} was already started`);
  const seed = st.seed;
  st.seed = null;
  try {
    await nStart(seed);
  } catch (e) {
    // Its exec failed (or it never got the start byte): it is gone or going. Make sure,
    // and wait until the exit watcher has reaped it, so that no caller's release closes
    // the pidfd of a zombie nobody will ever wait for.
    try {
      nSignal(h.pidfd, os.constants.signals.SIGKILL);
    } catch {
      // already exited
    }
    await h.exited;
    throw e;
  }
}

/** Runs a new process inside a running container's namespaces (and the given cgroups). */
export async function execProcess(target: ProcessHandle | { pid: number; pidfd: number }, spec: ExecSpec): Promise<ProcessHandle> {
  const native: NativeSpec = {
    rootfs: null,
    rootReadonly: false,
    rootPropagation: 0,
    newNamespaces: 0,
    joinNamespaces: [],
    uidMappings: [],
    gidMappings: [],
    mounts: [],
    devices: [],
    symlinks: [],
    sysctls: [],
    maskedPaths: [],
    readonlyPaths: [],
    hostname: null,
    domainname: null,
    ...identityToNative(spec),
    target: { pid: target.pid, pidfd: target.pidfd },
  };
  const c = await execs.run(() => nCreate(native));
  const h = makeHandle(c, c.seed);
  try {
    await startProcess(h);
  } catch (e) {
    // exec failed: the child has exited; reap it and close what the caller never saw.
    await releaseProcess(h);
    for (const fd of [h.stdin, h.stdout, h.stderr, h.terminal]) if (fd !== null) fs.closeSync(fd);
    throw e;
  }
  return h;
}

/** pidfd_send_signal. Throws ESRCH once the process has been reaped. */
export function signalProcess(h: ProcessHandle | number, signal: NodeJS.Signals | number): void {
  const pidfd = typeof h === 'number' ? h : h.pidfd;
  const n = typeof signal === 'number' ? signal : os.constants.signals[signal];
  if (n === undefined) throw new Error(`unknown signal ${String(signal)}`);
  nSignal(pidfd, n);
}

/**
 * Frees the handle: a created-but-not-started process is released (it exits without
 * exec), and the pidfd is closed once the process is reaped (at once when it already
 * was). Stdio fds are the caller's.
 */
export async function releaseProcess(h: ProcessHandle): Promise<void> {
  const st = state(h);
  if (st.released) return;
  st.released = true;
  if (st.seed !== null) {
    const seed = st.seed;
    st.seed = null;
    await nAbort(seed);
    // The child exits on its own (status 0): reap it through the watcher before closing.
    await h.exited;
  }
  if (st.watchId !== null) {
    // Still running: it stays our child until someone reaps it, and nobody but its watcher
    // will. The watcher stays (no longer holding the loop) and the pidfd is closed once it
    // has reaped: a released process never becomes a zombie.
    nRefExit(st.watchId, false);
    void h.exited.then(() => {
      try {
        fs.closeSync(h.pidfd);
      } catch {
        // closed already: an EBADF here must not become an unhandled rejection
      }
    });
    return;
  }
  fs.closeSync(h.pidfd);
}

/**
 * Reaps the strays of `h`'s PID namespace (when it has its own): zombie children of ours
 * that nothing watches, e.g. an exec child whose intermediate was killed before it passed
 * the child's pidfd. While one is unreaped, the namespace's init cannot finish its exit.
 * Returns how many were reaped; 0 for a released handle.
 */
export function reapStrays(h: ProcessHandle): number {
  const st = states.get(h);
  if (!st || st.released) return 0;
  try {
    return nReapStrays(h.pidfd);
  } catch {
    return 0;
  }
}

/** The first sweep after a kill waits this long, the next ones twice as long each, to 5 s. */
const straySweepFirstMs = 250;
const straySweepMaxMs = 5000;

/**
 * Waits for `until` (the exit of `h`, killed, being recorded), reaping the strays of its PID
 * namespace meanwhile: at once, then after growing pauses while it has not settled. A
 * stray gives no event of its own that we could wait for (it is nobody's to watch), so
 * this polls, but only while a kill has not finished, which strays alone make last.
 */
export async function untilExitReapingStrays<T>(h: ProcessHandle, until: Promise<T>): Promise<T> {
  let settled = false;
  const done = until.then(
    () => void (settled = true),
    () => void (settled = true),
  );
  reapStrays(h);
  for (let ms = straySweepFirstMs; !settled; ms = Math.min(ms * 2, straySweepMaxMs)) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((res) => (timer = setTimeout(res, ms)))]);
    clearTimeout(timer);
    if (!settled) reapStrays(h);
  }
  return until;
}

function unwatch(st: HandleState): void {
  if (st.watchId === null) return;
  nUnwatchExit(st.watchId);
  st.watchId = null;
  watching.delete(st);
}

/** Whether a live exit watcher keeps the event loop alive (default: yes). */
export function refProcess(h: ProcessHandle, ref: boolean): void {
  const st = state(h);
  if (st.watchId !== null) nRefExit(st.watchId, ref);
}

// ------------------------------------------------------------------ handoff

/** Clears (keep = true) or sets FD_CLOEXEC, so that fds survive the daemon's own execve. */
export function keepAcrossExec(fds: number[], keep = true): void {
  nKeepAcrossExec(fds, keep);
}

/** Every fd the handle holds (pidfd first). */
function processFds(h: ProcessHandle): number[] {
  return [h.pidfd, h.stdin, h.stdout, h.stderr, h.terminal].filter((fd): fd is number => fd !== null);
}

/**
 * Prepares a started process for a daemon re-exec: stops watching its exit here (the
 * `exited` promise of this handle then never settles), keeps its fds open across execve,
 * and returns what the new image passes to adoptProcess().
 */
export function handoffProcess(h: ProcessHandle): AdoptRecord & { pidfd: number } {
  const st = state(h);
  if (st.seed !== null) throw new Error(`process ${h.pid} is not started; start or release it before a handoff`);
  unwatch(st);
  st.released = true;
  keepAcrossExec(processFds(h));
  return { pid: h.pid, pidfd: h.pidfd, stdin: h.stdin, stdout: h.stdout, stderr: h.stderr, terminal: h.terminal };
}

/**
 * For the daemon's re-exec: stops every exit watch at once, synchronously, reaping nothing.
 * Each process stays our unreaped child (a zombie once it exits), so the new image, which
 * has the same pid, reaps it with its real status. The handles' `exited` promises never
 * settle afterwards. Returns how many watches were stopped.
 */
export function unwatchAllExits(): number {
  const n = watching.size;
  for (const st of [...watching]) unwatch(st);
  return n;
}

/**
 * Re-adopts a running process (after a daemon re-exec, or from a dup'ed pidfd): opens a
 * pidfd if none is given (safe for our own unreaped children: their pid cannot be reused),
 * checks that it names `pid`, marks the fds close-on-exec again and watches the exit.
 */
export function adoptProcess(r: AdoptRecord): ProcessHandle {
  const pidfd = r.pidfd ?? nPidfdOpen(r.pid);
  const actual = nPidfdPid(pidfd);
  if (actual !== r.pid) throw new Error(`pidfd ${pidfd} refers to pid ${actual}, not ${r.pid}`);
  const fds = [pidfd, r.stdin, r.stdout, r.stderr, r.terminal].filter((fd): fd is number => fd !== null);
  keepAcrossExec(fds, false);
  return makeHandle({ pid: r.pid, pidfd, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal, warnings: [] }, null);
}

/** A process's start time (clock ticks since boot): with the pid, it names one process. */
export async function processStartTime(pid: number): Promise<string | null> {
  try {
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Re-adopts a process after a daemon restart, when it may no longer be our child: only if
 * `pid` still names the process that started at `startTime` (recorded when it was made),
 * so that a reused pid is never watched, let alone signalled. The pidfd is opened before
 * the start time is read: a match then proves the pidfd holds that same process (it had
 * the pid since before the open). Null when it is gone, or nothing was recorded.
 */
export async function adoptStarted(pid: number, startTime: string | null): Promise<ProcessHandle | null> {
  if (startTime === null) return null;
  let pidfd: number;
  try {
    pidfd = nPidfdOpen(pid);
  } catch {
    return null;
  }
  try {
    if ((await processStartTime(pid)) === startTime) return adoptProcess({ pid, pidfd, stdin: null, stdout: null, stderr: null, terminal: null });
  } catch {
    // exited between the open and the check: its pidfd no longer names the pid
  }
  fs.closeSync(pidfd);
  return null;
}

/** F_DUPFD_CLOEXEC. */
export function dupFd(fd: number): number {
  return nDupFd(fd);
}

// ------------------------------------------------------------------ terminals

/** TIOCSWINSZ on a pty master: the process behind it gets SIGWINCH. */
export function resizeTerminal(master: number, size: { width: number; height: number }): void {
  nPtyResize(master, size.width, size.height);
}

/** A terminalWriter's stream, with how often it woke to write (what the tests bound). */
export interface TerminalWriter extends Writable {
  /** wake-ups of the writable watch or the back-off timer so far */
  readonly wakes: number;
}

/** The back-off between wakes that make no progress (a canonical-mode master, below). */
const TERMINAL_RETRY_FIRST_MS = 5;
const TERMINAL_RETRY_MAX_MS = 100;

/**
 * A stream that writes to a pty master (the stdin of a terminal) from the loop without ever
 * blocking it. libuv cannot: it reopens a slave to get a non-blocking fd, but a master it
 * writes with blocking write(2)s, which would stall the daemon once the terminal's input
 * buffer is full (a process that reads no stdin). This writes a non-blocking dup of the
 * master (O_NONBLOCK is then set on the open file the master's reader shares, which a
 * libuv reader handles) and waits for EPOLLOUT between partial writes, so backpressure
 * reaches the writer as with any stream. The dup is closed when the stream ends or is
 * destroyed; the master stays the caller's.
 *
 * Two wakes take nothing. Once every fd of the slave side is closed the master takes what
 * fits in its buffer, then EAGAIN for good while epoll reports the hang-up on every wait:
 * a hung-up wake that makes no progress fails the write with EIO ("terminal hung up").
 * In canonical mode a master whose line is full reports POLLOUT while it takes nothing
 * until the kernel's worker discards the overflowing line: after a wake without progress
 * the watch is re-armed through a timer (5 ms doubling to 100 ms), not at once, so that
 * wait costs a few wakes, not a busy loop.
 */
export function terminalWriter(master: number): TerminalWriter {
  const fd = nDupNonBlocking(master);
  let watch: number | null = null;
  let retry: NodeJS.Timeout | null = null;
  let retryMs = TERMINAL_RETRY_FIRST_MS;
  let wakes = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (watch !== null) nUnwatchWritable(watch);
    watch = null;
    if (retry !== null) clearTimeout(retry);
    retry = null;
    fs.close(fd, () => {});
  };
  const writer = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      let offset = 0;
      // woke: called by the watch (hungUp as it saw it), not by write()
      const step = (woke: boolean, hungUp: boolean): void => {
        watch = null;
        if (closed) return;
        if (woke) wakes++;
        const before = offset;
        try {
          while (offset < chunk.length) {
            const n = nWriteSome(fd, offset === 0 ? chunk : chunk.subarray(offset));
            if (n === 0) break;
            offset += n;
          }
        } catch (e) {
          callback(e as Error);
          return;
        }
        if (offset === chunk.length) {
          callback();
          return;
        }
        const arm = () => {
          retry = null;
          if (!closed) watch = nWatchWritable(fd, (h) => step(true, h));
        };
        if (!woke || offset > before) {
          retryMs = TERMINAL_RETRY_FIRST_MS;
          arm();
        } else if (hungUp) {
          callback(new SyscallError('terminal hung up', 'EIO', 5, 'write', String(fd), 'write to terminal'));
        } else {
          retry = setTimeout(arm, retryMs);
          retryMs = Math.min(retryMs * 2, TERMINAL_RETRY_MAX_MS);
        }
      };
      step(false, false);
    },
    final(callback) {
      close();
      callback();
    },
    destroy(err, callback) {
      close();
      callback(err);
    },
  });
  return Object.defineProperty(writer, 'wakes', { get: () => wakes, enumerable: true }) as TerminalWriter;
}
