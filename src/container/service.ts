/**
 * Containers: CreateContainer as CRI-O does it (validate, name and id, reserve the name,
 * resolve the image, mount the overlay rootfs, generate and save the OCI spec, make the
 * cgroup, prepare the log FIFOs, create the process held before exec, persist, emit), each
 * step pushing its undo; then start, stop, remove, exec-sync, stats and restore.
 *
 * Stdio goes through FIFOs under the container's run dir, which the container opens
 * read-write: it is then a reader of its own output too, so a write never raises SIGPIPE
 * while the daemon is down, and a new daemon simply reopens the FIFOs and reads on from
 * where the pipe buffer stands. That is how containers and their logs outlive the daemon
 * with no helper process. Under nodecri-keeper, the keeper also holds a read end of each
 * FIFO (so the pipe and its buffer live on while no daemon runs) and records the exits of
 * containers that end while none does (src/linux/keeper.ts).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tty from 'node:tty';
import { promisify } from 'node:util';
import type { Config } from '../config';
import { CleanupStack } from '../domain/cleanup';
import type { Operations } from '../domain/operations';
import { objectIdPattern } from '../sandbox/service';
import type { PendingOp } from '../state/op-journal';
import { KeyedLock } from '../domain/keyed-lock';
import { RuntimeError, failedPrecondition, invalidArgument, notFound } from '../domain/errors';
import { nowNanos, type EventBus } from '../domain/events';
import { CpuRate } from '../domain/cpu-rate';
import { pathLengthError, quotePath, resourceError } from '../domain/limits';
import { IdIndex, containerName, newId } from '../domain/ids';
import { Registrar } from '../domain/registrar';
import type { ImageService } from '../image/service';
import type { CgroupManager, CgroupStats, Resources } from '../linux/cgroups';
import { cgroupProcsFiles } from '../linux/infra';
import type { ExitStatus, ProcessHandle } from '../native/process';
import type { Logger } from '../obs/logger';
import type { Metrics } from '../obs/metrics';
import type { SandboxRecord } from '../sandbox/model';
import type { SandboxService } from '../sandbox/service';
import { readJson, writeJsonAtomic } from '../state/atomic-file';
import type { GenerateInput, GeneratedContainer, ImageConfig } from '../oci/generate';
import type { OciSpec } from '../oci/types';
import { CriLogWriter } from './cri-log';
import { containerRecordVersion, type ContainerRecord } from './model';
import { containerProcessSpec, execProcessSpec, type StdioPlan } from './process-plan';
import type { ContainerSpec } from './spec';

/** The process and mount facilities a container needs (the addon, or fakes). */
export interface ContainerHost {
  cgroups: CgroupManager;
  mountOverlay(lowerDirs: string[], upperDir: string, workDir: string, target: string): Promise<void>;
  unmount(target: string): Promise<void>;
  mkfifo(path: string): Promise<void>;
  /** detaches every mount under a dir, then removes it (the orphan sweep's) */
  removeTree(dir: string): Promise<void>;
  createProcess: typeof import('../native/process').createProcess;
  startProcess: typeof import('../native/process').startProcess;
  execProcess: typeof import('../native/process').execProcess;
  signalProcess: typeof import('../native/process').signalProcess;
  releaseProcess: typeof import('../native/process').releaseProcess;
  refProcess: typeof import('../native/process').refProcess;
  reapStrays: typeof import('../native/process').reapStrays;
  untilExitReapingStrays: typeof import('../native/process').untilExitReapingStrays;
  adoptStarted: typeof import('../native/process').adoptStarted;
  processStartTime: typeof import('../native/process').processStartTime;
  unwatchAllExits: typeof import('../native/process').unwatchAllExits;
  dupFd: typeof import('../native/process').dupFd;
  keepAcrossExec: typeof import('../native/process').keepAcrossExec;
  generateSpec(input: GenerateInput): Promise<GeneratedContainer>;
  defaults: GenerateInput['defaults'];
}

/** The keeper above the daemon, when there is one (KeeperLink in src/linux/keeper.ts). */
export interface ContainerKeeper {
  hold(containerId: string, stream: 'stdout' | 'stderr', fd: number): void;
  drop(containerId: string): void;
  expect(pid: number, startTime: string): void;
  watch(pid: number, startTime: string): void;
  recordedExit(pid: number, startTime: string): Promise<ExitStatus | null>;
  exitOf(pid: number, startTime: string): Promise<ExitStatus>;
  record(pid: number, startTime: string, st: ExitStatus): Promise<void>;
  forget(pid: number, startTime: string): Promise<void>;
  isKeeperChild(pid: number, startTime: string): Promise<boolean>;
}

export interface ContainerServiceOptions {
  config: () => Config;
  log: Logger;
  events: EventBus;
  images: ImageService;
  sandboxes: SandboxService;
  host: ContainerHost;
  /** journals and fault points of CreateContainer, StartContainer and RemoveContainer */
  ops: Operations;
  /** counts log records dropped on write errors; null in tests without metrics */
  metrics?: Pick<Metrics, 'containerLogDroppedBytes'> | null;
  /** null: no keeper (a crash then loses the exits and FIFO buffers of that time) */
  keeper?: ContainerKeeper | null;
}

/** The live side of a container: its process, its log and the end of its exit handling. */
interface Live {
  handle: ProcessHandle | null;
  /** the keeper records this process's exit (it is the keeper's child, not ours) */
  keeperChild?: boolean;
  log: CriLogWriter | null;
  /** what reads the container's output (FIFO read ends, or the pty master) */
  readers: LogReader[];
  /** closes the daemon's ends of the stdio */
  closeStdio: () => void;
  /** settles once the exit is recorded */
  done: Promise<void> | null;
}

/** One stream of a container's output as the daemon reads it. */
interface LogReader {
  stream: 'stdout' | 'stderr';
  /** the fd the socket reads (it owns it) */
  fd: number;
  sock: net.Socket;
  /** a pty master rather than a FIFO */
  terminal: boolean;
}

/**
 * What a daemon image hands to the next one across its in-place re-exec: per running
 * container, the fds (kept open across the execve) of its FIFO read ends, so that the
 * pipes, and what is still unread in them, live on even if the container exits before the
 * new image has restored it.
 */
export interface ContainerHandoff {
  containers: Record<string, { stdout?: number; stderr?: number }>;
}

/** At most this much is read from one stream, synchronously, when a handoff stops reading. */
const handoffDrainLimit = 1024 * 1024;

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** ExecSync output beyond this is dropped (the stream is still drained). */
export const execOutputLimit = 16 * 1024 * 1024;
/** How long an exited container's log may still be drained by its grandchildren. */
const logDrainMs = 2000;

/** open(2) for a raw fd, off the event loop (a FIFO opened like this never blocks). */
const openFd = promisify(fs.open);
const closeFd = (fd: number) => fs.close(fd, () => {});

function imageConfigOf(raw: { config?: Record<string, unknown> } | undefined): ImageConfig {
  const c = (raw?.config ?? {}) as Record<string, unknown>;
  const arr = (v: unknown): string[] | null => (Array.isArray(v) ? (v as string[]) : null);
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return {
    user: str(c.User),
    env: arr(c.Env),
    entrypoint: arr(c.Entrypoint),
    cmd: arr(c.Cmd),
    workingDir: str(c.WorkingDir),
    stopSignal: str(c.StopSignal),
    volumes: c.Volumes && typeof c.Volumes === 'object' ? Object.keys(c.Volumes as object) : null,
    labels: (c.Labels as Record<string, string> | null) ?? null,
  };
}

/** Exit code as the CRI reports it: the code, or 128 + the signal number. */
function exitCodeOf(st: ExitStatus): number | null {
  if (st.exitCode !== null) return st.exitCode;
  if (st.signal !== null) return 128 + os.constants.signals[st.signal];
  return null;
}

export class ContainerService {
  private readonly records = new Map<string, ContainerRecord>();
  /** whether a container's cgroup has its v1 devices dir (see cgroupProcs) */
  private readonly hasDevicesCgroup = new Map<string, boolean>();
  private readonly index = new IdIndex();
  private readonly names = new Registrar();
  private readonly creating = new Map<string, Promise<string>>();
  private readonly live = new Map<string, Live>();
  private readonly specs = new Map<string, OciSpec>();
  private readonly cpuRate = new CpuRate();
  private readonly lock = new KeyedLock();
  /** exits being recorded right now: a handoff waits for them */
  private readonly recording = new Set<Promise<void>>();

  constructor(private readonly opts: ContainerServiceOptions) {
    opts.sandboxes.bindContainers({
      stopAll: async (sandboxId) => {
        await Promise.all(this.ofSandbox(sandboxId).map((c) => this.stop(c.id, 0)));
      },
      removeAll: async (sandboxId) => {
        await Promise.all(this.ofSandbox(sandboxId).map((c) => this.remove(c.id)));
      },
    });
  }

  private get config(): Config {
    return this.opts.config();
  }

  private get keeper(): ContainerKeeper | null {
    return this.opts.keeper ?? null;
  }

  private recordFile(stateDir: string): string {
    return path.join(stateDir, 'container.json');
  }

  private async persist(r: ContainerRecord): Promise<void> {
    await writeJsonAtomic(this.recordFile(r.stateDir), r);
  }

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(id, fn);
  }


  ofSandbox(sandboxId: string): ContainerRecord[] {
    return [...this.records.values()].filter((c) => c.sandboxId === sandboxId);
  }

  list(): ContainerRecord[] {
    return [...this.records.values()];
  }

  get(idOrPrefix: string): ContainerRecord | null {
    const id = this.index.resolve(idOrPrefix, 'container');
    return id ? (this.records.get(id) ?? null) : null;
  }

  mustGet(idOrPrefix: string): ContainerRecord {
    return this.records.get(this.index.mustResolve(idOrPrefix, 'container'))!;
  }

  /** The saved OCI spec of a container (config.json). */
  async spec(r: ContainerRecord): Promise<OciSpec> {
    const cached = this.specs.get(r.id);
    if (cached) return cached;
    const spec = await readJson<OciSpec>(path.join(r.stateDir, 'config.json'));
    if (!spec) throw failedPrecondition(`container ${r.id} has no config.json`);
    this.specs.set(r.id, spec);
    return spec;
  }

  // ------------------------------------------------------------------ create

  async create(sandboxIdOrPrefix: string, spec: ContainerSpec): Promise<string> {
    if (sandboxIdOrPrefix === '') throw invalidArgument('pod_sandbox_id is empty');
    const sandbox = this.opts.sandboxes.get(sandboxIdOrPrefix);
    if (!sandbox) throw notFound(`pod sandbox ${sandboxIdOrPrefix} not found`);
    if (sandbox.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready`);
    const logPath = this.logPathOf(sandbox, spec.logPath);

    const name = containerName(spec, sandbox.spec);
    const pending = this.creating.get(name);
    if (pending) return pending;
    const holder = this.names.get(name);
    if (holder) {
      const r = this.records.get(holder);
      if (r && r.state === 'CONTAINER_CREATED') return r.id;
      throw new RuntimeError('already-exists', `container name ${name} is reserved for ${holder}`);
    }
    const id = newId();
    const creation = this.build(id, name, sandbox, spec, logPath);
    this.creating.set(name, creation);
    try {
      return await creation;
    } finally {
      this.creating.delete(name);
    }
  }

  /** The absolute log path: CRI's log_path is relative to the pod's log directory. */
  private logPathOf(sandbox: SandboxRecord, logPath: string): string | null {
    if (logPath === '') return null;
    if (path.isAbsolute(logPath)) throw invalidArgument(`config.log_path ${JSON.stringify(logPath)} must be relative to the pod's log directory`);
    if (sandbox.spec.logDirectory === '') throw invalidArgument(`config.log_path ${JSON.stringify(logPath)} is relative but the pod has no log directory`);
    const full = path.resolve(sandbox.spec.logDirectory, logPath);
    if (!full.startsWith(`${sandbox.spec.logDirectory.replace(/\/$/, '')}/`)) {
      throw invalidArgument(`config.log_path ${quotePath(logPath)} leaves the pod's log directory`);
    }
    const tooLong = pathLengthError(full);
    if (tooLong !== null) throw invalidArgument(`config.log_path ${quotePath(logPath)}: the log file ${quotePath(full)} ${tooLong}`);
    return full;
  }

  private async build(id: string, name: string, sandbox: SandboxRecord, want: ContainerSpec, logPath: string | null): Promise<string> {
    const log = this.opts.log.child({ containerId: id, container: `${sandbox.spec.namespace}/${sandbox.spec.name}/${want.name}` });
    // The journal comes first: a failure to open it leaves nothing to undo.
    const cleanup = new CleanupStack(log, await this.opts.ops.begin('CreateContainer', id));
    try {
      this.names.reserve(name, id);
      cleanup.push(`name ${name}`, () => this.names.release(name));
      const imageRef = want.image.image;
      const image = await this.opts.images.status(imageRef);
      if (!image) throw notFound(`image ${imageRef} is not present: pull it first`);

      const stateDir = path.join(this.config.root, 'containers', id);
      const runDir = path.join(this.config.runroot, 'containers', id);
      await cleanup.record({ kind: 'tree', path: stateDir });
      await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
      await cleanup.record({ kind: 'tree', path: runDir });
      await fsp.mkdir(runDir, { recursive: true, mode: 0o711 });

      // The overlay rootfs from the image's layers.
      await cleanup.record({ kind: 'rootfs', containerId: id });
      const dirs = await this.opts.images.prepareRootfs(image.id, id);
      const rootfs = path.join(runDir, 'rootfs');
      await fsp.mkdir(rootfs, { mode: 0o755 });
      await cleanup.record({ kind: 'mount', path: rootfs }, () => this.opts.host.unmount(rootfs));
      await this.opts.host.mountOverlay(dirs.lowerDirs, dirs.upperDir, dirs.workDir, rootfs);

      // The OCI spec, saved as config.json as CRI-O does.
      const target = want.namespaces.pid === 'TARGET' ? want.namespaces.targetId : '';
      const targetPid = target ? this.targetPid(target) : null;
      const generated = await this.opts.host.generateSpec({
        containerId: id,
        spec: want,
        imageName: imageRef,
        imageConfig: imageConfigOf(image.config as { config?: Record<string, unknown> }),
        rootfs,
        sandbox,
        logPath,
        podPidNamespace: sandbox.infra ? `/proc/${sandbox.infra.pid}/ns/pid` : null,
        targetPid,
        defaults: this.opts.host.defaults,
        mountInfo: null,
      });
      const spec = generated.spec;
      await writeJsonAtomic(path.join(stateDir, 'config.json'), spec);

      // The container's cgroup under the pod's, with its device rules enforced before any
      // process joins it. The undo goes first: a create that fails half-way (a device
      // program the kernel refuses) leaves its directories, and remove takes missing ones.
      const cgroupPath = spec.linux.cgroupsPath;
      await cleanup.record({ kind: 'cgroup', path: cgroupPath }, () => this.opts.host.cgroups.remove(cgroupPath));
      await this.opts.host.cgroups.create(cgroupPath, generated.resources).catch(throwAsResourceError);

      const record: ContainerRecord = {
        version: containerRecordVersion,
        id,
        name,
        sandboxId: sandbox.id,
        spec: want,
        image: { id: image.id, ref: image.repoDigests[0] ?? image.id, name: imageRef },
        state: 'CONTAINER_CREATED',
        createdAt: nowNanos(),
        startedAt: '0',
        finishedAt: '0',
        exitCode: 0,
        reason: '',
        message: '',
        stateDir,
        runDir,
        rootfs,
        upperDir: dirs.upperDir,
        logPath: logPath ?? '',
        cgroupPath,
        resources: generated.resources,
        stopSignal: generated.stopSignal.name,
        pid: null,
        pidStartTime: null,
      };

      // The process, created and held before exec until StartContainer.
      this.hasDevicesCgroup.set(id, true); // made by cgroups.create above
      cleanup.push(`devices cgroup note of ${id}`, () => void this.hasDevicesCgroup.delete(id));
      await this.makeProcess(record, spec, cleanup);
      // The record is the commit point (see SandboxService.create).
      cleanup.point();
      await this.persist(record);
      this.records.set(id, record);
      this.specs.set(id, spec);
      this.index.add(id);
      await cleanup.commit();
      this.opts.events.publish({ containerId: id, type: 'CONTAINER_CREATED_EVENT', createdAt: record.createdAt, sandboxId: sandbox.id });
      log.info({ image: imageRef }, `Created container ${id}: ${name}`);
      return id;
    } catch (e) {
      await cleanup.unwind();
      throw e;
    }
  }

  /**
   * The cgroup.procs files a process of the container joins. A container made by a nodecri
   * that did not yet manage the v1 devices hierarchy (then upgraded in place) has no dir
   * there: its processes skip it, as its init did, instead of failing every exec. Looked at
   * once per container, and never for one this daemon made.
   */
  private async cgroupProcs(r: ContainerRecord): Promise<string[]> {
    const files = cgroupProcsFiles(this.opts.host.cgroups, r.cgroupPath);
    const devices = this.opts.host.cgroups.paths(r.cgroupPath).devices;
    if (devices === undefined) return files;
    let has = this.hasDevicesCgroup.get(r.id);
    if (has === undefined) {
      has = await fsp.access(devices).then(() => true, () => false);
      this.hasDevicesCgroup.set(r.id, has);
      if (!has) this.opts.log.warn({ containerId: r.id }, `container ${r.id} has no devices cgroup (made before device enforcement): its device rules are not enforced`);
    }
    return has ? files : files.filter((f) => path.dirname(f) !== devices);
  }

  private targetPid(target: string): number {
    const t = this.get(target);
    if (!t || t.state !== 'CONTAINER_RUNNING' || t.pid === null) throw failedPrecondition(`target container ${target} is not running`);
    return t.pid;
  }

  /** The container's log writer: drops are counted per container and warned about. */
  private logWriter(r: ContainerRecord): CriLogWriter {
    const log = this.opts.log.child({ containerId: r.id });
    return new CriLogWriter(r.logPath, {
      onDropped: (d) => this.opts.metrics?.containerLogDroppedBytes.inc({ container_id: r.id }, d.textBytes),
      warn: (fields, message) => log.warn(fields, message),
    });
  }

  /**
   * Makes the stdio (FIFOs for pipes, a pty for a terminal), the log writer and the
   * process held before exec. Registers the undos on `cleanup`.
   */
  private async makeProcess(record: ContainerRecord, spec: OciSpec, cleanup: CleanupStack): Promise<void> {
    const isTty = spec.process.terminal;
    const stdinWanted = record.spec.stdin;
    const fifo = (n: string) => path.join(record.runDir, n);
    const toClose: number[] = [];
    const containerEnds: number[] = [];
    let stdio: StdioPlan = { stdin: 'null', stdout: 'null', stderr: 'null' };
    const readers: Array<{ stream: 'stdout' | 'stderr'; fd: number }> = [];
    const closeContainerEnds = () => {
      for (const fd of containerEnds.splice(0)) closeFd(fd);
    };
    if (!isTty) {
      try {
        for (const s of ['stdout', 'stderr'] as const) {
          await this.opts.host.mkfifo(fifo(s)).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
          });
          // Ours: read side, non-blocking for libuv. Theirs: read-write (see the file comment).
          const ours = await openFd(fifo(s), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
          toClose.push(ours);
          readers.push({ stream: s, fd: ours });
          this.keeper?.hold(record.id, s, ours);
          containerEnds.push(await openFd(fifo(s), fs.constants.O_RDWR));
        }
      } catch (e) {
        closeContainerEnds();
        for (const fd of toClose) closeFd(fd);
        this.keeper?.drop(record.id);
        throw e;
      }
      stdio = { stdin: stdinWanted ? 'pipe' : 'null', stdout: { fd: containerEnds[0] }, stderr: { fd: containerEnds[1] } };
    }
    let handle: ProcessHandle;
    try {
      const cgroups = this.opts.host.cgroups;
      const view = { mode: cgroups.mode, paths: cgroups.paths(record.cgroupPath) };
      handle = await this.opts.host.createProcess(containerProcessSpec(spec, await this.cgroupProcs(record), stdio, view));
    } catch (e) {
      closeContainerEnds();
      for (const fd of toClose) closeFd(fd);
      this.keeper?.drop(record.id);
      throw e;
    } finally {
      closeContainerEnds();
    }
    cleanup.push(`process ${handle.pid}`, async () => {
      this.opts.host.signalProcess(handle, 'SIGKILL');
      await this.opts.host.releaseProcess(handle);
    });
    for (const w of handle.warnings) this.opts.log.warn({ containerId: record.id }, `container process: ${w}`);

    // The log: FIFO readers (or the pty master) into the CRI log file.
    let logWriter: CriLogWriter | null = null;
    const logReaders: LogReader[] = [];
    if (record.logPath !== '') {
      await fsp.mkdir(path.dirname(record.logPath), { recursive: true });
      logWriter = this.logWriter(record);
      await logWriter.openFile();
    }
    if (isTty && handle.terminal !== null) logReaders.push(attachReader(logWriter, 'stdout', handle.terminal, true));
    for (const r of readers) logReaders.push(attachReader(logWriter, r.stream, r.fd, false));
    const closeStdio = () => {
      for (const r of logReaders) r.sock.destroy();
      if (handle.stdin !== null) fs.close(handle.stdin, () => {});
    };
    cleanup.push(`stdio of ${record.id}`, async () => {
      closeStdio();
      this.keeper?.drop(record.id);
      await logWriter?.close();
    });
    record.pid = handle.pid;
    record.pidStartTime = await this.opts.host.processStartTime(handle.pid);
    this.live.set(record.id, { handle, log: logWriter, readers: logReaders, closeStdio, done: null });
    cleanup.push(`live state of ${record.id}`, () => void this.live.delete(record.id));
  }

  // ------------------------------------------------------------------ start

  async start(idOrPrefix: string): Promise<void> {
    const r = this.mustGet(idOrPrefix);
    await this.locked(r.id, async () => {
      if (r.state !== 'CONTAINER_CREATED') throw failedPrecondition(`container ${r.id} is ${r.state.replace('CONTAINER_', '').toLowerCase()}, not created`);
      // A crash before the RUNNING record is on disk leaves a process no client was told
      // about: the journal's undo kills what runs in the container's cgroup (it stays CREATED).
      const journal = await this.opts.ops.begin('StartContainer', r.id);
      try {
        await journal.append({ kind: 'cgroup', path: r.cgroupPath, keep: true });
        journal.point();
        let live = this.live.get(r.id);
        if (!live?.handle) {
          // Created by a daemon that is gone: its held process went with it; make it again.
          const cleanup = new CleanupStack(this.opts.log);
          await this.makeProcess(r, await this.spec(r), cleanup).catch(async (e: unknown) => {
            await cleanup.unwind();
            throw e;
          });
          await cleanup.commit();
          live = this.live.get(r.id)!;
          journal.point();
        }
        const handle = live.handle!;
        // Registered before it runs: from then on, were this daemon to die, the keeper (whose
        // child it becomes) writes its exit down.
        const [pid, startTime] = [r.pid, r.pidStartTime];
        if (pid !== null && startTime !== null) this.keeper?.watch(pid, startTime);
      try {
          await this.opts.host.startProcess(handle);
          journal.point();
        } catch (e) {
          if (pid !== null && startTime !== null) void this.keeper?.forget(pid, startTime).catch(() => {});
          r.state = 'CONTAINER_EXITED';
          r.exitCode = 128;
          r.reason = 'StartError';
          r.message = (e as Error).message;
          r.finishedAt = nowNanos();
          r.pid = null;
          live.closeStdio();
          this.keeper?.drop(r.id);
          await live.log?.close();
          await this.opts.host.releaseProcess(handle).catch(() => {});
          this.live.delete(r.id);
          await this.persist(r);
          this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STOPPED_EVENT', createdAt: r.finishedAt, sandboxId: r.sandboxId });
          throw new RuntimeError('unknown', `start container ${r.id}: ${(e as Error).message}`, { cause: e });
        }
        this.opts.host.refProcess(handle, false);
        r.state = 'CONTAINER_RUNNING';
        r.startedAt = nowNanos();
        await this.persist(r);
        journal.point();
        live.done = this.watchExit(r, live);
        this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STARTED_EVENT', createdAt: r.startedAt, sandboxId: r.sandboxId });
      } finally {
        // Once this settles the client knows the outcome; only a crash leaves the journal.
        await journal.finish();
      }
      journal.point();
    });
  }

  /**
   * Records the exit once the process is reaped (by us, or by the keeper when it is the
   * keeper's child; `known` when that happened before this daemon started) and its log
   * drained.
   */
  private async watchExit(r: ContainerRecord, live: Live, known: ExitStatus | null = null): Promise<void> {
    const keeper = this.keeper;
    const pid = r.pid;
    const startTime = r.pidStartTime;
    const keyed = keeper !== null && pid !== null && startTime !== null;
    let st = known ?? (await live.handle!.exited);
    // Not our child: the pidfd said it exited; the keeper writes down how, then reaps it.
    if (keyed && known === null && live.keeperChild && exitCodeOf(st) === null) st = await keeper.exitOf(pid, startTime);
    // From here the exit is ours alone (the kernel has handed it over): a handoff must wait
    // for it to be on disk, or it would be lost.
    let done!: () => void;
    const recording = new Promise<void>((res) => (done = res));
    this.recording.add(recording);
    try {
      if (keyed && known === null && exitCodeOf(st) === null) st = (await keeper.recordedExit(pid, startTime)) ?? st;
      // Ours: written down at once, so that a crash while the log drains keeps it.
      else if (keyed && known === null && !live.keeperChild) {
        await keeper.record(pid, startTime, st).catch((e: unknown) => this.opts.log.warn({ err: e, containerId: r.id }, 'cannot write the exit record'));
      }
      await this.recordExit(r, live, st);
      if (keyed) await keeper.forget(pid, startTime).catch(() => {});
    } finally {
      this.recording.delete(recording);
      done();
    }
  }

  private async recordExit(r: ContainerRecord, live: Live, st: ExitStatus): Promise<void> {
    if (live.log) {
      await Promise.race([live.log.ended, new Promise((res) => setTimeout(res, logDrainMs).unref())]);
      live.closeStdio();
      await live.log.close();
    } else {
      live.closeStdio();
    }
    this.keeper?.drop(r.id);
    const code = exitCodeOf(st);
    const stats = await this.opts.host.cgroups.stats(r.cgroupPath).catch(() => null);
    r.state = 'CONTAINER_EXITED';
    r.finishedAt = nowNanos();
    r.pid = null;
    if (code === null) {
      r.exitCode = 255;
      r.reason = 'ContainerStatusUnknown';
      r.message = 'the container exited while nodecri was not its parent, so its exit code is unknown';
    } else {
      r.exitCode = code;
      r.reason = (stats?.oomKillCount ?? 0) > 0 ? 'OOMKilled' : code === 0 ? 'Completed' : 'Error';
      r.message = '';
    }
    if (live.handle) await this.opts.host.releaseProcess(live.handle).catch(() => {});
    live.handle = null;
    await this.persist(r).catch((e: unknown) => this.opts.log.error({ err: e, containerId: r.id }, 'cannot persist the exit'));
    this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STOPPED_EVENT', createdAt: r.finishedAt, sandboxId: r.sandboxId });
  }

  // ------------------------------------------------------------------ stop, remove

  /**
   * Sends the stop signal, then SIGKILL after `timeoutSeconds` (at once for 0), and waits
   * for the exit to be recorded. Idempotent.
   */
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    const r = this.get(idOrPrefix);
    if (!r) throw notFound(`container ${idOrPrefix} not found`);
    const live = this.live.get(r.id);
    if (r.state === 'CONTAINER_CREATED' && live?.handle) {
      // Never started: it will never run; its process goes now.
      await this.locked(r.id, async () => {
        if (r.state !== 'CONTAINER_CREATED') return;
        live.closeStdio();
        this.keeper?.drop(r.id);
        await live.log?.close();
        await this.opts.host.releaseProcess(live.handle!).catch(() => {});
        this.live.delete(r.id);
        r.state = 'CONTAINER_EXITED';
        r.finishedAt = nowNanos();
        r.reason = 'Error';
        r.message = 'stopped before it was started';
        r.exitCode = 0;
        r.pid = null;
        await this.persist(r);
      });
      return;
    }
    if (r.state !== 'CONTAINER_RUNNING' || !live?.handle || !live.done) {
      await live?.done;
      return;
    }
    const handle = live.handle;
    const signal = (name: string) => {
      try {
        this.opts.host.signalProcess(handle, name as NodeJS.Signals);
      } catch {
        // already exited
      }
    };
    if (timeoutSeconds > 0) {
      signal(r.stopSignal);
      const exited = await Promise.race([
        live.done.then(() => true),
        new Promise<boolean>((res) => setTimeout(() => res(false), timeoutSeconds * 1000).unref()),
      ]);
      if (exited) return;
    }
    signal('SIGKILL');
    // A container's init finishes dying only once every process of its PID namespace is
    // reaped. Exec processes are our children, each watched by the pidfd its clone made (a
    // released handle keeps watching until it has reaped); a stray nothing watches (its
    // intermediate was killed before passing it, or its watcher was lost across a
    // re-exec) is reaped here, or this would wait forever.
    await this.opts.host.untilExitReapingStrays(handle, live.done);
  }

  /** Kills if running, then removes everything but the log. Unknown id is fine. */
  async remove(idOrPrefix: string): Promise<void> {
    const r = this.get(idOrPrefix);
    if (!r) return;
    // Rolled forward after a crash: the next start finishes the removal.
    await this.opts.ops.teardown('RemoveContainer', r.id, async (step) => {
      if (r.state === 'CONTAINER_RUNNING' || r.state === 'CONTAINER_CREATED') await this.stop(r.id, 0);
      await this.locked(r.id, () => this.removeLocked(r, step));
    });
  }

  private async removeLocked(r: ContainerRecord, step: () => void): Promise<void> {
    if (!this.records.has(r.id)) return;
    step();
    // Exec'd processes and anything else left in the cgroup go with it.
    await this.opts.host.cgroups.killAll(r.cgroupPath).catch(() => {});
    await this.opts.host.cgroups.remove(r.cgroupPath);
    step();
    await this.opts.host.unmount(r.rootfs);
    step();
    await this.opts.images.releaseRootfs(r.id);
    step();
    await fsp.rm(r.runDir, { recursive: true, force: true });
    step();
    // The record goes last: until then a restart finds the container and finishes this.
    await fsp.rm(r.stateDir, { recursive: true, force: true });
    step();
    this.records.delete(r.id);
    this.hasDevicesCgroup.delete(r.id);
    this.specs.delete(r.id);
    this.index.delete(r.id);
    this.names.release(r.name);
    this.cpuRate.forget(r.id);
    this.live.delete(r.id);
    // The series goes with the container, so that its label set stays bounded.
    this.opts.metrics?.containerLogDroppedBytes.remove({ container_id: r.id });
    this.keeper?.drop(r.id);
    this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_DELETED_EVENT', createdAt: nowNanos(), sandboxId: r.sandboxId });
  }

  // ------------------------------------------------------------------ exec

  /**
   * Runs `cmd` in the running container as its process runs (user, caps, seccomp, env),
   * collecting up to 16 MiB of each stream. A timeout kills the exec and is an error.
   */
  async execSync(idOrPrefix: string, cmd: string[], timeoutSeconds: number, signal: AbortSignal | null): Promise<ExecSyncResult> {
    const r = this.mustGet(idOrPrefix);
    if (cmd.length === 0) throw invalidArgument('cmd is empty');
    const live = this.live.get(r.id);
    if (r.state !== 'CONTAINER_RUNNING' || !live?.handle) throw failedPrecondition(`container ${r.id} is not running`);
    const spec = await this.spec(r);
    const handle = await this.opts.host.execProcess(
      live.handle,
      execProcessSpec(spec, cmd, await this.cgroupProcs(r), { stdin: 'null', stdout: 'pipe', stderr: 'pipe' }, false),
    );
    const collect = (fd: number | null): Promise<Buffer> =>
      new Promise((resolve) => {
        if (fd === null) return resolve(Buffer.alloc(0));
        const chunks: Buffer[] = [];
        let size = 0;
        const sock = new net.Socket({ fd, readable: true, writable: false });
        sock.on('data', (c: Buffer) => {
          if (size < execOutputLimit) {
            chunks.push(c.subarray(0, execOutputLimit - size));
            size += c.length;
          }
        });
        sock.once('close', () => resolve(Buffer.concat(chunks)));
        sock.once('error', () => resolve(Buffer.concat(chunks)));
      });
    const outputs = Promise.all([collect(handle.stdout), collect(handle.stderr)]);
    let timedOut = false;
    const kill = () => {
      try {
        this.opts.host.signalProcess(handle, 'SIGKILL');
      } catch {
        // gone
      }
    };
    const timer = timeoutSeconds > 0 ? setTimeout(() => ((timedOut = true), kill()), timeoutSeconds * 1000) : null;
    signal?.addEventListener('abort', kill, { once: true });
    const st = await handle.exited;
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', kill);
    // Children of the exec may hold its pipes: do not wait for them beyond a moment.
    const [stdout, stderr] = await Promise.race([outputs, new Promise<[Buffer, Buffer]>((res) => setTimeout(() => res([Buffer.alloc(0), Buffer.alloc(0)]), 1000).unref())]);
    await this.opts.host.releaseProcess(handle).catch(() => {});
    if (timedOut) {
      throw new RuntimeError('deadline-exceeded', `command ${JSON.stringify(cmd)} in container ${r.id} timed out after ${timeoutSeconds}s`);
    }
    return { stdout, stderr, exitCode: exitCodeOf(st) ?? 255 };
  }

  // ------------------------------------------------------------------ update, stats, logs

  async updateResources(idOrPrefix: string, resources: Resources | null): Promise<void> {
    const r = this.mustGet(idOrPrefix);
    if (r.state === 'CONTAINER_EXITED') throw failedPrecondition(`container ${r.id} has exited`);
    await this.locked(r.id, async () => {
      if (resources) await this.opts.host.cgroups.update(r.cgroupPath, resources).catch(throwAsResourceError);
      r.resources = resources;
      await this.persist(r);
    });
  }

  async reopenLog(idOrPrefix: string): Promise<void> {
    const r = this.mustGet(idOrPrefix);
    const live = this.live.get(r.id);
    if (r.state !== 'CONTAINER_RUNNING' || !live) throw failedPrecondition(`container ${r.id} is not running`);
    await live.log?.reopen();
  }

  async stats(r: ContainerRecord): Promise<{ timestamp: string; cgroup: CgroupStats | null; nanoCores: bigint | null; writable: { bytes: bigint; inodes: bigint } | null }> {
    const timestamp = nowNanos();
    const cgroup = r.state === 'CONTAINER_RUNNING' ? await this.opts.host.cgroups.stats(r.cgroupPath).catch(() => null) : null;
    const nanoCores = cgroup?.cpuUsageNanos != null ? this.cpuRate.sample(r.id, cgroup.cpuUsageNanos, BigInt(timestamp)) : null;
    const writable = r.upperDir ? await diskUsage(r.upperDir).catch(() => null) : null;
    return { timestamp, cgroup, nanoCores, writable };
  }

  // ------------------------------------------------------------------ recovery

  /**
   * Before restore: an operation a crash interrupted. A CreateContainer whose record is on
   * disk is complete; a StartContainer whose record says it left CREATED is too. Any other
   * is undone from its journal, last step first (a start's undo kills what runs in the
   * container's cgroup: the container stays CREATED and can be started again).
   */
  async rollBack(p: PendingOp): Promise<{ committed: boolean; failed: string[] }> {
    const r = await readJson<ContainerRecord>(path.join(this.config.root, 'containers', p.header.id, 'container.json')).catch(() => null);
    const committed = p.header.op === 'CreateContainer' ? r !== null : r === null || r.state !== 'CONTAINER_CREATED';
    if (committed) {
      await fsp.rm(p.file, { force: true });
      return { committed: true, failed: [] };
    }
    return { committed: false, failed: await this.opts.ops.replay(p) };
  }

  /** After restore: a removal a crash interrupted is finished. */
  async rollForward(p: PendingOp): Promise<void> {
    if (p.header.op === 'RemoveContainer') await this.remove(p.header.id);
    await fsp.rm(p.file, { force: true });
  }

  /**
   * After recovery: container dirs with no record (run dirs with their rootfs mount,
   * state dirs, writable layers) and container cgroups under a known pod's cgroup that no
   * record names go, and are logged.
   */
  async sweepOrphans(): Promise<string[]> {
    const cfg = this.config;
    const removed: string[] = [];
    const known = (id: string) => this.records.has(id);
    for (const base of [path.join(cfg.runroot, 'containers'), path.join(cfg.root, 'containers')]) {
      for (const n of await fsp.readdir(base).catch(() => [] as string[])) {
        if (!objectIdPattern.test(n) || known(n)) continue;
        await this.opts.host.removeTree(path.join(base, n)).then(
          () => removed.push(`dir ${path.join(base, n)}`),
          (e: unknown) => this.opts.log.error({ err: e, containerId: n }, 'cannot remove an orphaned container dir'),
        );
      }
    }
    for (const n of await this.opts.images.rootfsOwners().catch(() => [] as string[])) {
      if (!objectIdPattern.test(n) || known(n)) continue;
      await this.opts.images.releaseRootfs(n).then(
        () => removed.push(`rootfs of container ${n}`),
        (e: unknown) => this.opts.log.error({ err: e, containerId: n }, 'cannot remove an orphaned container rootfs'),
      );
    }
    const cgroups = this.opts.host.cgroups;
    for (const sandbox of this.opts.sandboxes.list()) {
      const names = new Set<string>();
      for (const dir of new Set(Object.values(cgroups.paths(sandbox.cgroup.path)))) {
        for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) names.add(e.name);
      }
      for (const n of names) {
        const m = /^nodecri-(infra-)?([0-9a-f]{64})$/.exec(n);
        if (!m) continue;
        const owner = m[1] ? this.opts.sandboxes.get(m[2]) : this.records.get(m[2]);
        const inUse = m[1] ? owner !== null && (owner as SandboxRecord).infra !== null : owner !== undefined;
        if (inUse) continue;
        const p = path.posix.join(sandbox.cgroup.path, n);
        await this.opts.ops.undo({ kind: 'cgroup', path: p }).then(
          () => removed.push(`cgroup ${p}`),
          (e: unknown) => this.opts.log.error({ err: e, cgroup: p }, 'cannot remove an orphaned container cgroup'),
        );
      }
    }
    return removed;
  }

  // ------------------------------------------------------------------ restore

  /**
   * After a restart: every record is loaded; a running container whose process is still
   * there (same pid and start time) is adopted and its log FIFOs read on; one that is gone
   * is EXITED with its exit unknown.
   */
  async restore(handoff: ContainerHandoff | null = null): Promise<void> {
    const handed = new Map(Object.entries(handoff?.containers ?? {}));
    const dir = path.join(this.config.root, 'containers');
    let ids: string[] = [];
    try {
      ids = await fsp.readdir(dir);
    } catch {
      // no containers yet
    }
    for (const id of ids) {
      const r = await readJson<ContainerRecord>(path.join(dir, id, 'container.json')).catch(() => null);
      if (!r) continue;
      // A record of an older format (version 1 kept the CRI config, not the spec) is not
      // read: no node runs one. It is skipped with a line saying so, not restored half-way.
      if (r.version !== containerRecordVersion || !r.spec) {
        this.opts.log.error({ containerId: id, version: r.version }, `container record ${id} has format ${r.version}, not ${containerRecordVersion}: not restored`);
        continue;
      }
      this.records.set(r.id, r);
      this.index.add(r.id);
      this.names.reserve(r.name, r.id);
      const fds = handed.get(r.id) ?? {};
      handed.delete(r.id);
      if (r.state === 'CONTAINER_RUNNING') {
        if (r.pid !== null && r.pidStartTime !== null) this.keeper?.expect(r.pid, r.pidStartTime);
        await this.adopt(r, fds);
      } else {
        closeHanded(fds);
        if (r.state === 'CONTAINER_CREATED') await this.reapHeld(r);
      }
    }
    for (const fds of handed.values()) closeHanded(fds);
    // Exec processes were watched by the image before a re-exec, and nothing watches them
    // now: one that is a zombie already would hold its PID namespace's init forever. Once
    // every container (and, before, every pod's pause) is watched again, whatever zombie of
    // ours is left in a container's namespace is such a stray.
    let strays = 0;
    for (const live of this.live.values()) if (live.handle) strays += this.opts.host.reapStrays(live.handle);
    if (strays > 0) this.opts.log.warn({ strays }, 'reaped exec processes nothing watched');
    this.opts.log.info({ containers: this.records.size, handedOver: handoff !== null }, 'containers restored');
  }

  /**
   * A created container's held process died with the daemon that held it (it waits on a
   * socket that closed). If it was our child (a re-exec), reap it; StartContainer makes
   * the process again.
   */
  private async reapHeld(r: ContainerRecord): Promise<void> {
    const h = r.pid === null ? null : await this.opts.host.adoptStarted(r.pid, r.pidStartTime);
    if (h) {
      this.opts.host.refProcess(h, false);
      void h.exited.then(() => this.opts.host.releaseProcess(h)).catch(() => {});
    }
    r.pid = null;
    r.pidStartTime = null;
  }

  private async adopt(r: ContainerRecord, handed: ContainerHandoff['containers'][string]): Promise<void> {
    // Asked before the pidfd is opened: a keeper's child stays one until the keeper reaps it.
    const keeperChild = this.keeper !== null && r.pid !== null && r.pidStartTime !== null && (await this.keeper.isKeeperChild(r.pid, r.pidStartTime));
    const handle = r.pid === null ? null : await this.opts.host.adoptStarted(r.pid, r.pidStartTime);
    // Gone while no daemon ran: the keeper wrote its exit down before it reaped it.
    const recorded = !handle && this.keeper && r.pid !== null && r.pidStartTime !== null ? await this.keeper.recordedExit(r.pid, r.pidStartTime) : null;
    if (!handle && !recorded) {
      closeHanded(handed);
      r.state = 'CONTAINER_EXITED';
      r.finishedAt = nowNanos();
      r.exitCode = 255;
      r.reason = 'ContainerStatusUnknown';
      r.message = 'the container exited while nodecri was down, so its exit code is unknown';
      r.pid = null;
      await this.persist(r);
      return;
    }
    if (handle) this.opts.host.refProcess(handle, false);
    let log: CriLogWriter | null = null;
    const readers: LogReader[] = [];
    if (r.logPath !== '') {
      log = this.logWriter(r);
      await log.openFile();
    }
    for (const s of ['stdout', 'stderr'] as const) {
      const p = path.join(r.runDir, s);
      // The previous image's read end, kept open across its execve, when it is this FIFO;
      // else the FIFO opened again (after a crash the pipe lived on in the container's end).
      const fd = (await takeHandedFifo(handed[s], p)) ?? (await openFd(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK).catch(() => null));
      if (fd === null) continue;
      // The same pipe as before (the container, or the keeper, kept it open): the keeper
      // holds it again, for the next crash.
      this.keeper?.hold(r.id, s, fd);
      readers.push(attachReader(log, s, fd, false));
    }
    const live: Live = { handle, keeperChild, log, readers, closeStdio: () => readers.forEach((x) => x.sock.destroy()), done: null };
    this.live.set(r.id, live);
    live.done = this.watchExit(r, live, recorded);
  }

  /**
   * Before the daemon re-execs itself (containers stay children of the same pid). First,
   * with the exit watchers still running, every exit already reaped is written down. Then,
   * in one synchronous step, exit watching stops without reaping anything more (an exit from
   * now on stays a zombie for the new image to reap, with its real status) and every log
   * stream stops being read: what the pipe holds now is read into the log, its unterminated
   * line goes out as a P record (the next image reads on from the pipe and closes the line),
   * and the read end is kept open across the execve, so that bytes still unread stay in the
   * pipe even if the container exits before the new image has restored it. Last the records
   * are written out; nothing can reap or read while that is awaited.
   *
   * Returns what the new image's restore() takes; the caller must execve without ever
   * starting exit watching or log reading again.
   */
  async prepareHandoff(): Promise<ContainerHandoff> {
    while (this.recording.size > 0) await Promise.all([...this.recording]);
    // From here to the return of stopReading, nothing is awaited.
    this.opts.host.unwatchAllExits();
    const handoff: ContainerHandoff = { containers: {} };
    for (const [id, live] of this.live) {
      if (!live.handle) continue;
      const fds = this.stopReading(id, live);
      if (Object.keys(fds).length > 0) handoff.containers[id] = fds;
    }
    await Promise.all([...this.live.values()].map((l) => l.log?.drain()));
    return handoff;
  }

  /** The synchronous part of a handoff for one container's log; returns the fds kept. */
  private stopReading(id: string, live: Live): ContainerHandoff['containers'][string] {
    const kept: ContainerHandoff['containers'][string] = {};
    const chunk = Buffer.allocUnsafe(64 * 1024);
    for (const r of live.readers.splice(0)) {
      r.sock.removeAllListeners('data');
      r.sock.removeAllListeners('end');
      r.sock.removeAllListeners('error');
      r.sock.on('error', () => {});
      // The socket reads in flowing mode, so nothing is buffered above the kernel: what it
      // has not read is still in the pipe. Read what is there now (bounded: a busy writer
      // refills it; the rest stays in the pipe for the next image).
      let taken = 0;
      while (taken < handoffDrainLimit) {
        let n: number;
        try {
          n = fs.readSync(r.fd, chunk, 0, chunk.length, null);
        } catch {
          break; // EAGAIN: empty now; EIO: a pty whose slave is closed
        }
        if (n === 0) break;
        taken += n;
        live.log?.take(r.stream, Buffer.from(chunk.subarray(0, n)));
      }
      if (!r.terminal) {
        try {
          const fd = this.opts.host.dupFd(r.fd);
          this.opts.host.keepAcrossExec([fd]);
          kept[r.stream] = fd;
        } catch (e) {
          this.opts.log.warn({ err: e, containerId: id }, 'cannot keep a log FIFO open across the re-exec; the next image opens it again');
        }
      }
      r.sock.destroy();
    }
    live.log?.flushPartialsAsP();
    return kept;
  }
}

/** A reader of one stream into the log (or into nothing, when the container has no log). */
function attachReader(log: CriLogWriter | null, stream: 'stdout' | 'stderr', fd: number, terminal: boolean): LogReader {
  // A pty master is a TTY to libuv, which net.Socket refuses; its reads end in EIO once the
  // last slave is closed, which the log writer takes as the end.
  const sock = terminal ? new tty.ReadStream(fd) : new net.Socket({ fd, readable: true, writable: false });
  if (log) log.attach(stream, sock);
  else sock.resume();
  return { stream, fd, sock, terminal };
}

const fstat = promisify(fs.fstat);
const stat = promisify(fs.stat);

/**
 * A FIFO read end the previous image handed over (already close-on-exec again), if it is
 * the FIFO at `fifoPath` (same device and inode). Anything else is closed.
 */
async function takeHandedFifo(fd: number | undefined, fifoPath: string): Promise<number | null> {
  if (fd === undefined) return null;
  try {
    const [a, b] = await Promise.all([fstat(fd), stat(fifoPath)]);
    if (a.isFIFO() && a.dev === b.dev && a.ino === b.ino) return fd;
  } catch {
    // not an open fd, or the FIFO is gone
  }
  closeFd(fd);
  return null;
}

function closeHanded(fds: ContainerHandoff['containers'][string]): void {
  for (const fd of Object.values(fds)) if (typeof fd === 'number') closeFd(fd);
}

/** A container's resources are ContainerConfig.linux.resources (UpdateContainerResources: linux). */
function throwAsResourceError(e: unknown): never {
  throw resourceError(e, 'linux.resources');
}

/** Bytes and inodes under a directory (the writable layer), without blocking the loop. */
async function diskUsage(dir: string): Promise<{ bytes: bigint; inodes: bigint }> {
  let bytes = 0n;
  let inodes = 0n;
  const walk = async (d: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = await fsp.lstat(p, { bigint: true });
      inodes++;
      bytes += st.blocks * 512n;
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { bytes, inodes };
}
