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
 * with no helper process.
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
import { KeyedLock } from '../domain/keyed-lock';
import { RuntimeError, failedPrecondition, invalidArgument, notFound } from '../domain/errors';
import { nowNanos, type EventBus } from '../domain/events';
import { CpuRate } from '../domain/cpu-rate';
import { IdIndex, containerName, newId } from '../domain/ids';
import { Registrar } from '../domain/registrar';
import type { ContainerConfig__Output } from '../cri/generated/runtime/v1/ContainerConfig';
import type { ImageService } from '../image/service';
import type { CgroupManager, CgroupStats, Resources } from '../linux/cgroups';
import { cgroupProcsFiles } from '../linux/infra';
import type { ExitStatus, ProcessHandle } from '../native/process';
import type { Logger } from '../obs/logger';
import type { SandboxRecord } from '../sandbox/model';
import type { SandboxService } from '../sandbox/service';
import { readJson, writeJsonAtomic } from '../state/atomic-file';
import type { GenerateInput, GeneratedContainer, ImageConfig } from '../oci/generate';
import type { OciSpec } from '../oci/types';
import { CriLogWriter } from './cri-log';
import type { ContainerRecord } from './model';
import { containerProcessSpec, execProcessSpec, type StdioPlan } from './process-plan';

/** The process and mount facilities a container needs (the addon, or fakes). */
export interface ContainerHost {
  cgroups: CgroupManager;
  mountOverlay(lowerDirs: string[], upperDir: string, workDir: string, target: string): Promise<void>;
  unmount(target: string): Promise<void>;
  mkfifo(path: string): Promise<void>;
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
  generateSpec(input: GenerateInput): Promise<GeneratedContainer>;
  defaults: GenerateInput['defaults'];
}

export interface ContainerServiceOptions {
  config: () => Config;
  log: Logger;
  events: EventBus;
  images: ImageService;
  sandboxes: SandboxService;
  host: ContainerHost;
}

/** The live side of a container: its process, its log and the end of its exit handling. */
interface Live {
  handle: ProcessHandle | null;
  log: CriLogWriter | null;
  /** closes the daemon's ends of the stdio */
  closeStdio: () => void;
  /** settles once the exit is recorded */
  done: Promise<void> | null;
}

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

  async create(sandboxIdOrPrefix: string, config: ContainerConfig__Output | null): Promise<string> {
    if (!config) throw invalidArgument('config is missing');
    if (!config.metadata || config.metadata.name === '') throw invalidArgument('config.metadata.name is empty');
    if (!config.image || config.image.image === '') throw invalidArgument('config.image.image is empty');
    if (sandboxIdOrPrefix === '') throw invalidArgument('pod_sandbox_id is empty');
    const sandbox = this.opts.sandboxes.get(sandboxIdOrPrefix);
    if (!sandbox) throw notFound(`pod sandbox ${sandboxIdOrPrefix} not found`);
    if (sandbox.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready`);
    const logPath = this.logPathOf(sandbox, config.log_path);

    const name = containerName(config.metadata, sandbox.spec);
    const pending = this.creating.get(name);
    if (pending) return pending;
    const holder = this.names.get(name);
    if (holder) {
      const r = this.records.get(holder);
      if (r && r.state === 'CONTAINER_CREATED') return r.id;
      throw new RuntimeError('already-exists', `container name ${name} is reserved for ${holder}`);
    }
    const id = newId();
    const creation = this.build(id, name, sandbox, config, logPath);
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
      throw invalidArgument(`config.log_path ${JSON.stringify(logPath)} leaves the pod's log directory`);
    }
    return full;
  }

  private async build(id: string, name: string, sandbox: SandboxRecord, config: ContainerConfig__Output, logPath: string | null): Promise<string> {
    const log = this.opts.log.child({ containerId: id, container: `${sandbox.spec.namespace}/${sandbox.spec.name}/${config.metadata!.name}` });
    const cleanup = new CleanupStack(log);
    this.names.reserve(name, id);
    cleanup.push(`name ${name}`, () => this.names.release(name));
    try {
      const imageRef = config.image!.image;
      const image = await this.opts.images.status(imageRef);
      if (!image) throw notFound(`image ${imageRef} is not present: pull it first`);

      const stateDir = path.join(this.config.root, 'containers', id);
      const runDir = path.join(this.config.runroot, 'containers', id);
      await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
      cleanup.push(`state dir ${stateDir}`, () => fsp.rm(stateDir, { recursive: true, force: true }));
      await fsp.mkdir(runDir, { recursive: true, mode: 0o711 });
      cleanup.push(`run dir ${runDir}`, () => fsp.rm(runDir, { recursive: true, force: true }));

      // The overlay rootfs from the image's layers.
      const dirs = await this.opts.images.prepareRootfs(image.id, id);
      cleanup.push(`rootfs dirs of ${id}`, () => this.opts.images.releaseRootfs(id));
      const rootfs = path.join(runDir, 'rootfs');
      await fsp.mkdir(rootfs, { mode: 0o755 });
      await this.opts.host.mountOverlay(dirs.lowerDirs, dirs.upperDir, dirs.workDir, rootfs);
      cleanup.push(`rootfs mount ${rootfs}`, () => this.opts.host.unmount(rootfs));

      // The OCI spec, saved as config.json as CRI-O does.
      const target = config.linux?.security_context?.namespace_options?.pid === 'TARGET' ? config.linux.security_context.namespace_options.target_id : '';
      const targetPid = target ? this.targetPid(target) : null;
      const generated = await this.opts.host.generateSpec({
        containerId: id,
        config,
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
      cleanup.push(`cgroup ${cgroupPath}`, () => this.opts.host.cgroups.remove(cgroupPath));
      await this.opts.host.cgroups.create(cgroupPath, generated.resources);

      const record: ContainerRecord = {
        version: 1,
        id,
        name,
        sandboxId: sandbox.id,
        config,
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
      await this.persist(record);
      this.records.set(id, record);
      this.specs.set(id, spec);
      this.index.add(id);
      cleanup.commit();
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

  /**
   * Makes the stdio (FIFOs for pipes, a pty for a terminal), the log writer and the
   * process held before exec. Registers the undos on `cleanup`.
   */
  private async makeProcess(record: ContainerRecord, spec: OciSpec, cleanup: CleanupStack): Promise<void> {
    const isTty = spec.process.terminal;
    const stdinWanted = record.config.stdin;
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
          containerEnds.push(await openFd(fifo(s), fs.constants.O_RDWR));
        }
      } catch (e) {
        closeContainerEnds();
        for (const fd of toClose) closeFd(fd);
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
    const sockets: net.Socket[] = [];
    if (record.logPath !== '') {
      await fsp.mkdir(path.dirname(record.logPath), { recursive: true });
      logWriter = new CriLogWriter(record.logPath);
      await logWriter.openFile();
    }
    const attach = (stream: 'stdout' | 'stderr', fd: number, terminal = false) => {
      // A pty master is a TTY to libuv, which net.Socket refuses; its reads end in EIO
      // once the last slave is closed, which the log writer takes as the end.
      const sock = terminal ? new tty.ReadStream(fd) : new net.Socket({ fd, readable: true, writable: false });
      sockets.push(sock);
      if (logWriter) logWriter.attach(stream, sock);
      else sock.resume();
    };
    if (isTty && handle.terminal !== null) attach('stdout', handle.terminal, true);
    for (const r of readers) attach(r.stream, r.fd);
    const closeStdio = () => {
      for (const s of sockets) s.destroy();
      if (handle.stdin !== null) fs.close(handle.stdin, () => {});
    };
    cleanup.push(`stdio of ${record.id}`, async () => {
      closeStdio();
      await logWriter?.close();
    });
    record.pid = handle.pid;
    record.pidStartTime = await this.opts.host.processStartTime(handle.pid);
    this.live.set(record.id, { handle, log: logWriter, closeStdio, done: null });
    cleanup.push(`live state of ${record.id}`, () => void this.live.delete(record.id));
  }

  // ------------------------------------------------------------------ start

  async start(idOrPrefix: string): Promise<void> {
    const r = this.mustGet(idOrPrefix);
    await this.locked(r.id, async () => {
      if (r.state !== 'CONTAINER_CREATED') throw failedPrecondition(`container ${r.id} is ${r.state.replace('CONTAINER_', '').toLowerCase()}, not created`);
      let live = this.live.get(r.id);
      if (!live?.handle) {
        // Created by a daemon that is gone: its held process went with it; make it again.
        const cleanup = new CleanupStack(this.opts.log);
        await this.makeProcess(r, await this.spec(r), cleanup);
        cleanup.commit();
        live = this.live.get(r.id)!;
      }
      const handle = live.handle!;
      try {
        await this.opts.host.startProcess(handle);
      } catch (e) {
        r.state = 'CONTAINER_EXITED';
        r.exitCode = 128;
        r.reason = 'StartError';
        r.message = (e as Error).message;
        r.finishedAt = nowNanos();
        r.pid = null;
        live.closeStdio();
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
      live.done = this.watchExit(r, live);
      this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STARTED_EVENT', createdAt: r.startedAt, sandboxId: r.sandboxId });
    });
  }

  /** Records the exit once the process is reaped and its log drained. */
  private async watchExit(r: ContainerRecord, live: Live): Promise<void> {
    const st = await live.handle!.exited;
    // From here the exit is ours alone (the kernel has handed it over): a handoff must wait
    // for it to be on disk, or it would be lost.
    let done!: () => void;
    const recording = new Promise<void>((res) => (done = res));
    this.recording.add(recording);
    try {
      await this.recordExit(r, live, st);
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
    await this.opts.host.releaseProcess(live.handle!).catch(() => {});
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
    if (r.state === 'CONTAINER_RUNNING' || r.state === 'CONTAINER_CREATED') await this.stop(r.id, 0);
    await this.locked(r.id, async () => {
      if (!this.records.has(r.id)) return;
      // Exec'd processes and anything else left in the cgroup go with it.
      await this.opts.host.cgroups.killAll(r.cgroupPath).catch(() => {});
      await this.opts.host.cgroups.remove(r.cgroupPath);
      await this.opts.host.unmount(r.rootfs);
      await this.opts.images.releaseRootfs(r.id);
      await fsp.rm(r.runDir, { recursive: true, force: true });
      await fsp.rm(r.stateDir, { recursive: true, force: true });
      this.records.delete(r.id);
      this.hasDevicesCgroup.delete(r.id);
      this.specs.delete(r.id);
      this.index.delete(r.id);
      this.names.release(r.name);
      this.cpuRate.forget(r.id);
      this.live.delete(r.id);
      this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_DELETED_EVENT', createdAt: nowNanos(), sandboxId: r.sandboxId });
    });
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
      if (resources) await this.opts.host.cgroups.update(r.cgroupPath, resources);
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

  // ------------------------------------------------------------------ restore

  /**
   * After a restart: every record is loaded; a running container whose process is still
   * there (same pid and start time) is adopted and its log FIFOs read on; one that is gone
   * is EXITED with its exit unknown.
   */
  async restore(): Promise<void> {
    const dir = path.join(this.config.root, 'containers');
    let ids: string[];
    try {
      ids = await fsp.readdir(dir);
    } catch {
      return;
    }
    for (const id of ids) {
      const r = await readJson<ContainerRecord>(path.join(dir, id, 'container.json')).catch(() => null);
      if (!r) continue;
      this.records.set(r.id, r);
      this.index.add(r.id);
      this.names.reserve(r.name, r.id);
      if (r.state === 'CONTAINER_RUNNING') await this.adopt(r);
      else if (r.state === 'CONTAINER_CREATED') await this.reapHeld(r);
    }
    // Exec processes were watched by the image before a re-exec, and nothing watches them
    // now: one that is a zombie already would hold its PID namespace's init forever. Once
    // every container (and, before, every pod's pause) is watched again, whatever zombie of
    // ours is left in a container's namespace is such a stray.
    let strays = 0;
    for (const live of this.live.values()) if (live.handle) strays += this.opts.host.reapStrays(live.handle);
    if (strays > 0) this.opts.log.warn({ strays }, 'reaped exec processes nothing watched');
    this.opts.log.info({ containers: this.records.size }, 'containers restored');
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

  private async adopt(r: ContainerRecord): Promise<void> {
    const handle = r.pid === null ? null : await this.opts.host.adoptStarted(r.pid, r.pidStartTime);
    if (!handle) {
      r.state = 'CONTAINER_EXITED';
      r.finishedAt = nowNanos();
      r.exitCode = 255;
      r.reason = 'ContainerStatusUnknown';
      r.message = 'the container exited while nodecri was down, so its exit code is unknown';
      r.pid = null;
      await this.persist(r);
      return;
    }
    this.opts.host.refProcess(handle, false);
    let log: CriLogWriter | null = null;
    const sockets: net.Socket[] = [];
    if (r.logPath !== '') {
      log = new CriLogWriter(r.logPath);
      await log.openFile();
    }
    for (const s of ['stdout', 'stderr'] as const) {
      const p = path.join(r.runDir, s);
      const fd = await openFd(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK).catch(() => null);
      if (fd === null) continue;
      const sock = new net.Socket({ fd, readable: true, writable: false });
      sockets.push(sock);
      if (log) log.attach(s, sock);
      else sock.resume();
    }
    const live: Live = { handle, log, closeStdio: () => sockets.forEach((s) => s.destroy()), done: null };
    this.live.set(r.id, live);
    live.done = this.watchExit(r, live);
  }

  /**
   * Before the daemon re-execs itself: every exit already reaped is written down, and each
   * log's unterminated line goes out as a P record (the next daemon reads on from the FIFO
   * and closes the line). Containers stay children of the same pid.
   */
  async prepareHandoff(): Promise<void> {
    while (this.recording.size > 0) await Promise.all([...this.recording]);
    for (const live of this.live.values()) live.log?.flushPartialsAsP();
    await Promise.all([...this.live.values()].map((l) => l.log?.drain()));
  }
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
