/**
 * The composition root of the daemon: load the config, probe the host once, build the
 * domain, start the CRI server (and the metrics endpoint and tracing when configured),
 * then serve until SIGTERM/SIGINT (graceful stop) and re-read the config on SIGHUP.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, loadConfig, type Config, type LoadOptions } from './config';
import { planReload } from './config/reload';
import { startCriServer, type CriServer } from './cri/server';
import type { CriDeps } from './cri/deps';
import { checkAddon } from './native/binding';
import { kernelFloorError, probeSyscalls, uname } from './native/probe';
import { ImageService } from './image/service';
import { CniConfigWatcher } from './network/cni-config';
import { CniPluginRunner } from './network/cni-plugin';
import { PodNetwork } from './network/pod-network';
import { EventBus } from './domain/events';
import { createCgroupManager } from './linux/cgroups';
import { favorDynmods } from './linux/cgroups/tuning';
import { groupId } from './linux/groups';
import { podHost } from './linux/pod-host';
import { lockStateDirs, StateDirsBusyError } from './linux/state-lock';
import { KeeperLink } from './linux/keeper';
import { bringUpLoopback } from './native/namespaces';
import { SandboxRecords } from './sandbox/records';
import { SandboxService } from './sandbox/service';
import { ContainerService } from './container/service';
import { containerHost } from './linux/container-host';
import { createLogger, logWritten, type Logger } from './obs/logger';
import { createMetrics } from './obs/metrics';
import { startMetricsServer, type MetricsServer } from './obs/metrics-server';
import { StreamingServer, readStreamingTls } from './streaming/server';
import { startTracing, type Tracing } from './obs/tracing';
import { parseFaults, stallLoop } from './util/faults';
import { takeHandoff, writeHandoff } from './handoff';
import { Operations } from './domain/operations';
import { undoer } from './domain/undoer';
import { OpJournals } from './state/op-journal';
import { removeTree, unmountIfMounted } from './linux/tree';
import { daemonReexec } from './native/reexec';
import { writeJsonAtomic } from './state/atomic-file';
import { criApiVersion, packageVersion, runtimeName } from './version';

export interface Daemon {
  config: Config;
  log: Logger;
  /** Graceful stop: no new calls, in-flight ones finish within the configured bound. */
  stop(): Promise<void>;
  /**
   * Re-reads the config files and applies the keys that are safe live (config/reload.ts);
   * every other key keeps its running value, and each one that changed is logged as
   * needing a restart.
   */
  reload(): Promise<void>;
  /**
   * Graceful restart or upgrade: stops serving, writes down every exit and log line in
   * hand, and re-execs the daemon's program in place (same pid: containers stay children).
   * Returns only if the re-exec failed.
   */
  handOver(): Promise<void>;
}

/** Where the running daemon's pid is kept, for `nodecri restart`. */
export function pidFile(runroot: string): string {
  return path.join(runroot, 'nodecri.pid');
}

/** The gid `[api] socket_group` names, checked before anything starts. */
async function socketGroupId(config: Config, sourceOf: (at: string[]) => string): Promise<number | null> {
  const group = config.api.socketGroup;
  if (group === null) return null;
  const gid = await groupId(group);
  if (gid === null) {
    const at = ['api', 'socket_group'];
    throw ConfigError.atKey(sourceOf(at), at, `no group named ${JSON.stringify(group)} in /etc/group (a group known only to NSS is given by its gid)`);
  }
  return gid;
}

export async function startDaemon(opts: LoadOptions): Promise<Daemon> {
  const loaded = await loadConfig(opts);
  let config = loaded.config;
  const socketGid = await socketGroupId(loaded.config, loaded.sourceOf);
  const log = createLogger(config.logLevel);
  const faults = parseFaults(process.env.NODECRI_FAULTS);
  // The addon is loaded on first use: load it now, and refuse a build that lacks an export
  // some facility file declares, before anything is touched rather than in a request.
  try {
    checkAddon();
  } catch (e) {
    log.fatal({ err: e }, (e as Error).message);
    throw e;
  }
  const host = uname();
  // The container child needs these syscalls and cannot say so itself (it would leak fds
  // or resolve paths unconfined): refuse to start on an older kernel, naming what lacks.
  const floor = kernelFloorError(probeSyscalls(), host.release);
  if (floor !== null) {
    log.fatal({ kernel: host.release }, floor);
    throw new Error(floor);
  }
  log.info({ version: packageVersion, kernel: host.release, machine: host.machine, configFiles: loaded.sources }, 'starting nodecri');

  // Persistent state and images under root; runtime state (pins, sockets) under runroot.
  await fsp.mkdir(config.root, { recursive: true, mode: 0o711 });
  await fsp.mkdir(config.runroot, { recursive: true, mode: 0o711 });
  const locks = await lockStateDirs([config.root, config.runroot]).catch((e: unknown) => {
    if (e instanceof StateDirsBusyError) log.fatal({ lock: e.file, holder: e.holder }, e.message);
    throw e;
  });
  // Before anything could spawn a child that would inherit the fds it names.
  const handoff = await takeHandoff();

  // Under nodecri-keeper (see main.ts) unless it is turned off: the link to it.
  const keeper = KeeperLink.fromEnv(config.runroot, log.child({ component: 'keeper' }));

  const metrics = createMetrics();
  const tracing: Tracing = startTracing({ ...config.tracing, serviceVersion: packageVersion });
  const cni = new CniConfigWatcher(config.network.cniConfigDir, log.child({ component: 'cni' }));
  await cni.start();
  let images: ImageService;
  try {
    images = await ImageService.open({
      root: config.root,
      config: () => config.image,
      log: log.child({ component: 'image' }),
      metrics,
      userAgent: `${runtimeName}/${packageVersion}`,
      daemon: true,
    });
  } catch (e) {
    cni.stop();
    await tracing.shutdown();
    throw e;
  }

  // No child-subreaper flag and no orphan sweep: every process the daemon makes is its own
  // child, watched by the pidfd its clone returned (exec processes too: CLONE_PARENT from
  // the intermediate), and reaped by that watcher (a failed spawn's processes by the addon,
  // the strays of an exec whose intermediate died by the stop: reapStrays). Orphans of our children's
  // children (a CNI plugin's, an exec's in the host PID namespace) go to the keeper, the
  // subreaper above the daemon (to init without one): a subreaper here would have to reap
  // them all, and could only tell them from our own unreaped children by racing their
  // watchers.
  const { manager: cgroups, layout } = await createCgroupManager({ deviceEnforcement: config.cgroup.deviceEnforcement });
  log.info({ cgroupMode: layout.mode, deviceControl: cgroups.deviceControl }, 'cgroup layout detected');
  if (config.cgroup.favorDynmods) await favorDynmods(log);
  const events = new EventBus();
  const cniRunner = new CniPluginRunner({
    pluginDirs: config.network.cniPluginDirs,
    cacheDir: path.join(config.root, 'cni-cache'),
    timeoutMs: 60_000,
  });
  const podNetwork = new PodNetwork(cni, cniRunner, bringUpLoopback, log.child({ component: 'network' }));
  const journals = new OpJournals(path.join(config.runroot, 'ops'));
  const ops = new Operations(
    journals,
    undoer({
      removeTree,
      unmountIfMounted,
      cgroups,
      detachNetwork: (a) => podNetwork.detachRecorded(a.config, a.request),
      releaseRootfs: (id) => images.releaseRootfs(id),
    }),
    faults,
  );
  // Containers read the pods' records (a container is made in a ready pod); the sandbox
  // service writes them and stops and removes a pod's containers through the container
  // service. So: the records, then the containers, then the sandboxes.
  const sandboxRecords = new SandboxRecords();
  const containers = new ContainerService({
    config: () => config,
    log: log.child({ component: 'container' }),
    events,
    images,
    sandboxes: sandboxRecords,
    host: containerHost(cgroups),
    ops,
    metrics,
    keeper,
  });
  const sandboxes = new SandboxService({
    config: () => config,
    log: log.child({ component: 'sandbox' }),
    events,
    host: podHost(cgroups),
    network: podNetwork,
    ops,
    records: sandboxRecords,
    containers,
    metrics,
  });
  await recoverState({ journals, sandboxes, containers, handoff, keeper, log: log.child({ component: 'recovery' }) });

  // Listening before the CRI socket serves, so that every URL an Exec, Attach or
  // PortForward answers is served. Its tokens live in this process only: a restart (the
  // graceful re-exec too) invalidates the URLs not yet used, and cuts the streams open.
  const streaming = await StreamingServer.start({
    address: config.streaming.address,
    tls: await readStreamingTls(config.streaming),
    domain: {
      execStream: (id, cmd, io, signal) => containers.execStream(id, cmd, io, signal),
      attach: (id, io, signal) => containers.attach(id, io, signal),
      portForward: (id, port) => sandboxes.portForward(id, port),
    },
    log: log.child({ component: 'streaming' }),
    cache: { consumeLagMs: faults.delayMs('StreamToken') },
  }).catch(async (e: unknown) => {
    images.close();
    cni.stop();
    await tracing.shutdown();
    throw e;
  });

  let podCidr = '';
  const deps: CriDeps = {
    runtime: {
      name: runtimeName,
      version: packageVersion,
      apiVersion: criApiVersion,
      cgroupDriver: config.cgroup.driver,
      effectiveConfig: () => config,
    },
    network: {
      status: () => cni.status(),
      podCidr: () => podCidr,
      setPodCidr: (cidr) => {
        podCidr = cidr;
      },
    },
    sandboxes,
    images,
    containers,
    events,
    streaming,
  };

  let metricsServer: MetricsServer | null = null;
  let cri: CriServer;
  try {
    if (config.metrics.enabled) metricsServer = await startMetricsServer(config.metrics.address, metrics.registry);
    cri = await startCriServer({ socketPath: config.listen, socketGid, deps, log, metrics, faults });
  } catch (e) {
    await streaming.close();
    await metricsServer?.close();
    images.close();
    cni.stop();
    await tracing.shutdown();
    throw e;
  }
  const startedAt = Date.now();
  await writeJsonAtomic(pidFile(config.runroot), { pid: process.pid, startedAt });
  keeper?.ready();
  log.info(
    { socket: config.listen, metrics: metricsServer?.address ?? null, streaming: streaming.baseUrl, reexec: process.env.NODECRI_REEXEC === '1', keeper: keeper !== null },
    `nodecri ready, listening on ${config.listen}`,
  );

  let stopping: Promise<void> | null = null;
  const server = cri;
  return {
    get config() {
      return config;
    },
    log,
    stop() {
      stopping ??= (async () => {
        log.info({ timeoutSeconds: config.shutdownTimeout }, 'shutting down');
        await server.shutdown(config.shutdownTimeout * 1000);
        await streaming.close();
        await metricsServer?.close();
        images.close();
        cni.stop();
        await tracing.shutdown();
        await fsp.rm(pidFile(config.runroot), { force: true });
        locks.close();
        log.info('nodecri stopped');
      })();
      return stopping;
    },
    async handOver() {
      if (stopping) return;
      stopping = (async () => {
        log.info('graceful restart: handing the containers over to a new daemon image');
        // Everything that must be awaited comes first, while exits are still reaped and
        // recorded and logs still read.
        await server.shutdown(config.shutdownTimeout * 1000);
        await streaming.close();
        await metricsServer?.close();
        cni.stop();
        images.close();
        await tracing.shutdown();
        await logWritten(log);
        // Exit watching and log reading stop here, in one synchronous step, and never start
        // again in this image: an exit or a line from now on is the new image's.
        const handed = await containers.prepareHandoff();
        await stallLoop(faults.delayMs('handoff'));
        const handoffEnv = await writeHandoff(config.runroot, handed).catch((e: unknown) => {
          // The new image then opens the FIFOs again by path; the kept fds still hold the pipes.
          log.warn({ err: e }, 'cannot write the handoff; the new image reopens the log FIFOs');
          return {};
        });
        log.info({ containers: Object.keys(handed.containers).length }, 're-executing');
        await logWritten(log);
        const env = Object.entries({ ...process.env, NODECRI_REEXEC: '1', ...locks.keepAcrossExec(), ...keeper?.keepAcrossExec(), ...handoffEnv }).map(
          ([k, v]) => `${k}=${v ?? ''}`,
        );
        daemonReexec(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env);
      })();
      try {
        await stopping;
      } catch (e) {
        log.fatal({ err: e }, 're-exec failed; exiting (containers keep running and will be adopted)');
        process.exit(1);
      }
    },
    async reload() {
      try {
        const next = await loadConfig(opts);
        const plan = planReload(config, next.config, next.sourceOf);
        for (const { key, source } of plan.needRestart) {
          log.warn({ key, source }, `${key} changed (in ${source}) but takes effect only at a restart (nodecri restart); keeping the running value`);
        }
        if (plan.config.logLevel !== config.logLevel) log.level = plan.config.logLevel;
        config = plan.config;
        log.info({ applied: plan.applied, needRestart: plan.needRestart.map((k) => k.key), logLevel: config.logLevel, configFiles: next.sources }, 'configuration reloaded');
      } catch (e) {
        log.error({ err: e }, 'configuration reload failed; keeping the current one');
      }
    },
  };
}

/**
 * Before serving, after a crash or a restart: operations a crash interrupted are undone
 * (creates whose record never reached the disk) or finished (stops and removals), the
 * records are loaded, then whatever no record accounts for is swept away. Every action is
 * logged; what cannot be undone now stays journaled for the next start.
 */
async function recoverState(opts: {
  journals: OpJournals;
  sandboxes: SandboxService;
  containers: ContainerService;
  handoff: Parameters<ContainerService['restore']>[0];
  keeper: KeeperLink | null;
  log: Logger;
}): Promise<void> {
  const { journals, sandboxes, containers, handoff, keeper, log } = opts;
  // Nothing holds the event loop open yet (no server; exit watchers are unref'd): a
  // removal waiting on a container's exit would otherwise end the process.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    await recoverOperations(journals, sandboxes, containers, handoff, keeper, log);
  } finally {
    clearInterval(keepAlive);
  }
}

async function recoverOperations(
  journals: OpJournals,
  sandboxes: SandboxService,
  containers: ContainerService,
  handoff: Parameters<ContainerService['restore']>[0],
  keeper: KeeperLink | null,
  log: Logger,
): Promise<void> {
  const pending = await journals.pending();
  const later = [];
  // Newest first: a container made in a pod that was being made goes before its pod.
  for (const p of [...pending].reverse()) {
    const { op, id } = p.header;
    if (op === 'RunPodSandbox' || op === 'CreateContainer' || op === 'StartContainer') {
      const r = op === 'RunPodSandbox' ? await sandboxes.rollBack(p) : await containers.rollBack(p);
      if (r.failed.length > 0) log.error({ op, id, failed: r.failed }, `could not undo all of an interrupted ${op}; will retry at the next start`);
      else
        log.warn(
          { op, id, undone: r.committed ? 0 : p.undos.length },
          r.committed ? `${op} of ${id} was complete when the daemon stopped` : `rolled back an interrupted ${op} of ${id}`,
        );
    } else {
      later.push(p);
    }
  }
  await sandboxes.restore();
  // The keeper closes the FIFO fds it holds that this restore does not hold again.
  keeper?.syncBegin();
  await containers.restore(handoff);
  keeper?.syncEnd();
  await keeper?.restored();
  for (const p of later) {
    const { op, id } = p.header;
    const svc = op === 'RemoveContainer' ? containers : sandboxes;
    await svc.rollForward(p).then(
      () => log.warn({ op, id }, `finished an interrupted ${op} of ${id}`),
      (e: unknown) => log.error({ err: e, op, id }, `could not finish an interrupted ${op} of ${id}; will retry at the next start`),
    );
  }
  const swept = [...(await containers.sweepOrphans()), ...(await sandboxes.sweepOrphans())];
  if (swept.length > 0) log.warn({ removed: swept }, `removed ${swept.length} orphaned objects no record accounts for`);
}
