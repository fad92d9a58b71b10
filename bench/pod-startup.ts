/**
 * Pod startup, nodecri against containerd 1.6 + runc in the same run, through the same CRI
 * client, with the same bridge + host-local CNI conflist and the same images from a local
 * registry (busybox, and the pause image containerd needs).
 *
 * - sandbox: RunPodSandbox alone (issue 5), median and p90 over N sequential pods and P in
 *   parallel, and the floor: the CNI chain's own ADD, called directly.
 * - pod: RunPodSandbox + CreateContainer + StartContainer until the container's first log
 *   line is on disk (issue 6), the same way; and the memory each running pod costs the
 *   runtime (daemon growth; for containerd also its shims and pause processes).
 *
 * Usage: node dist/bench/pod-startup.js [sandbox|pod|all] [N=50] [P=20] [--no-containerd]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CriClient } from '../test/helpers/cri-client';
import { debianCniDir, setUpTestCni, type TestCni } from '../test/helpers/cni';
import { makeTempDir, startTestDaemon, type TestDaemon } from '../test/helpers/daemon';
import { buildImage, pushImage } from '../test/helpers/images';
import { fullBusyboxLayer } from '../test/helpers/pod-env';
import { startRegistry, type TestRegistry } from '../test/helpers/registry';
import { podConfig } from '../test/helpers/pods';
import { parseCniConfig } from '../src/network/cni-config';
import { CniPluginRunner } from '../src/network/cni-plugin';
import { pauseBinary } from '../src/linux/infra';
import { containerdInstalled, rssOf, startContainerdCri, type Containerd } from './peers/containerd-cri';
import { type Summary, summarize } from './stats';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const mode = (args[0] ?? 'all') as 'sandbox' | 'pod' | 'all';
const N = Number(args[1] ?? 50);
const P = Number(args[2] ?? 20);
const withContainerd = !process.argv.includes('--no-containerd') && containerdInstalled();

type Stats = Pick<Summary, 'median' | 'p90' | 'n'>;

function stats(ms: number[]): Stats {
  const { median, p90, n } = summarize(ms);
  return { median, p90, n };
}

const fmt = (s: Stats) => `median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms (n=${s.n})`;

interface Runtime {
  name: string;
  client: CriClient;
  /** RSS in KiB of everything the runtime runs for its pods (not the workloads) */
  rss(): number;
}

async function firstLine(file: string): Promise<void> {
  for (;;) {
    try {
      const st = await fsp.stat(file);
      if (st.size > 0) return;
    } catch {
      // not yet created
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function runSandbox(rt: Runtime, logRoot: string): Promise<{ id: string; config: ReturnType<typeof podConfig> & { log_directory: string } }> {
  const base = podConfig();
  const config = { ...base, log_directory: path.join(logRoot, base.metadata.uid) };
  fs.mkdirSync(config.log_directory, { recursive: true });
  const { pod_sandbox_id } = await rt.client.call('RunPodSandbox', { config });
  return { id: pod_sandbox_id, config };
}

async function startPod(rt: Runtime, logRoot: string, image: string): Promise<{ ms: number; parts: number[]; sandbox: string }> {
  const t0 = performance.now();
  const sb = await runSandbox(rt, logRoot);
  const t1 = performance.now();
  const { container_id } = await rt.client.call('CreateContainer', {
    pod_sandbox_id: sb.id,
    sandbox_config: sb.config,
    config: { metadata: { name: 'app', attempt: 0 }, image: { image }, command: ['/bin/sh', '-c', 'echo ready; exec sleep 600'], log_path: 'app.log' },
  });
  const t2 = performance.now();
  await rt.client.call('StartContainer', { container_id });
  const t3 = performance.now();
  await firstLine(path.join(sb.config.log_directory, 'app.log'));
  const t4 = performance.now();
  return { ms: t4 - t0, parts: [t1 - t0, t2 - t1, t3 - t2, t4 - t3], sandbox: sb.id };
}

/** Teardown is not measured; a peer's failure to remove a pod is reported, not fatal. */
async function teardown(rt: Runtime, ids: string[]): Promise<void> {
  for (const id of ids) {
    try {
      await rt.client.call('StopPodSandbox', { pod_sandbox_id: id });
      await rt.client.call('RemovePodSandbox', { pod_sandbox_id: id });
    } catch (e) {
      process.stdout.write(`${rt.name}: teardown of ${id.slice(0, 12)} failed: ${(e as { details?: string }).details ?? String(e)}\n`);
    }
  }
}

interface Result {
  sandboxSeq?: Stats;
  sandboxPar?: Stats;
  podSeq?: Stats;
  podPar?: Stats;
  podParts?: number[];
  rssPerPodKiB?: number;
}

async function measure(rt: Runtime, logRoot: string, image: string): Promise<Result> {
  const r: Result = {};
  if (mode !== 'pod') {
    const ids: string[] = [];
    const seq: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      ids.push((await runSandbox(rt, logRoot)).id);
      seq.push(performance.now() - t0);
    }
    await teardown(rt, ids);
    r.sandboxSeq = stats(seq);
    const par = await Promise.all(
      Array.from({ length: P }, async () => {
        const t0 = performance.now();
        const sb = await runSandbox(rt, logRoot);
        return { ms: performance.now() - t0, id: sb.id };
      }),
    );
    await teardown(
      rt,
      par.map((p) => p.id),
    );
    r.sandboxPar = stats(par.map((p) => p.ms));
  }
  if (mode !== 'sandbox') {
    const seq: Array<{ ms: number; parts: number[]; sandbox: string }> = [];
    for (let i = 0; i < N; i++) seq.push(await startPod(rt, logRoot, image));
    await teardown(
      rt,
      seq.map((p) => p.sandbox),
    );
    r.podSeq = stats(seq.map((p) => p.ms));
    r.podParts = [0, 1, 2, 3].map((k) => stats(seq.map((p) => p.parts[k])).median);
    const before = rt.rss();
    const par = await Promise.all(Array.from({ length: P }, () => startPod(rt, logRoot, image)));
    await new Promise((res) => setTimeout(res, 500));
    r.rssPerPodKiB = (rt.rss() - before) / P;
    await teardown(
      rt,
      par.map((p) => p.sandbox),
    );
    r.podPar = stats(par.map((p) => p.ms));
  }
  return r;
}

async function cniFloor(cni: TestCni, dir: string): Promise<Stats> {
  const net = parseCniConfig(cni.conflistFile, fs.readFileSync(cni.conflistFile, 'utf8'));
  const runner = new CniPluginRunner({ pluginDirs: [debianCniDir], cacheDir: path.join(dir, 'floor-cache'), timeoutMs: 30_000 });
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const ns = `nodecri-bench-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    const req = { containerId: `floor${i}`, netnsPath: `/var/run/netns/${ns}`, ifName: 'eth0', args: {}, capabilities: {} };
    try {
      const t0 = performance.now();
      await runner.add(net, req);
      ms.push(performance.now() - t0);
      await runner.del(net.name, net, req);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }
  return stats(ms);
}

function report(name: string, r: Result): void {
  if (r.sandboxSeq) process.stdout.write(`${name} RunPodSandbox sequential: ${fmt(r.sandboxSeq)}\n${name} RunPodSandbox ${P} parallel: ${fmt(r.sandboxPar!)}\n`);
  if (r.podSeq) {
    process.stdout.write(`${name} pod to first log line sequential: ${fmt(r.podSeq)}\n`);
    process.stdout.write(
      `${name}   median parts: runp ${r.podParts![0].toFixed(1)}, create ${r.podParts![1].toFixed(1)}, start ${r.podParts![2].toFixed(1)}, first line ${r.podParts![3].toFixed(1)} ms\n`,
    );
    process.stdout.write(`${name} pod to first log line ${P} parallel: ${fmt(r.podPar!)}\n`);
    process.stdout.write(`${name} memory per running pod: ${r.rssPerPodKiB!.toFixed(0)} KiB\n`);
  }
}

async function main(): Promise<void> {
  const dir = makeTempDir('nodecri-bench-');
  const cni = setUpTestCni(dir);
  let registry: TestRegistry | null = null;
  let daemon: TestDaemon | null = null;
  let containerd: Containerd | null = null;
  const clients: CriClient[] = [];
  let cgroupParent = '';
  try {
    registry = await startRegistry();
    const busybox = buildImage([fullBusyboxLayer()], { runConfig: { Cmd: ['sh'], Env: ['PATH=/bin'] } });
    await pushImage(registry.host, 'library/busybox', 'bench', busybox);
    const pause = buildImage([[{ name: 'pause', type: 'file', mode: 0o755, mtime: 1_677_628_800, data: fs.readFileSync(pauseBinary()) }]], {
      runConfig: { Entrypoint: ['/pause'] },
    });
    await pushImage(registry.host, 'pause', '3.9', pause);
    const image = `${registry.host}/library/busybox:bench`;

    cgroupParent = `/nodecri-bench-${randomBytes(3).toString('hex')}`;
    daemon = await startTestDaemon({
      dir: path.join(dir, 'nodecri'),
      config: [
        '[cgroup]',
        `default_parent = "${cgroupParent}"`,
        '[network]',
        `cni_plugin_dirs = ["${debianCniDir}"]`,
        '[[image.registries]]',
        `location = "${registry.host}"`,
        'insecure = true',
      ].join('\n'),
      args: ['--cni-config-dir', cni.confDir],
    });
    const nodecri: Runtime = { name: 'nodecri', client: new CriClient(daemon.socket), rss: () => rssOf(new RegExp(`main\\.js daemon .*${daemon!.socket}`)) };
    clients.push(nodecri.client);
    await nodecri.client.call('PullImage', { image: { image } });
    const ours = await measure(nodecri, path.join(dir, 'logs-nodecri'), image);
    report('nodecri', ours);

    let theirs: Result | null = null;
    if (withContainerd) {
      containerd = await startContainerdCri(path.join(dir, 'containerd'), {
        cniConfDir: cni.confDir,
        cniBinDir: debianCniDir,
        pauseImage: `${registry.host}/pause:3.9`,
        registryHost: registry.host,
      });
      const sock = containerd.sock;
      const peer: Runtime = {
        name: 'containerd',
        client: new CriClient(sock),
        rss: () => rssOf(new RegExp(`containerd --config ${path.join(dir, 'containerd')}`)) + rssOf(new RegExp(`containerd-shim-runc-v2.*${sock}`)) + rssOf(/^\/pause/),
      };
      clients.push(peer.client);
      await peer.client.call('PullImage', { image: { image } });
      await peer.client.call('PullImage', { image: { image: `${registry.host}/pause:3.9` } });
      theirs = await measure(peer, path.join(dir, 'logs-containerd'), image);
      report('containerd', theirs);
    } else {
      process.stdout.write('containerd not installed: nodecri only (apt-get install containerd)\n');
    }

    const floor = mode !== 'pod' ? await cniFloor(cni, dir) : null;
    if (floor) process.stdout.write(`CNI floor (bridge + host-local ADD, called directly): ${fmt(floor)}\n`);
    const ratio = (a?: Stats, b?: Stats) => (a && b ? (a.median / b.median).toFixed(2) : 'n/a');
    if (theirs) {
      if (ours.sandboxSeq)
        process.stdout.write(
          `RunPodSandbox nodecri/containerd: sequential ${ratio(ours.sandboxSeq, theirs.sandboxSeq)}x, parallel ${ratio(ours.sandboxPar, theirs.sandboxPar)}x\n`,
        );
      if (ours.podSeq) process.stdout.write(`pod startup nodecri/containerd: sequential ${ratio(ours.podSeq, theirs.podSeq)}x, parallel ${ratio(ours.podPar, theirs.podPar)}x\n`);
    }
    if (floor && ours.sandboxSeq)
      process.stdout.write(`RunPodSandbox nodecri/CNI floor: ${ratio(ours.sandboxSeq, floor)}x (${(ours.sandboxSeq.median - floor.median).toFixed(1)} ms above it)\n`);
    process.stdout.write(
      `${JSON.stringify({ bench: 'pod-startup', N, P, nodecri: ours, containerd: theirs, cniFloor: floor }, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}\n`,
    );
  } catch (e) {
    process.stdout.write(`bench failed: ${(e as { details?: string }).details ?? (e as Error).stack}\n`);
    process.exitCode = 1;
  } finally {
    for (const c of clients) c.close();
    await daemon?.cleanup();
    await containerd?.stop();
    await registry?.stop();
    cni.cleanup();
    for (const d of fs.readdirSync('/sys/fs/cgroup')) {
      try {
        if (cgroupParent) fs.rmdirSync(path.join('/sys/fs/cgroup', d, cgroupParent));
      } catch {
        // not there
      }
    }
    // Whatever a peer left mounted under the bench dir goes before the dir does.
    execFileSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l`]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
