/**
 * nodecri and containerd 1.6 side by side for the benches that measure calls on a running pod
 * (exec, port-forward): one local registry with busybox and the pause image containerd
 * needs, one CNI conflist for both, and each runtime with its own root, state, socket and
 * cgroup parent. The same CriClient class talks to both. cleanup() removes every pod through
 * the API, stops both runtimes and removes what they left (mounts, cgroups, the temp dir).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CriClient } from '../../test/helpers/cri-client';
import { debianCniDir, setUpTestCni, type TestCni } from '../../test/helpers/cni';
import { makeTempDir, startTestDaemon, type TestDaemon } from '../../test/helpers/daemon';
import { buildImage, pushImage } from '../../test/helpers/images';
import { fullBusyboxLayer } from '../../test/helpers/pod-env';
import { podConfig } from '../../test/helpers/pods';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry';
import { pauseBinary } from '../../src/linux/infra';
import { containerdInstalled, startContainerdCri, type Containerd } from './containerd-cri';

export type RuntimeName = 'nodecri' | 'containerd';

export interface BenchRuntime {
  name: RuntimeName;
  client: CriClient;
  /**
   * The runtime's own processes for a pod, whose CPU a call costs: nodecri's keeper and
   * worker; containerd and the shim that serves `sandboxId` (found once the pod runs).
   */
  pids(sandboxId: string): number[];
}

export interface BusyboxPod {
  sandboxId: string;
  containerId: string;
  logFile: string;
}

export interface RuntimePair {
  dir: string;
  image: string;
  runtimes: BenchRuntime[];
  nodecri: TestDaemon;
  /** The PodSandboxConfig runPod sends to `rt` (its cgroup parent and log directory), for a bench that makes its own pods. */
  sandboxConfig(rt: BenchRuntime): ReturnType<typeof podConfig> & { log_directory: string };
  /** Runs a pod with one busybox container running `command`, and waits until it is running. */
  runPod(rt: BenchRuntime, command: string[]): Promise<BusyboxPod>;
  cleanup(): Promise<void>;
}

export interface RuntimePairOptions {
  /** false: nodecri alone (also when containerd is not installed, said on stderr) */
  containerd: boolean;
  /** more TOML for nodecri's config file */
  nodecriConfig?: string;
}

/** CPU time in clock ticks (USER_HZ) of `pid` from /proc/PID/stat: its own, and that of the children it reaped. */
export function cpuTicks(pid: number): { own: number; children: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14-17 of proc(5): utime stime cutime cstime (f[0] is field 3, state)
  return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

/** Clock ticks per second for /proc/PID/stat; 100 on every Linux that Node runs on. */
export const userHz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** The pid of the containerd shim whose command line names `sandboxId` (one shim per pod in containerd 1.6). */
function shimPid(sandboxId: string): number {
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (path.basename(cmd[0] ?? '').startsWith('containerd-shim') && cmd.includes(sandboxId)) return Number(p);
    } catch {
      // gone
    }
  }
  throw new Error(`no containerd shim for pod ${sandboxId}`);
}

async function waitForFile(file: string, pattern: RegExp): Promise<void> {
  for (;;) {
    try {
      if (pattern.test(await fsp.readFile(file, 'utf8'))) return;
    } catch {
      // not yet created
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function runtimeVersions(): Record<string, string> {
  const first = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.split('\n')[0]?.trim() ?? 'not installed';
  return { node: process.version, containerd: first('containerd', ['--version']), runc: first('runc', ['--version']) };
}

/** What the result JSON records of the machine a run was measured on. */
export function machine(): Record<string, unknown> {
  const cgroup = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : fs.existsSync('/sys/fs/cgroup/unified') ? 'v1 hybrid' : 'v1';
  return {
    kernel: os.release(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryMiB: Math.round(os.totalmem() / 1048576),
    cgroup,
    loadavg: os.loadavg(),
    versions: runtimeVersions(),
  };
}

export async function startRuntimePair(opts: RuntimePairOptions): Promise<RuntimePair> {
  const dir = makeTempDir('nodecri-bench-');
  const tag = randomBytes(3).toString('hex');
  const cgroupParents = { nodecri: `/nodecri-bench-${tag}`, containerd: `/nodecri-bench-${tag}-containerd` };
  let cni: TestCni | null = null;
  let registry: TestRegistry | null = null;
  let daemon: TestDaemon | null = null;
  let containerd: Containerd | null = null;
  const runtimes: BenchRuntime[] = [];
  const pods = new Map<BenchRuntime, string[]>();
  let image = '';

  const cleanup = async () => {
    for (const rt of runtimes) {
      for (const id of pods.get(rt) ?? []) {
        try {
          await rt.client.call('StopPodSandbox', { pod_sandbox_id: id });
          await rt.client.call('RemovePodSandbox', { pod_sandbox_id: id });
        } catch (e) {
          process.stderr.write(`${rt.name}: removing pod ${id.slice(0, 12)} failed: ${(e as { details?: string }).details ?? String(e)}\n`);
        }
      }
      rt.client.close();
    }
    await daemon?.cleanup();
    await containerd?.stop();
    await registry?.stop();
    cni?.cleanup();
    for (const parent of Object.values(cgroupParents)) {
      for (const h of fs.readdirSync('/sys/fs/cgroup')) {
        try {
          fs.rmdirSync(path.join('/sys/fs/cgroup', h, parent));
        } catch {
          // not there
        }
      }
    }
    // Whatever a runtime left mounted under the bench dir goes before the dir does.
    execFileSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    cni = setUpTestCni(dir);
    registry = await startRegistry();
    const busybox = buildImage([fullBusyboxLayer()], { runConfig: { Cmd: ['sh'], Env: ['PATH=/bin'] } });
    await pushImage(registry.host, 'library/busybox', 'bench', busybox);
    const pause = buildImage([[{ name: 'pause', type: 'file', mode: 0o755, mtime: 1_677_628_800, data: fs.readFileSync(pauseBinary()) }]], {
      runConfig: { Entrypoint: ['/pause'] },
    });
    await pushImage(registry.host, 'pause', '3.9', pause);
    image = `${registry.host}/library/busybox:bench`;

    daemon = await startTestDaemon({
      dir: path.join(dir, 'nodecri'),
      config: [
        '[cgroup]',
        `default_parent = "${cgroupParents.nodecri}"`,
        '[network]',
        `cni_plugin_dirs = ["${debianCniDir}"]`,
        '[[image.registries]]',
        `location = "${registry.host}"`,
        'insecure = true',
        opts.nodecriConfig ?? '',
      ].join('\n'),
      args: ['--cni-config-dir', cni.confDir],
    });
    const d = daemon;
    const nodecri: BenchRuntime = {
      name: 'nodecri',
      client: new CriClient(d.socket),
      pids: () => [...new Set([d.proc.pid!, d.workerPid])],
    };
    runtimes.push(nodecri);
    await nodecri.client.call('PullImage', { image: { image } });

    if (opts.containerd && !containerdInstalled()) process.stderr.write('containerd is not installed (apt-get install containerd): nodecri alone\n');
    if (opts.containerd && containerdInstalled()) {
      containerd = await startContainerdCri(path.join(dir, 'containerd'), {
        cniConfDir: cni.confDir,
        cniBinDir: debianCniDir,
        pauseImage: `${registry.host}/pause:3.9`,
        registryHost: registry.host,
      });
      const c = containerd;
      const peer: BenchRuntime = { name: 'containerd', client: new CriClient(c.sock), pids: (sandboxId) => [c.proc.pid!, shimPid(sandboxId)] };
      runtimes.push(peer);
      await peer.client.call('PullImage', { image: { image } });
      await peer.client.call('PullImage', { image: { image: `${registry.host}/pause:3.9` } });
    }
  } catch (e) {
    await cleanup();
    throw e;
  }

  return {
    dir,
    image,
    runtimes,
    nodecri: daemon!,
    cleanup,
    sandboxConfig(rt) {
      const base = podConfig({ cgroupParent: rt.name === 'containerd' ? cgroupParents.containerd : '' });
      const config = { ...base, log_directory: path.join(dir, `logs-${rt.name}`, base.metadata.uid) };
      fs.mkdirSync(config.log_directory, { recursive: true });
      return config;
    },
    async runPod(rt, command) {
      const base = podConfig({ cgroupParent: rt.name === 'containerd' ? cgroupParents.containerd : '' });
      const config = { ...base, log_directory: path.join(dir, `logs-${rt.name}`, base.metadata.uid) };
      fs.mkdirSync(config.log_directory, { recursive: true });
      const { pod_sandbox_id } = await rt.client.call('RunPodSandbox', { config });
      pods.set(rt, [...(pods.get(rt) ?? []), pod_sandbox_id]);
      const { container_id } = await rt.client.call('CreateContainer', {
        pod_sandbox_id,
        sandbox_config: config,
        config: { metadata: { name: 'bench', attempt: 0 }, image: { image }, command, log_path: 'bench.log' },
      });
      await rt.client.call('StartContainer', { container_id });
      return { sandboxId: pod_sandbox_id, containerId: container_id, logFile: path.join(config.log_directory, 'bench.log') };
    },
  };
}

/** Waits until the container's CRI log has a line matching `pattern` (the bench's own timeout bounds it). */
export function waitForLog(pod: BusyboxPod, pattern: RegExp): Promise<void> {
  return waitForFile(pod.logFile, pattern);
}
