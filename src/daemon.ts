/**
 * The composition root of the daemon: load the config, probe the host once, build the
 * domain, start the CRI server (and the metrics endpoint and tracing when configured),
 * then serve until SIGTERM/SIGINT (graceful stop) and re-read the config on SIGHUP.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, loadConfig, type Config, type LoadOptions } from './config';
import { startCriServer, type CriServer } from './cri/server';
import type { CriDeps } from './cri/deps';
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
import { bringUpLoopback } from './native/namespaces';
import { SandboxService } from './sandbox/service';
import { ContainerService } from './container/service';
import { containerHost } from './linux/container-host';
import { createLogger, type Logger } from './obs/logger';
import { createMetrics } from './obs/metrics';
import { startMetricsServer, type MetricsServer } from './obs/metrics-server';
import { startTracing, type Tracing } from './obs/tracing';
import { parseFaults } from './util/faults';
import { daemonReexec } from './native/reexec';
import { writeJsonAtomic } from './state/atomic-file';
import { criApiVersion, packageVersion, runtimeName } from './version';

export interface Daemon {
  config: Config;
  log: Logger;
  /** Graceful stop: no new calls, in-flight ones finish within the configured bound. */
  stop(): Promise<void>;
  /** Re-reads the config files and applies what can change live (the log level). */
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
  // the intermediate), and reaped by that watcher alone. Orphans of our children's
  // children (a CNI plugin's, an exec's in the host PID namespace) go to init, as they
  // would under any other parent; a subreaper would have to reap them all, and could only
  // tell them from our own unreaped children by racing their watchers.
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
  const sandboxes = new SandboxService({
    config: () => config,
    log: log.child({ component: 'sandbox' }),
    events,
    host: podHost(cgroups),
    network: podNetwork,
  });
  await sandboxes.restore();
  const containers = new ContainerService({
    config: () => config,
    log: log.child({ component: 'container' }),
    events,
    images,
    sandboxes,
    host: containerHost(cgroups),
  });
  await containers.restore();

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
  };

  let metricsServer: MetricsServer | null = null;
  let cri: CriServer | null = null;
  try {
    if (config.metrics.enabled) metricsServer = await startMetricsServer(config.metrics.address, metrics.registry);
    cri = await startCriServer({ socketPath: config.listen, socketGid, deps, log, metrics, faults: parseFaults(process.env.NODECRI_FAULTS) });
  } catch (e) {
    await metricsServer?.close();
    images.close();
    cni.stop();
    await tracing.shutdown();
    throw e;
  }
  const startedAt = Date.now();
  await writeJsonAtomic(pidFile(config.runroot), { pid: process.pid, startedAt });
  log.info(
    { socket: config.listen, metrics: metricsServer?.address ?? null, reexec: process.env.NODECRI_REEXEC === '1' },
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
        await server.shutdown(config.shutdownTimeout * 1000);
        await metricsServer?.close();
        cni.stop();
        await containers.prepareHandoff();
        images.close();
        await tracing.shutdown();
        await new Promise<void>((resolve) => log.flush(() => resolve()));
        const env = Object.entries({ ...process.env, NODECRI_REEXEC: '1', ...locks.keepAcrossExec() }).map(([k, v]) => `${k}=${v ?? ''}`);
        // Synchronous from here: no exit can be reaped between the handoff and the exec.
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
        if (next.config.logLevel !== config.logLevel) log.level = next.config.logLevel;
        config = next.config;
        log.info({ logLevel: config.logLevel, configFiles: next.sources }, 'configuration reloaded');
      } catch (e) {
        log.error({ err: e }, 'configuration reload failed; keeping the current one');
      }
    },
  };
}
