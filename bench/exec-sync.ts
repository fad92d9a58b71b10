/**
 * An exec-probe load (kubernetes#82440): ExecSync of `true` in one running container, in a
 * loop for D seconds. Reports the median and p90 latency, the daemon's RSS and CPU time
 * before and after, and its V8 heap (from /metrics) sampled along the way, which must level
 * off rather than grow without bound.
 *
 * Usage: node dist/bench/exec-sync.js [seconds=60]
 */
import fs from 'node:fs';
import path from 'node:path';
import { busyboxRef, startPodEnv } from '../test/helpers/pod-env';
import { podConfig } from '../test/helpers/pods';
import { quantile } from './stats';

const seconds = Number(process.argv[2] ?? 60);

function procStats(pid: number): { rssKiB: number; cpuMs: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return { rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)![1]), cpuMs: (ticks * 1000) / 100 };
}

async function heapUsed(address: string): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const env = await startPodEnv({ extraConfig: '[metrics]\nenabled = true\naddress = "127.0.0.1:0"\n' });
  try {
    const pod = podConfig();
    const config = { ...pod, log_directory: path.join(env.logDir, pod.metadata.uid) };
    const { pod_sandbox_id } = await env.client.call('RunPodSandbox', { config });
    const { container_id } = await env.client.call('CreateContainer', {
      pod_sandbox_id,
      sandbox_config: config,
      config: { metadata: { name: 'probe-target' }, image: { image: busyboxRef }, command: ['sleep', '3600'], log_path: 'c.log' },
    });
    await env.client.call('StartContainer', { container_id });
    const pid = env.daemon.workerPid;
    const metrics = env.daemon.metricsAddress!;
    for (let i = 0; i < 50; i++) await env.client.call('ExecSync', { container_id, cmd: ['true'], timeout: '10' }); // warm-up
    const before = procStats(pid);
    const heap: number[] = [await heapUsed(metrics)];
    const rss: number[] = [before.rssKiB];
    const latencies: number[] = [];
    const end = performance.now() + seconds * 1000;
    let nextSample = performance.now() + (seconds * 1000) / 6;
    while (performance.now() < end) {
      const t0 = performance.now();
      const r = await env.client.call('ExecSync', { container_id, cmd: ['true'], timeout: '10' });
      latencies.push(performance.now() - t0);
      if (r.exit_code !== 0) throw new Error(`exec exit ${r.exit_code}`);
      if (performance.now() > nextSample) {
        heap.push(await heapUsed(metrics));
        rss.push(procStats(pid).rssKiB);
        nextSample += (seconds * 1000) / 6;
      }
    }
    const after = procStats(pid);
    heap.push(await heapUsed(metrics));
    const q = (p: number) => quantile(latencies, p).toFixed(2);
    const mib = (b: number) => (b / 1048576).toFixed(1);
    process.stdout.write(`ExecSync true: ${latencies.length} calls in ${seconds}s, median ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms\n`);
    process.stdout.write(
      `daemon RSS ${(before.rssKiB / 1024).toFixed(1)} MiB -> ${(after.rssKiB / 1024).toFixed(1)} MiB; CPU ${((after.cpuMs - before.cpuMs) / (seconds * 10)).toFixed(1)}% of a core over the run\n`,
    );
    process.stdout.write(`V8 heap used (MiB) along the run: ${heap.map(mib).join(' -> ')}\n`);
    process.stdout.write(`RSS (MiB) along the run: ${[...rss, after.rssKiB].map((k) => (k / 1024).toFixed(1)).join(' -> ')}\n`);
    process.stdout.write(
      `${JSON.stringify({ bench: 'exec-sync', seconds, calls: latencies.length, medianMs: Number(q(0.5)), p90Ms: Number(q(0.9)), rssKiB: [before.rssKiB, after.rssKiB], heapBytes: heap })}\n`,
    );
  } finally {
    await env.cleanup();
  }
}

void main();
