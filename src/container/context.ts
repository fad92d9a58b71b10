/**
 * What the parts of the container module share: the options the service was built with
 * (its kernel facilities, the keeper, the image and sandbox sides) and the state of every
 * container it knows (records, live processes and logs, names, locks). Each part (create,
 * lifecycle, exit, exec, logs, stats, restore, handoff) is a set of functions over it;
 * ContainerService (service.ts) is their facade.
 */
import fsp from 'node:fs/promises';
import type net from 'node:net';
import type { Writable } from 'node:stream';
import path from 'node:path';
import type { Config } from '../config';
import type { Operations } from '../domain/operations';
import { KeyedMutex } from '../util/mutex';
import { failedPrecondition } from '../domain/errors';
import type { EventBus } from '../domain/events';
import { CpuRate } from '../domain/cpu-rate';
import { IdIndex } from '../domain/ids';
import { InFlight } from '../domain/in-flight';
import { Registrar } from '../domain/registrar';
import type { ImageService } from '../image/service';
import { cgroupProcsFiles, type CgroupManager } from '../linux/cgroups';
import type { ExitStatus, ProcessHandle } from '../native/process';
import type { Logger } from '../obs/logger';
import type { Metrics } from '../obs/metrics';
import type { SandboxLookup } from '../sandbox/records';
import { readJson, writeJsonAtomic } from '../state/atomic-file';
import type { GenerateInput, GeneratedContainer } from '../oci/generate';
import type { OciSpec } from '../oci/types';
import type { CriLogWriter } from './cri-log';
import type { ContainerRecord } from './model';

/** The process calls of the addon (src/native/process.ts) a container needs. */
type ProcessCalls = Pick<
  typeof import('../native/process'),
  | 'createProcess'
  | 'startProcess'
  | 'execProcess'
  | 'signalProcess'
  | 'releaseProcess'
  | 'refProcess'
  | 'reapStrays'
  | 'untilExitReapingStrays'
  | 'adoptStarted'
  | 'processStartTime'
  | 'unwatchAllExits'
  | 'dupFd'
  | 'keepAcrossExec'
  | 'resizeTerminal'
  | 'terminalWriter'
>;

/** The process and mount facilities a container needs (the addon, or fakes). */
export interface ContainerHost extends ProcessCalls {
  cgroups: CgroupManager;
  mountOverlay(lowerDirs: string[], upperDir: string, workDir: string, target: string): Promise<void>;
  unmount(target: string): Promise<void>;
  mkfifo(path: string): Promise<void>;
  /** detaches every mount under a dir, then removes it (the orphan sweep's) */
  removeTree(dir: string): Promise<void>;
  generateSpec(input: GenerateInput): Promise<GeneratedContainer>;
  defaults: GenerateInput['defaults'];
}

/** What a container needs of the image side: the image, its rootfs over its layers, their release. */
export type ContainerImages = Pick<ImageService, 'status' | 'prepareRootfs' | 'releaseRootfs' | 'rootfsOwners'>;

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
  images: ContainerImages;
  /** the pods' records (SandboxRecords, which SandboxService writes) */
  sandboxes: SandboxLookup;
  host: ContainerHost;
  /** journals and fault points of CreateContainer, StartContainer and RemoveContainer */
  ops: Operations;
  /** counts log records dropped on write errors and times the steps of create and start; null in tests without metrics */
  metrics?: Pick<Metrics, 'containerLogDroppedBytes' | 'stepDuration'> | null;
  /** null: no keeper (a crash then loses the exits and FIFO buffers of that time) */
  keeper?: ContainerKeeper | null;
}

/** The live side of a container: its process, its log and the end of its exit handling. */
export interface Live {
  handle: ProcessHandle | null;
  /** the keeper records this process's exit (it is the keeper's child, not ours) */
  keeperChild?: boolean;
  log: CriLogWriter | null;
  /** what reads the container's output (FIFO read ends, or the pty master) */
  readers: LogReader[];
  /**
   * the container's stdin as attach writes it (the write end of its stdin pipe, or a writer
   * of its pty master) when it was created with stdin; handed over across a graceful
   * restart, gone after a crash
   */
  stdin?: Writable | null;
  /** the stdin pipe's write end that `stdin` owns (null for a terminal's writer): what a handoff keeps */
  stdinFd?: number | null;
  /** closes the daemon's ends of the stdio */
  closeStdio: () => void;
  /** settles once the exit is recorded */
  done: Promise<void> | null;
}

/** One stream of a container's output as the daemon reads it. */
export interface LogReader {
  stream: 'stdout' | 'stderr';
  /** the fd the socket reads (it owns it) */
  fd: number;
  sock: net.Socket;
  /** a pty master rather than a FIFO */
  terminal: boolean;
}

export class ContainerContext {
  readonly records = new Map<string, ContainerRecord>();
  /** whether a container's cgroup has its v1 devices dir (see cgroupProcs) */
  readonly hasDevicesCgroup = new Map<string, boolean>();
  readonly index = new IdIndex();
  readonly names = new Registrar();
  readonly creating = new InFlight<string>();
  readonly live = new Map<string, Live>();
  readonly specs = new Map<string, OciSpec>();
  readonly cpuRate = new CpuRate();
  readonly lock = new KeyedMutex();
  /** exits being recorded right now: a handoff waits for them */
  readonly recording = new Set<Promise<void>>();

  constructor(readonly opts: ContainerServiceOptions) {}

  get config(): Config {
    return this.opts.config();
  }

  get keeper(): ContainerKeeper | null {
    return this.opts.keeper ?? null;
  }

  recordFile(stateDir: string): string {
    return path.join(stateDir, 'container.json');
  }

  async persist(r: ContainerRecord): Promise<void> {
    await writeJsonAtomic(this.recordFile(r.stateDir), r);
  }

  locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
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

  /**
   * The cgroup.procs files a process of the container joins. A container made by a nodecri
   * that did not yet manage the v1 devices hierarchy (then upgraded in place) has no dir
   * there: its processes skip it, as its init did, instead of failing every exec. Looked at
   * once per container, and never for one this daemon made.
   */
  async cgroupProcs(r: ContainerRecord): Promise<string[]> {
    const files = cgroupProcsFiles(this.opts.host.cgroups, r.cgroupPath);
    const devices = this.opts.host.cgroups.paths(r.cgroupPath).devices;
    if (devices === undefined) return files;
    let has = this.hasDevicesCgroup.get(r.id);
    if (has === undefined) {
      has = await fsp.access(devices).then(
        () => true,
        () => false,
      );
      this.hasDevicesCgroup.set(r.id, has);
      if (!has) this.opts.log.warn({ containerId: r.id }, `container ${r.id} has no devices cgroup (made before device enforcement): its device rules are not enforced`);
    }
    return has ? files : files.filter((f) => path.dirname(f) !== devices);
  }
}
