/**
 * A pod's life call by call, nodecri against containerd 1.6 + runc in the same run through
 * the same client (bench/peers/runtimes.ts): each round runs, for each runtime in turn (the
 * order alternating round by round), RunPodSandbox, CreateContainer of a busybox container
 * that prints one line and sleeps, StartContainer, the wait for that line in the CRI log,
 * StopContainer (timeout 0), RemoveContainer, StopPodSandbox and RemovePodSandbox, each
 * call timed on its own, and the pod start (RunPodSandbox sent to the line seen in the log)
 * as a whole. The log is watched with inotify on its directory (a poll every 20 ms behind
 * it), so the wait adds no CPU of its own to the machine both runtimes share.
 *
 * One round before the N is a warm-up, not counted. Medians, p90 and p99 (bench/stats.ts)
 * and the ratio of the medians; nodecri's daemon CPU per round (its keeper and worker and
 * the children they reaped, /proc/PID/stat), which the machine's noise does not move.
 *
 * Usage: node dist/bench/container-ops.js [N=30] [--out=FILE] [--no-containerd]
 */
import fs from 'node:fs';
import path from 'node:path';
import { cpuTicks, machine, startRuntimePair, userHz, type BenchRuntime, type RuntimeName } from './peers/runtimes';
import { summarize, type Summary } from './stats';

const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const N = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 30);
const out = flag('out');
const withContainerd = !process.argv.includes('--no-containerd');

const ops = [
  'RunPodSandbox',
  'CreateContainer',
  'StartContainer',
  'pod start to first log line',
  'StopContainer',
  'RemoveContainer',
  'StopPodSandbox',
  'RemovePodSandbox',
] as const;
type Op = (typeof ops)[number];

interface Sample {
  runtime: RuntimeName;
  op: Op;
  round: number;
  ms: number;
}

/** Resolves once `file` has a line containing `text`: inotify on its directory, a slow poll behind it. */
function untilLogHas(file: string, text: string): { done: Promise<void>; cancel: () => void } {
  let watcher: fs.FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  const cancel = () => {
    watcher?.close();
    if (timer) clearInterval(timer);
  };
  const done = new Promise<void>((resolve) => {
    const check = () => {
      let content: string;
      try {
        content = fs.readFileSync(file, 'utf8');
      } catch {
        return; // not made yet
      }
      if (content.includes(text)) {
        cancel();
        resolve();
      }
    };
    watcher = fs.watch(path.dirname(file), check);
    timer = setInterval(check, 20);
    check();
  });
  return { done, cancel };
}

async function round(pair: Awaited<ReturnType<typeof startRuntimePair>>, rt: BenchRuntime, i: number, samples: Sample[]): Promise<void> {
  const config = pair.podConfig(rt);
  const logFile = path.join(config.log_directory, 'ops.log');
  const line = `first line ${i}`;
  const timed = async <T>(op: Op, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await fn();
    samples.push({ runtime: rt.name, op, round: i, ms: performance.now() - t0 });
    return v;
  };
  const seen = untilLogHas(logFile, line);
  let sandboxId = '';
  try {
    const t0 = performance.now();
    sandboxId = (await timed('RunPodSandbox', () => rt.client.call('RunPodSandbox', { config }))).pod_sandbox_id;
    const { container_id } = await timed('CreateContainer', () =>
      rt.client.call('CreateContainer', {
        pod_sandbox_id: sandboxId,
        sandbox_config: config,
        config: { metadata: { name: 'ops', attempt: 0 }, image: { image: pair.image }, command: ['sh', '-c', `echo ${line}; exec sleep 3600`], log_path: 'ops.log' },
      }),
    );
    await timed('StartContainer', () => rt.client.call('StartContainer', { container_id }));
    await seen.done;
    samples.push({ runtime: rt.name, op: 'pod start to first log line', round: i, ms: performance.now() - t0 });
    await timed('StopContainer', () => rt.client.call('StopContainer', { container_id, timeout: '0' }));
    await timed('RemoveContainer', () => rt.client.call('RemoveContainer', { container_id }));
    await timed('StopPodSandbox', () => rt.client.call('StopPodSandbox', { pod_sandbox_id: sandboxId }));
    await timed('RemovePodSandbox', () => rt.client.call('RemovePodSandbox', { pod_sandbox_id: sandboxId }));
    sandboxId = '';
  } finally {
    seen.cancel();
    if (sandboxId !== '') {
      // A failed round leaves nothing behind for the next one.
      await rt.client.call('StopPodSandbox', { pod_sandbox_id: sandboxId }).catch(() => {});
      await rt.client.call('RemovePodSandbox', { pod_sandbox_id: sandboxId }).catch(() => {});
    }
  }
}

async function main(): Promise<void> {
  const pair = await startRuntimePair({ containerd: withContainerd });
  const samples: Sample[] = [];
  const machineAtStart = machine();
  try {
    const nodecri = pair.runtimes.find((rt) => rt.name === 'nodecri')!;
    const daemonPids = nodecri.pids('');
    const cpu = () => daemonPids.map(cpuTicks).reduce((a, b) => a + b.own + b.children, 0);
    for (const rt of pair.runtimes) await round(pair, rt, -1, []);
    let nodecriTicks = 0;
    for (let i = 0; i < N; i++) {
      const order = i % 2 === 0 ? pair.runtimes : [...pair.runtimes].reverse();
      for (const rt of order) {
        const before = rt === nodecri ? cpu() : 0;
        await round(pair, rt, i, samples);
        if (rt === nodecri) nodecriTicks += cpu() - before;
      }
      if (process.stderr.isTTY) process.stderr.write(`\rround ${i + 1}/${N}\x1b[K`);
    }
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    const results: Record<string, Record<string, Summary>> = {};
    for (const op of ops) {
      results[op] = {};
      for (const rt of pair.runtimes) results[op][rt.name] = summarize(samples.filter((s) => s.op === op && s.runtime === rt.name).map((s) => s.ms));
    }
    const withPeer = pair.runtimes.length > 1;
    const f = (x: number | undefined) => (x === undefined ? '' : x.toFixed(2));
    const lines = withPeer
      ? ['| op | nodecri median | p90 | p99 | containerd median | p90 | p99 | ratio of medians |', '|---|---:|---:|---:|---:|---:|---:|---:|']
      : ['| op | nodecri median | p90 | p99 |', '|---|---:|---:|---:|'];
    for (const op of ops) {
      const a = results[op].nodecri!;
      const b = results[op].containerd;
      lines.push(
        withPeer
          ? `| ${op} | ${f(a.median)} | ${f(a.p90)} | ${f(a.p99)} | ${f(b!.median)} | ${f(b!.p90)} | ${f(b!.p99)} | ${(a.median / b!.median).toFixed(2)} |`
          : `| ${op} | ${f(a.median)} | ${f(a.p90)} | ${f(a.p99)} |`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n\nms, N=${N} rounds${withPeer ? ', the runtimes interleaved' : ''}\n`);
    process.stdout.write(`nodecri daemon CPU per round (keeper + worker + reaped children): ${((nodecriTicks * 1000) / userHz / N).toFixed(1)} ms\n`);
    const load = machine().loadavg as number[];
    process.stdout.write(`load average ${(machineAtStart.loadavg as number[]).map((l) => l.toFixed(2)).join(' ')} at start, ${load.map((l) => l.toFixed(2)).join(' ')} at end\n`);
    if (out) fs.writeFileSync(out, `${JSON.stringify({ bench: 'container-ops', N, machine: machineAtStart, loadavgAtEnd: load, results, samples }, null, 1)}\n`);
  } catch (e) {
    process.stdout.write(`bench failed: ${(e as { details?: string }).details ?? (e as Error).stack}\n`);
    process.exitCode = 1;
  } finally {
    await pair.cleanup();
  }
}

void main();
