/**
 * Pod sandboxes: RunPodSandbox as CRI-O does it (validate, name and id, reserve the name,
 * pin the namespaces, mount shm, write the pod files, make the pod cgroup, attach the
 * network, persist, emit events), each step pushing its undo on the request's cleanup
 * stack the moment its resource exists; and stop, remove, status, list and restore.
 * No infra process is made unless the pod shares one PID namespace: the pins hold the
 * namespaces.
 */
import fsp from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import type { Config } from '../config';
import { CleanupStack } from '../domain/cleanup';
import type { Operations } from '../domain/operations';
import type { PendingOp } from '../state/op-journal';
import { RuntimeError, failedPrecondition, invalidArgument, unavailable } from '../domain/errors';
import type { EventBus } from '../domain/events';
import { nowNanos } from '../domain/events';
import { IdIndex, newId, objectIdPattern, sandboxName } from '../domain/ids';
import { InFlight } from '../domain/in-flight';
import { Registrar } from '../domain/registrar';
import { noResources, type CgroupManager, type CgroupStats, type Resources } from '../linux/cgroups';
import { CpuRate } from '../domain/cpu-rate';
import type { PodNetwork, PodNetworkAttachment } from '../network/pod-network';
import type { Logger } from '../obs/logger';
import { stepTimer, type StepMetrics, type StepTimer } from '../obs/steps';
import { readJson, writeJsonAtomic } from '../state/atomic-file';
import { KeyedMutex } from '../util/mutex';
import { checkPathLength, throwAsResourceError } from '../domain/limits';
import { checkCgroupParent } from './cgroup-parent';
import { hostsFile, podHostname, resolvConf, writeSandboxFiles } from './files';
import type { SandboxRecord, SandboxSpec, SandboxState } from './model';
import { SandboxRecords } from './records';

/** The kernel facilities a sandbox needs (the addon in production, fakes in unit tests). */
export interface SandboxHost {
  pinNamespaces(opts: { types: Array<'net' | 'ipc' | 'uts' | 'user'>; dir: string; sysctls: Record<string, string> }): Promise<Partial<Record<string, string | null>>>;
  unpinNamespace(pinPath: string): Promise<void>;
  mountShm(target: string, sizeBytes: bigint): Promise<void>;
  unmount(target: string): Promise<void>;
  /** mount points currently present, for restore */
  mountPoints(): Promise<Set<string>>;
  /** detaches every mount under a dir, then removes it (the orphan sweep's) */
  removeTree(dir: string): Promise<void>;
  cgroups: CgroupManager;
  infra: {
    start(req: {
      runDir: string;
      pins: { net: string | null; ipc: string | null; uts: string | null };
      cgroupPath: string;
    }): Promise<{ pid: number; startTime: string | null; warnings: string[] }>;
    stop(pid: number): Promise<void>;
    /** re-watches a running infra process after a restart; false when it is gone or the pid names another process */
    adopt(pid: number, startTime: string | null): Promise<boolean>;
  };
  /** a TCP connection to 127.0.0.1:port in the network namespace at netnsPath (null: the host's) */
  connectInNetns(netnsPath: string | null, port: number): Promise<net.Socket>;
}

/**
 * The pod network as the sandbox service uses it (PodNetwork in production, a fake in unit
 * tests): CNI config readiness, ADD and DEL, traffic counters, and the orphan sweep's
 * view of the CNI cache.
 */
export type SandboxNetwork = Pick<PodNetwork, 'waitForConfig' | 'attach' | 'detach' | 'usage' | 'removeCacheTempFiles' | 'cachedAttachments'>;

/**
 * What the sandbox service needs from the container side: a pod's containers stopped and
 * removed with it (ContainerService, made before the sandbox service; see records.ts).
 */
export interface SandboxContainers {
  stopAll(sandboxId: string, signal: AbortSignal | null): Promise<void>;
  removeAll(sandboxId: string): Promise<void>;
}

export interface SandboxServiceOptions {
  config: () => Config;
  log: Logger;
  events: EventBus;
  host: SandboxHost;
  network: SandboxNetwork;
  /** journals and fault points of RunPodSandbox, StopPodSandbox and RemovePodSandbox */
  ops: Operations;
  /** the pods' records, which the container side reads too (made first: see records.ts) */
  records: SandboxRecords;
  containers: SandboxContainers;
  /** where RunPodSandbox's steps are timed; null in tests without metrics */
  metrics?: StepMetrics | null;
}

export interface SandboxStats {
  timestamp: string;
  cgroup: CgroupStats | null;
  nanoCores: bigint | null;
  network: { name: string; rxBytes: bigint; rxErrors: bigint; txBytes: bigint; txErrors: bigint } | null;
}

/** How long a second identical RunPodSandbox waits for the first (CRI-O's resource store). */
const inFlightWaitMs = 4 * 60 * 1000;
const busy = (name: string) => unavailable(`pod sandbox ${name} is still being created; try again`);

export class SandboxService {
  private readonly store: SandboxRecords;
  private readonly records: Map<string, SandboxRecord>;
  private readonly index: IdIndex;
  private readonly names = new Registrar();
  private readonly creating = new InFlight<string>({ joinTimeout: { ms: inFlightWaitMs, error: busy } });
  private readonly lock = new KeyedMutex();
  private readonly cpuRate = new CpuRate();
  /**
   * Pods whose network this daemon's CNI DEL released: a stop again (the one inside
   * RemovePodSandbox, a repeated StopPodSandbox) does not DEL once more, as containerd's
   * closed netns does not. A new daemon knows none, and DELs again (DEL is idempotent).
   */
  private readonly networkReleased = new Set<string>();

  constructor(private readonly opts: SandboxServiceOptions) {
    this.store = opts.records;
    this.records = this.store.byId;
    this.index = this.store.index;
  }

  private get config(): Config {
    return this.opts.config();
  }

  private recordFile(id: string): string {
    return path.join(this.config.root, 'sandboxes', `${id}.json`);
  }

  private async persist(r: SandboxRecord): Promise<void> {
    await fsp.mkdir(path.dirname(this.recordFile(r.id)), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.recordFile(r.id), r);
  }

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(id, fn);
  }

  get(idOrPrefix: string): SandboxRecord | null {
    return this.store.get(idOrPrefix);
  }

  mustGet(idOrPrefix: string): SandboxRecord {
    return this.store.mustGet(idOrPrefix);
  }

  list(): SandboxRecord[] {
    return this.store.list();
  }

  /** The pod for a PortForward: NOT_FOUND, or FAILED_PRECONDITION when it is not ready. */
  readySandbox(idOrPrefix: string): SandboxRecord {
    const r = this.store.mustGet(idOrPrefix);
    if (r.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${r.id} is not ready${r.notReadyReason ? ` (${r.notReadyReason})` : ''}`);
    return r;
  }

  /**
   * PortForward: a TCP connection to localhost:`port` (127.0.0.1, then ::1) inside the
   * pod's network namespace (its pin; the host's for a host-network pod), as containerd and
   * CRI-O dial it. Rejects with an error whose message says why (ECONNREFUSED when nothing
   * listens there).
   */
  async portForward(idOrPrefix: string, port: number): Promise<net.Socket> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(`port ${port} is not a TCP port (1-65535)`);
    const r = this.readySandbox(idOrPrefix);
    const hostNetwork = r.spec.namespaces.network === 'NODE';
    if (!hostNetwork && r.pins.net === null) throw failedPrecondition(`pod sandbox ${r.id} has no network namespace`);
    try {
      return await this.opts.host.connectInNetns(hostNetwork ? null : r.pins.net, port);
    } catch (e) {
      throw new RuntimeError('unavailable', `failed to connect to localhost:${port} inside the network namespace of pod sandbox ${r.id}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** RunPodSandbox: returns the sandbox id (an existing one for an identical retry). */
  async run(spec: SandboxSpec, signal: AbortSignal | null): Promise<string> {
    const handler = spec.runtimeHandler === '' ? this.config.defaultRuntime : spec.runtimeHandler;
    const runtime = this.config.runtimes[handler];
    if (!runtime) throw invalidArgument(`runtime handler ${JSON.stringify(spec.runtimeHandler)} is not configured`);
    if (runtime.type !== 'native') throw failedPrecondition(`runtime handler ${handler} (type ${runtime.type}) is not supported yet`);

    const name = sandboxName(spec);
    const pending = this.creating.join(name);
    if (pending) return pending;
    const existing = this.names.get(name);
    if (existing) {
      const r = this.records.get(existing);
      if (r && r.state === 'SANDBOX_READY') return r.id;
      throw new RuntimeError('already-exists', `pod sandbox name ${name} is reserved for ${existing}`);
    }
    const id = newId();
    // Bad input is refused before anything exists.
    checkCgroupParent(this.opts.host.cgroups, this.config.cgroup.driver, spec.cgroupParent, id);
    if (spec.logDirectory !== '') checkPathLength('config.log_directory', spec.logDirectory);
    return this.creating.start(name, () => this.create(id, name, handler, spec, signal));
  }

  private async create(id: string, name: string, handler: string, spec: SandboxSpec, signal: AbortSignal | null): Promise<string> {
    const log = this.opts.log.child({ sandboxId: id, pod: `${spec.namespace}/${spec.name}` });
    const steps = stepTimer(this.opts.metrics, 'RunPodSandbox');
    // The journal comes first: a failure to open it leaves nothing to undo.
    const cleanup = new CleanupStack(log, await steps.time('journal', () => this.opts.ops.begin('RunPodSandbox', id)));
    try {
      steps.timeSync('reserve_name', () => this.names.reserve(name, id));
      cleanup.push(`name ${name}`, () => this.names.release(name));
      const record = await this.build(id, name, handler, spec, cleanup, signal, log, steps);
      // The record is the commit point: once it is on disk the pod exists (a crash from
      // here on leaves a whole pod, which the next start restores).
      cleanup.point();
      await steps.time('persist', () => this.persist(record));
      this.records.set(id, record);
      this.index.add(id);
      await steps.time('commit', () => cleanup.commit());
      const now = nowNanos();
      this.opts.events.publish({ containerId: id, type: 'CONTAINER_CREATED_EVENT', createdAt: now, sandboxId: id });
      this.opts.events.publish({ containerId: id, type: 'CONTAINER_STARTED_EVENT', createdAt: now, sandboxId: id });
      log.info(
        { ips: record.network?.ips ?? [] },
        record.infra ? `Ran pod sandbox ${id} with infra container: pid ${record.infra.pid}` : `Ran pod sandbox ${id} without infra container`,
      );
      return id;
    } catch (e) {
      const left = await cleanup.unwind();
      if (left.length > 0) log.error({ left }, 'RunPodSandbox failed and could not undo everything');
      throw e;
    }
  }

  private async build(
    id: string,
    name: string,
    handler: string,
    spec: SandboxSpec,
    cleanup: CleanupStack,
    signal: AbortSignal | null,
    log: Logger,
    steps: StepTimer,
  ): Promise<SandboxRecord> {
    const cfg = this.config;
    const hostNetwork = spec.namespaces.network === 'NODE';
    const hostIpc = spec.namespaces.ipc === 'NODE';
    if (hostNetwork) {
      const netSysctl = Object.keys(spec.sysctls).find((k) => k.startsWith('net.'));
      if (netSysctl) throw invalidArgument(`sysctl ${netSysctl} cannot be set for a pod on the host network`);
    }
    if (hostIpc) {
      const ipcSysctl = Object.keys(spec.sysctls).find((k) => /^(kernel\.(shm|msg|sem)|fs\.mqueue\.)/.test(k));
      if (ipcSysctl) throw invalidArgument(`sysctl ${ipcSysctl} cannot be set for a pod on the host IPC namespace`);
    }

    // Network readiness first: no point making anything for a pod that cannot get a network.
    let net = null;
    if (!hostNetwork) {
      net = await steps.time('cni_config', () => this.opts.network.waitForConfig(cfg.network.cniConfigWait * 1000, signal));
      if (!net) throw failedPrecondition(`NetworkPluginNotReady: no CNI configuration in ${cfg.network.cniConfigDir}`);
    }

    // The run dir holds the pins, shm and pod files: its undo (every mount under it
    // detached, then the tree removed) is the durable undo of all of them.
    const runDir = path.join(cfg.runroot, 'sandboxes', id);
    await steps.time('run_dir', async () => {
      await cleanup.record({ kind: 'tree', path: runDir });
      await fsp.mkdir(runDir, { recursive: true, mode: 0o711 });
    });

    // Namespaces, pinned by bind mounts, with the pod's namespaced sysctls applied inside.
    const types: Array<'net' | 'ipc' | 'uts' | 'user'> = [];
    if (!hostNetwork) types.push('net', 'uts');
    if (!hostIpc) types.push('ipc');
    // Pod user namespaces need id mappings carried through to every container; until the
    // container issue does that, refuse rather than run the pod with half of it.
    if (spec.namespaces.userns === 'POD') throw failedPrecondition('pod user namespaces (userns_options mode POD) are not supported yet');
    const pins = { net: null as string | null, ipc: null as string | null, uts: null as string | null, user: null as string | null };
    if (types.length > 0) {
      const made = await steps.time('pin_namespaces', () => this.opts.host.pinNamespaces({ types, dir: path.join(runDir, 'ns'), sysctls: spec.sysctls }));
      for (const t of types) {
        const p = made[t] ?? null;
        pins[t] = p;
        if (p) cleanup.push(`${t} namespace pin ${p}`, () => this.opts.host.unpinNamespace(p));
      }
    }

    // The pod cgroup: kubelet's parent when it sent one, else our own. kubelet's is made
    // when missing (as runc's mkdir -p of a container's cgroup would) and never removed by
    // nodecri, as containerd and CRI-O do: other pods may live under it. The pod's own
    // cgroups (infra, containers) are its children. Made before the network, whose
    // plugins are told its path.
    const cgroup = await steps.time('cgroup', async (): Promise<SandboxRecord['cgroup']> => {
      if (spec.cgroupParent !== '') {
        await this.opts.host.cgroups.create(spec.cgroupParent, spec.resources ?? noResources()).catch(throwAsResourceError);
        return { path: spec.cgroupParent, created: false };
      }
      const p = path.posix.join(cfg.cgroup.defaultParent, `pod-${id}`);
      await cleanup.record({ kind: 'cgroup', path: p }, () => this.opts.host.cgroups.remove(p));
      await this.opts.host.cgroups.create(p, spec.resources ?? noResources()).catch(throwAsResourceError);
      return { path: p, created: true };
    });

    // The network: CNI ADD in the pinned netns (its own DEL on failure), lo up. It is the
    // longest step by far (plugin processes), so it runs while shm and the files are made;
    // its undo is on the stack from the start and waits for it to settle.
    let attaching: Promise<PodNetworkAttachment> | null = null;
    if (net && pins.net) {
      const req = this.networkRequest(id, spec, pins.net, cgroup.path);
      // The journal keeps the conflist ADD is given: a DEL after a crash mid-ADD needs it.
      let pending: Promise<PodNetworkAttachment> | null = null;
      await cleanup.record({ kind: 'network', network: net.name, config: net.raw, request: req }, async () => {
        const attached = await pending?.catch(() => null);
        if (attached) await this.opts.network.detach(attached, req);
      });
      attaching = steps.time('cni_attach', () => this.opts.network.attach(net, req));
      pending = attaching;
      // Handled here too, so that a failure while shm is being made is not "unhandled".
      pending.catch(() => undefined);
    }
    let shm: SandboxRecord['shm'];
    try {
      shm = await steps.time('shm', () => this.makeShm(runDir, spec, hostIpc, cleanup));
    } catch (e) {
      // Let the network settle first, so that its undo finds it either way.
      await attaching?.catch(() => null);
      throw e;
    }
    const network: SandboxRecord['network'] = attaching ? await attaching : null;

    // hostname, resolv.conf and hosts, with the pod's IPs.
    const hostname = podHostname(spec.hostname, hostNetwork, id);
    const files = { hostname: path.join(runDir, 'hostname'), resolvConf: path.join(runDir, 'resolv.conf'), hosts: path.join(runDir, 'hosts') };
    await steps.time('sandbox_files', async () => writeSandboxFiles(files, { hostname, resolvConf: await resolvConf(spec.dns), hosts: hostsFile(hostname, network?.ips ?? []) }));

    // A pod sharing one PID namespace needs a PID 1 to reap its orphans: the pause binary.
    let infra: SandboxRecord['infra'] = null;
    if (spec.namespaces.pid === 'POD') {
      const infraCgroup = path.posix.join(cgroup.path, `nodecri-infra-${id}`);
      let infraPid: number | null = null;
      await cleanup.record({ kind: 'cgroup', path: infraCgroup }, async () => {
        if (infraPid !== null) await this.opts.host.infra.stop(infraPid);
        await this.opts.host.cgroups.remove(infraCgroup);
      });
      const started = await steps.time('infra_start', () => this.opts.host.infra.start({ runDir, pins, cgroupPath: infraCgroup }));
      infraPid = started.pid;
      for (const w of started.warnings) log.warn({ pid: started.pid }, `infra process: ${w}`);
      infra = { pid: started.pid, startTime: started.startTime, cgroupPath: infraCgroup };
    }
    signal?.throwIfAborted();
    return {
      version: 1,
      id,
      name,
      spec,
      runtimeHandler: handler,
      state: 'SANDBOX_READY',
      createdAt: nowNanos(),
      runDir,
      pins,
      shm,
      files,
      hostname,
      cgroup,
      network,
      infra,
      notReadyReason: '',
    };
  }

  /** The pod's /dev/shm: its own tmpfs, or the host's for host IPC. */
  private async makeShm(runDir: string, spec: SandboxSpec, hostIpc: boolean, cleanup: CleanupStack): Promise<SandboxRecord['shm']> {
    if (hostIpc) return { path: '/dev/shm', mounted: false };
    const shmPath = path.join(runDir, 'shm');
    await fsp.mkdir(shmPath, { mode: 0o1777 });
    await this.opts.host.mountShm(shmPath, spec.shmSizeBytes);
    cleanup.push(`shm ${shmPath}`, () => this.opts.host.unmount(shmPath));
    return { path: shmPath, mounted: true };
  }

  private networkRequest(id: string, spec: SandboxSpec, netnsPath: string, cgroupPath: string) {
    return {
      sandboxId: id,
      netnsPath,
      podName: spec.name,
      podNamespace: spec.namespace,
      podUid: spec.uid,
      portMappings: spec.portMappings,
      cgroupPath,
    };
  }

  /**
   * StopPodSandbox: stops its containers, releases the network and unmounts shm; the pins
   * stay until removal. Idempotent; an unknown id is not an error.
   */
  async stop(idOrPrefix: string, signal: AbortSignal | null, op: 'StopPodSandbox' | 'RemovePodSandbox' = 'StopPodSandbox'): Promise<void> {
    const r = this.get(idOrPrefix);
    if (!r) return;
    // Journaled so that a crash half-way is finished by the next start (a stop is rolled
    // forward: the client asked for it and every step is idempotent); within a removal,
    // the removal's journal covers it.
    if (op === 'StopPodSandbox') await this.opts.ops.teardown('StopPodSandbox', r.id, (step) => this.locked(r.id, () => this.stopLocked(r, signal, step)));
    else await this.locked(r.id, () => this.stopLocked(r, signal, () => this.opts.ops.point(op)));
  }

  private async stopLocked(r: SandboxRecord, signal: AbortSignal | null, step: () => void): Promise<void> {
    await this.opts.containers.stopAll(r.id, signal);
    step();
    if (r.infra) await this.opts.host.infra.stop(r.infra.pid);
    step();
    if (r.network && r.pins.net && !this.networkReleased.has(r.id)) {
      await this.opts.network.detach(r.network, this.networkRequest(r.id, r.spec, r.pins.net, r.cgroup.path));
      r.network = { ...r.network, ips: [] };
      this.networkReleased.add(r.id);
    }
    step();
    if (r.shm.mounted) {
      await this.opts.host.unmount(r.shm.path);
      r.shm = { ...r.shm, mounted: false };
    }
    step();
    if (r.state !== 'SANDBOX_NOTREADY') {
      r.state = 'SANDBOX_NOTREADY';
      r.notReadyReason = 'stopped';
      this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STOPPED_EVENT', createdAt: nowNanos(), sandboxId: r.id });
    }
    await this.persist(r);
  }

  /** RemovePodSandbox: stops if needed, then removes everything. Unknown id is fine. */
  async remove(idOrPrefix: string, signal: AbortSignal | null): Promise<void> {
    const r = this.get(idOrPrefix);
    if (!r) return;
    // Rolled forward after a crash: the next start finishes the removal.
    await this.opts.ops.teardown('RemovePodSandbox', r.id, async (step) => {
      await this.stop(r.id, signal, 'RemovePodSandbox');
      await this.locked(r.id, () => this.removeLocked(r, step));
    });
  }

  private async removeLocked(r: SandboxRecord, step: () => void): Promise<void> {
    if (!this.records.has(r.id)) return;
    await this.opts.containers.removeAll(r.id);
    step();
    for (const p of [r.pins.net, r.pins.ipc, r.pins.uts, r.pins.user]) if (p) await this.opts.host.unpinNamespace(p);
    step();
    if (r.infra) await this.opts.host.cgroups.remove(r.infra.cgroupPath);
    if (r.cgroup.created) await this.removePodCgroup(r);
    step();
    await fsp.rm(r.runDir, { recursive: true, force: true });
    step();
    await fsp.rm(this.recordFile(r.id), { force: true });
    step();
    this.records.delete(r.id);
    this.index.delete(r.id);
    this.cpuRate.forget(r.id);
    this.networkReleased.delete(r.id);
    this.names.release(r.name);
    this.opts.events.publish({ containerId: r.id, type: 'CONTAINER_DELETED_EVENT', createdAt: nowNanos(), sandboxId: r.id });
  }

  /**
   * The pod's own cgroup goes with it. A record from before kubelet's cgroup_parent was
   * left alone says `created` for a parent nodecri had to make: that one goes only once
   * no other pod's record names it, and a refusal (something else lives there) is logged,
   * not a failed removal.
   */
  private async removePodCgroup(r: SandboxRecord): Promise<void> {
    if (r.spec.cgroupParent === '' || r.cgroup.path !== r.spec.cgroupParent) {
      await this.opts.host.cgroups.remove(r.cgroup.path);
      return;
    }
    const shared = [...this.records.values()].some((o) => o.id !== r.id && o.cgroup.path === r.cgroup.path);
    if (shared) return;
    await this.opts.host.cgroups.remove(r.cgroup.path).catch((e: unknown) => {
      this.opts.log.warn({ sandboxId: r.id, cgroup: r.cgroup.path, err: e }, 'the cgroup_parent this pod made is still in use; left in place');
    });
  }

  /** Usage of the pod: its cgroup's cpu, memory and pids, and its interface's traffic. */
  async stats(r: SandboxRecord): Promise<SandboxStats> {
    const timestamp = nowNanos();
    const cgroup = await this.opts.host.cgroups.stats(r.cgroup.path).catch(() => null);
    const nanoCores = cgroup?.cpuUsageNanos != null ? this.cpuRate.sample(r.id, cgroup.cpuUsageNanos, BigInt(timestamp)) : null;
    const network = r.network && r.state === 'SANDBOX_READY' ? await this.opts.network.usage(r.network) : null;
    return { timestamp, cgroup, nanoCores, network: network && r.network ? { name: r.network.ifName, ...network } : null };
  }

  /** Applies new pod overhead and resources to the pod cgroup, and records them. */
  async updateResources(idOrPrefix: string, resources: Resources | null): Promise<void> {
    const r = this.mustGet(idOrPrefix);
    await this.locked(r.id, async () => {
      if (resources) await this.opts.host.cgroups.update(r.cgroup.path, resources);
      r.spec = { ...r.spec, resources };
      await this.persist(r);
    });
  }

  // ------------------------------------------------------------------ recovery

  /**
   * Before restore: an operation a crash interrupted. A RunPodSandbox whose record made it
   * to disk is complete (its journal just goes); any other is undone from its journal,
   * last step first. Resolves to the undos that failed (the journal then stays, and the
   * next start tries again).
   */
  async rollBack(p: PendingOp): Promise<{ committed: boolean; failed: string[] }> {
    if (await readJson<SandboxRecord>(this.recordFile(p.header.id)).catch(() => null)) {
      await fsp.rm(p.file, { force: true });
      return { committed: true, failed: [] };
    }
    return { committed: false, failed: await this.opts.ops.replay(p) };
  }

  /** After restore: a stop or removal a crash interrupted is finished. */
  async rollForward(p: PendingOp): Promise<void> {
    if (p.header.op === 'RemovePodSandbox') await this.remove(p.header.id, null);
    else if (p.header.op === 'StopPodSandbox') await this.stop(p.header.id, null);
    await fsp.rm(p.file, { force: true });
  }

  /**
   * After recovery: what no record and no journal accounts for (left by a crash of an
   * older version, or by a removal that failed half-way) goes, and is logged: run dirs
   * (with their pins and shm), pod cgroups under the default parent, CNI attachments in
   * the cache. Only nodecri's own dirs and names are looked at.
   */
  async sweepOrphans(): Promise<string[]> {
    const cfg = this.config;
    const removed: string[] = [];
    const known = (id: string) => this.records.has(id);
    const runDirs = path.join(cfg.runroot, 'sandboxes');
    for (const n of await fsp.readdir(runDirs).catch(() => [] as string[])) {
      if (!objectIdPattern.test(n) || known(n)) continue;
      await this.opts.host.removeTree(path.join(runDirs, n)).then(
        () => removed.push(`run dir of sandbox ${n}`),
        (e: unknown) => this.opts.log.error({ err: e, sandboxId: n }, 'cannot remove an orphaned sandbox run dir'),
      );
    }
    const recordDir = path.join(cfg.root, 'sandboxes');
    for (const n of await fsp.readdir(recordDir).catch(() => [] as string[])) {
      // a temp file of an atomic write a crash interrupted
      if (n.startsWith('.') && n.endsWith('.tmp')) {
        await fsp.rm(path.join(recordDir, n), { force: true });
        removed.push(`temp file ${n}`);
      }
    }
    for (const n of await this.opts.network.removeCacheTempFiles()) removed.push(`CNI cache temp file ${n}`);
    for (const a of await this.opts.network.cachedAttachments()) {
      if (known(a.sandboxId)) continue;
      await a.detach().then(
        () => removed.push(`network ${a.network} of sandbox ${a.sandboxId}`),
        (e: unknown) => this.opts.log.error({ err: e, sandboxId: a.sandboxId }, 'cannot release an orphaned pod network'),
      );
    }
    const cgroups = this.opts.host.cgroups;
    const names = new Set<string>();
    for (const dir of new Set(Object.values(cgroups.paths(cfg.cgroup.defaultParent)))) {
      for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) names.add(e.name);
    }
    for (const n of names) {
      const m = /^pod-([0-9a-f]{64})$/.exec(n);
      if (!m || known(m[1])) continue;
      const p = path.posix.join(cfg.cgroup.defaultParent, n);
      await this.opts.ops.undo({ kind: 'cgroup', path: p }).then(
        () => removed.push(`cgroup ${p}`),
        (e: unknown) => this.opts.log.error({ err: e, cgroup: p }, 'cannot remove an orphaned pod cgroup'),
      );
    }
    return removed;
  }

  /**
   * Reloads every sandbox record after a restart. A record whose pins or shm are gone
   * (a reboot, or someone unmounted them) is marked NOTREADY, to be stopped and removed.
   */
  async restore(): Promise<void> {
    const dir = path.join(this.config.root, 'sandboxes');
    let names: string[];
    try {
      names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.json'));
    } catch {
      return;
    }
    const mounts = await this.opts.host.mountPoints();
    for (const n of names) {
      const r = await readJson<SandboxRecord>(path.join(dir, n)).catch(() => null);
      if (!r) continue;
      r.infra ??= null;
      // A record from before start times were kept has none: its pid is never trusted.
      if (r.infra) r.infra.startTime ??= null;
      const infraGone = r.infra !== null && r.state === 'SANDBOX_READY' && !(await this.opts.host.infra.adopt(r.infra.pid, r.infra.startTime));
      const missing = [r.pins.net, r.pins.ipc, r.pins.uts, r.pins.user].filter((p): p is string => p !== null && !mounts.has(p));
      if (r.state === 'SANDBOX_READY' && (infraGone || missing.length > 0 || (r.shm.mounted && !mounts.has(r.shm.path)))) {
        r.state = 'SANDBOX_NOTREADY' as SandboxState;
        r.notReadyReason = missing.length > 0 ? `namespace pins gone: ${missing.join(', ')}` : infraGone ? `infra process ${r.infra!.pid} gone` : 'shm mount gone';
        if (r.shm.mounted && !mounts.has(r.shm.path)) r.shm = { ...r.shm, mounted: false };
        await this.persist(r);
      }
      this.records.set(r.id, r);
      this.index.add(r.id);
      this.names.reserve(r.name, r.id);
    }
    this.opts.log.info({ sandboxes: this.records.size }, 'pod sandboxes restored');
  }
}
