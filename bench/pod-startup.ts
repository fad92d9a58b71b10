/**
 * Pod start-up, nodecri against containerd 1.6 + runc, both running at once and interleaved
 * (bench/peers/runtimes.ts: the same CRI client, CNI conflist, images and a cgroup parent
 * each). A pod start is RunPodSandbox + CreateContainer + StartContainer until the
 * container's first line is in its CRI log.
 *
 * - sequential: N pod starts per runtime, one at a time, alternating A B A B (the order
 *   swapped every round), after W uncounted warm-up starts each; per phase and total.
 *   For nodecri, each step of the three RPCs: the daemon's step histogram
 *   (nodecri_step_duration_seconds) is read after every start, so the difference of its
 *   `_sum` is that start's exact time in the step, and the medians are exact.
 * - at once: P pods started together (each P of the list, default 10 and 20), per runtime
 *   in turn, R rounds: the median per pod.
 * - CPU per pod start, for both: the runtime's process trees (nodecri: keeper, worker and
 *   every child they ran and reaped, CNI plugins included; containerd: the daemon, every
 *   shim, runc, pause and CNI, by the same rule), and the whole machine (/proc/stat).
 * - the floor, measured in the same run: the CNI chain's ADD called directly plus a
 *   container run to exit by the addon with the least spec (bench/peers/floors.ts).
 *
 * Stop and Remove are not timed here (bench/container-ops would). Every sample goes to the
 * JSON with its timestamp.
 *
 * Usage: node dist/bench/pod-startup.js [N=30] [P=10,20] [--rounds=R] [--warmup=W]
 *        [--out=FILE] [--no-containerd]
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildRootfs } from '../test/helpers/rootfs';
import { addonRunUs, cniAddFloorMs, minimalSpec } from './peers/floors';
import { type BenchRuntime, machine, machineBusyTicks, startRuntimePair, treeCpuTicks, userHz, type RuntimePair } from './peers/runtimes';
import { type Summary, median, summarize } from './stats';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const N = Number(positional[0] ?? 30);
const Ps = (positional[1] ?? '10,20').split(',').map(Number);
const rounds = Number(flag('rounds', '3'));
const warmup = Number(flag('warmup', '3'));
const outFile = flag('out', '');
const withContainerd = !process.argv.includes('--no-containerd');

interface PodStart {
  at: string;
  runtime: string;
  totalMs: number;
  phasesMs: { runPodSandbox: number; createContainer: number; startContainer: number; firstLine: number };
  /** the runtime's process trees' CPU for this start, ms */
  runtimeCpuMs: number;
  /** the machine's busy CPU during this start, ms */
  machineCpuMs: number;
  /** nodecri only: ms in each step, "Operation/step" */
  stepsMs?: Record<string, number>;
  sandboxId: string;
}

async function firstLine(file: string): Promise<void> {
  for (;;) {
    try {
      if (fs.statSync(file).size > 0) return;
    } catch {
      // not yet created
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

const ticksToMs = (t: number) => (t * 1000) / userHz;

/** `_sum` of every series of the step histogram on nodecri's /metrics, by "Operation/step". */
async function stepSums(metricsAddress: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const sums = new Map<string, number>();
  for (const m of text.matchAll(/^nodecri_step_duration_seconds_sum\{operation="([^"]+)",step="([^"]+)"\} (\S+)$/gm)) sums.set(`${m[1]}/${m[2]}`, Number(m[3]));
  return sums;
}

async function startPod(pair: RuntimePair, rt: BenchRuntime): Promise<Omit<PodStart, 'runtimeCpuMs' | 'machineCpuMs' | 'at' | 'runtime'>> {
  const config = pair.podConfig(rt);
  const t0 = performance.now();
  const { pod_sandbox_id } = await rt.client.call('RunPodSandbox', { config });
  const t1 = performance.now();
  const { container_id } = await rt.client.call('CreateContainer', {
    pod_sandbox_id,
    sandbox_config: config,
    config: { metadata: { name: 'app', attempt: 0 }, image: { image: pair.image }, command: ['/bin/sh', '-c', 'echo ready; exec sleep 600'], log_path: 'app.log' },
  });
  const t2 = performance.now();
  await rt.client.call('StartContainer', { container_id });
  const t3 = performance.now();
  await firstLine(path.join(config.log_directory, 'app.log'));
  const t4 = performance.now();
  return { totalMs: t4 - t0, phasesMs: { runPodSandbox: t1 - t0, createContainer: t2 - t1, startContainer: t3 - t2, firstLine: t4 - t3 }, sandboxId: pod_sandbox_id };
}

/** Teardown is not measured; a runtime's failure to remove a pod is reported, not fatal. */
async function teardown(rt: BenchRuntime, ids: string[]): Promise<void> {
  for (const id of ids) {
    try {
      await rt.client.call('StopPodSandbox', { pod_sandbox_id: id });
      await rt.client.call('RemovePodSandbox', { pod_sandbox_id: id });
    } catch (e) {
      process.stdout.write(`${rt.name}: teardown of ${id.slice(0, 12)} failed: ${(e as { details?: string }).details ?? String(e)}\n`);
    }
  }
}

async function sequentialStart(pair: RuntimePair, rt: BenchRuntime): Promise<PodStart> {
  const metrics = rt.name === 'nodecri' ? pair.nodecri.metricsAddress : null;
  const before = metrics ? await stepSums(metrics) : null;
  const cpu0 = treeCpuTicks(pair.treeRoots(rt));
  const m0 = machineBusyTicks();
  const at = new Date().toISOString();
  const s = await startPod(pair, rt);
  const m1 = machineBusyTicks();
  const cpu1 = treeCpuTicks(pair.treeRoots(rt));
  let stepsMs: Record<string, number> | undefined;
  if (metrics && before) {
    stepsMs = {};
    for (const [k, v] of await stepSums(metrics)) {
      const d = (v - (before.get(k) ?? 0)) * 1000;
      if (d > 0) stepsMs[k] = d;
    }
  }
  return { at, runtime: rt.name, ...s, runtimeCpuMs: ticksToMs(cpu1 - cpu0), machineCpuMs: ticksToMs(m1 - m0), stepsMs };
}

interface Batch {
  at: string;
  runtime: string;
  pods: number;
  perPodMs: number[];
  runtimeCpuMsPerPod: number;
  machineCpuMsPerPod: number;
}

async function batchStart(pair: RuntimePair, rt: BenchRuntime, p: number): Promise<Batch> {
  const at = new Date().toISOString();
  const cpu0 = treeCpuTicks(pair.treeRoots(rt));
  const m0 = machineBusyTicks();
  const starts = await Promise.all(Array.from({ length: p }, () => startPod(pair, rt)));
  const m1 = machineBusyTicks();
  const cpu1 = treeCpuTicks(pair.treeRoots(rt));
  await teardown(
    rt,
    starts.map((s) => s.sandboxId),
  );
  return { at, runtime: rt.name, pods: p, perPodMs: starts.map((s) => s.totalMs), runtimeCpuMsPerPod: ticksToMs(cpu1 - cpu0) / p, machineCpuMsPerPod: ticksToMs(m1 - m0) / p };
}

const fmt = (s: Summary) => `median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)}, p99 ${s.p99.toFixed(1)} (n=${s.n})`;

async function main(): Promise<void> {
  const pair = await startRuntimePair({ containerd: withContainerd, nodecriConfig: '[metrics]\nenabled = true\naddress = "127.0.0.1:0"' });
  const runtimes = pair.runtimes;
  try {
    // Warm-up, not counted: images in the page cache, JIT, the first CNI bridge set-up.
    for (let i = 0; i < warmup; i++) for (const rt of runtimes) await teardown(rt, [(await startPod(pair, rt)).sandboxId]);

    const seq: PodStart[] = [];
    for (let i = 0; i < N; i++) {
      const order = i % 2 === 0 ? runtimes : [...runtimes].reverse();
      for (const rt of order) seq.push(await sequentialStart(pair, rt));
    }
    for (const rt of runtimes) {
      await teardown(
        rt,
        seq.filter((s) => s.runtime === rt.name).map((s) => s.sandboxId),
      );
    }

    const batches: Batch[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const p of Ps) {
        const order = r % 2 === 0 ? runtimes : [...runtimes].reverse();
        for (const rt of order) batches.push(await batchStart(pair, rt, p));
      }
    }

    // Floors, in the same run, after the runtimes' work (their pods are gone).
    const cniMs = await cniAddFloorMs(pair.cni, pair.dir, N);
    const rootfs = buildRootfs(path.join(pair.dir, 'floor-rootfs'));
    const spawnMs: number[] = [];
    for (let i = 0; i < N + 5; i++) {
      const us = await addonRunUs(minimalSpec(rootfs, ['/bin/true']));
      if (i >= 5) spawnMs.push(us / 1000);
    }
    const floorMs = median(cniMs) + median(spawnMs);

    const out: Record<string, unknown> = {
      bench: 'pod-startup',
      N,
      P: Ps,
      rounds,
      warmup,
      machine: machine(),
      floor: { cniAddMs: cniMs, addonSpawnMs: spawnMs, medianMs: floorMs },
      sequential: seq,
      batches,
    };
    const sum: Record<string, Record<string, unknown>> = {};
    for (const rt of runtimes) {
      const mine = seq.filter((s) => s.runtime === rt.name);
      const total = summarize(mine.map((s) => s.totalMs));
      const phases = Object.fromEntries((['runPodSandbox', 'createContainer', 'startContainer', 'firstLine'] as const).map((k) => [k, median(mine.map((s) => s.phasesMs[k]))]));
      const row: Record<string, unknown> = {
        sequential: total,
        phases,
        runtimeCpuMsPerPod: median(mine.map((s) => s.runtimeCpuMs)),
        machineCpuMsPerPod: median(mine.map((s) => s.machineCpuMs)),
      };
      for (const p of Ps) {
        const b = batches.filter((x) => x.runtime === rt.name && x.pods === p);
        row[`atOnce${p}`] = {
          perPod: summarize(b.flatMap((x) => x.perPodMs)),
          runtimeCpuMsPerPod: median(b.map((x) => x.runtimeCpuMsPerPod)),
          machineCpuMsPerPod: median(b.map((x) => x.machineCpuMsPerPod)),
        };
      }
      if (rt.name === 'nodecri') {
        const keys = [...new Set(mine.flatMap((s) => Object.keys(s.stepsMs ?? {})))].sort();
        row.stepsMedianMs = Object.fromEntries(keys.map((k) => [k, median(mine.map((s) => s.stepsMs?.[k] ?? 0))]));
      }
      sum[rt.name] = row;
    }
    out.summary = sum;

    const w = (s: string) => process.stdout.write(`${s}\n`);
    w(`\npod start to first log line; ${N} sequential per runtime (interleaved), ${Ps.join(' and ')} at once x ${rounds} rounds; ms`);
    for (const rt of runtimes) {
      const r = sum[rt.name]!;
      const ph = r.phases as Record<string, number>;
      w(`${rt.name}: sequential ${fmt(r.sequential as Summary)}`);
      w(
        `  phases (medians): RunPodSandbox ${ph.runPodSandbox!.toFixed(1)}, CreateContainer ${ph.createContainer!.toFixed(1)}, StartContainer ${ph.startContainer!.toFixed(1)}, first line ${ph.firstLine!.toFixed(1)}`,
      );
      w(`  CPU per pod start: runtime ${(r.runtimeCpuMsPerPod as number).toFixed(1)} ms, machine ${(r.machineCpuMsPerPod as number).toFixed(1)} ms`);
      for (const p of Ps) {
        const a = r[`atOnce${p}`] as { perPod: Summary; runtimeCpuMsPerPod: number; machineCpuMsPerPod: number };
        w(`  ${p} at once: per pod ${fmt(a.perPod)}; CPU per pod: runtime ${a.runtimeCpuMsPerPod.toFixed(1)} ms, machine ${a.machineCpuMsPerPod.toFixed(1)} ms`);
      }
    }
    const steps = sum.nodecri?.stepsMedianMs as Record<string, number> | undefined;
    if (steps) {
      w('nodecri per-step medians (ms, exact: the step histogram read after every sequential start):');
      for (const [k, v] of Object.entries(steps).sort((a, b) => b[1] - a[1])) w(`  ${k.padEnd(40)}${v.toFixed(2).padStart(8)}`);
    }
    w(`floor: CNI ADD direct ${median(cniMs).toFixed(1)} ms + addon spawn ${median(spawnMs).toFixed(1)} ms = ${floorMs.toFixed(1)} ms`);
    const ours = sum.nodecri!;
    const oursSeq = ours.sequential as Summary;
    w(`nodecri/floor (sequential median): ${(oursSeq.median / floorMs).toFixed(2)}x`);
    const theirs = sum.containerd;
    if (theirs) {
      const ratios: Record<string, number> = {
        sequentialMedian: oursSeq.median / (theirs.sequential as Summary).median,
        sequentialP99: oursSeq.p99 / (theirs.sequential as Summary).p99,
        runtimeCpuPerPod: (ours.runtimeCpuMsPerPod as number) / (theirs.runtimeCpuMsPerPod as number),
        machineCpuPerPod: (ours.machineCpuMsPerPod as number) / (theirs.machineCpuMsPerPod as number),
      };
      for (const p of Ps) {
        const a = ours[`atOnce${p}`] as { perPod: Summary; machineCpuMsPerPod: number };
        const b = theirs[`atOnce${p}`] as { perPod: Summary; machineCpuMsPerPod: number };
        ratios[`atOnce${p}PerPodMedian`] = a.perPod.median / b.perPod.median;
        ratios[`atOnce${p}MachineCpuPerPod`] = a.machineCpuMsPerPod / b.machineCpuMsPerPod;
      }
      out.ratios = ratios;
      w('nodecri/containerd:');
      for (const [k, v] of Object.entries(ratios)) w(`  ${k.padEnd(28)}${v.toFixed(2)}`);
    }
    if (outFile) fs.writeFileSync(outFile, JSON.stringify(out, null, 2));
    w(JSON.stringify({ bench: 'pod-startup', summary: sum, ratios: out.ratios, floorMs }));
  } finally {
    await pair.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stdout.write(`bench failed: ${(e as { details?: string }).details ?? (e as Error).stack}\n`);
  process.exitCode = 1;
});
