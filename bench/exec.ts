/**
 * Exec of `true` in one running busybox container, nodecri against containerd 1.6 + runc in
 * the same run through the same client:
 *
 * - ExecSync: the CRI call alone (what an exec probe costs, kubernetes#82440);
 * - Exec: the CRI call for the URL, then the streaming session over SPDY/3.1 as kubectl exec
 *   opens it (test/helpers/streaming-client.ts, remote-command v4, stdout and stderr, no
 *   stdin, no tty), until the exit status arrives on the error stream.
 *
 * Each kind: a warm-up that is not counted, then N samples, the runtimes interleaved (A B A
 * B). Latency median, p90 and p99 (bench/stats.ts); the runtime's CPU per call: the utime +
 * stime delta over the N samples of its own processes (nodecri's keeper and worker;
 * containerd and the pod's shim), divided by N, and the same with the CPU of the children they
 * reaped (containerd's runc; the exec'd `true` on both). nodecri's RSS and V8 heap (/metrics)
 * are read before and after each kind, outside the CPU window, to show they level off.
 *
 * `--transport=websocket` runs the Exec kind over WebSocket instead (the client's default
 * protocol, v5.channel.k8s.io, with v4 offered beside it for containerd's older library).
 *
 * Usage: node dist/bench/exec.js [N=200] [--warmup=W] [--kinds=execsync,exec] [--transport=spdy|websocket] [--out=FILE] [--no-containerd]
 */
import fs from 'node:fs';
import { openRemoteCommand, type StreamTransport } from '../test/helpers/streaming-client';
import { cpuTicks, machine, startRuntimePair, userHz, type BenchRuntime, type BusyboxPod, type RuntimeName } from './peers/runtimes';
import { summarize, type Summary } from './stats';

const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const N = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 200);
const warmup = Number(flag('warmup') ?? 20);
const out = flag('out');
const withContainerd = !process.argv.includes('--no-containerd');
const transport = (flag('transport') ?? 'spdy') as StreamTransport;
if (transport !== 'spdy' && transport !== 'websocket') throw new Error(`unknown transport ${String(transport)}: spdy or websocket`);

type Kind = 'execsync' | 'exec';
const kindNames: Record<Kind, string> = { execsync: 'ExecSync `true`', exec: `Exec \`true\` (${transport === 'spdy' ? 'SPDY' : 'WebSocket'})` };
const kinds = (flag('kinds') ?? 'execsync,exec').split(',') as Kind[];
for (const k of kinds) if (!(k in kindNames)) throw new Error(`unknown kind ${k}: execsync or exec`);

/** The remote-command protocol each runtime's streaming server chose. */
const chosenProtocol: Partial<Record<RuntimeName, string>> = {};

/** One call of a kind; throws unless `true` exited 0. */
type Call = (rt: BenchRuntime, pod: BusyboxPod) => Promise<void>;

const calls: Record<Kind, Call> = {
  async execsync(rt, pod) {
    const r = await rt.client.call('ExecSync', { container_id: pod.containerId, cmd: ['true'], timeout: '10' });
    if (r.exit_code !== 0) throw new Error(`${rt.name}: ExecSync true exited ${r.exit_code}: ${r.stderr.toString()}`);
  },
  async exec(rt, pod) {
    const { url } = await rt.client.call('Exec', { container_id: pod.containerId, cmd: ['true'], tty: false, stdin: false, stdout: true, stderr: true });
    const protocol = transport === 'spdy' ? 'v4.channel.k8s.io' : 'v5.channel.k8s.io,v4.channel.k8s.io';
    const session = await openRemoteCommand(url, { transport, protocol, stdin: false, stdout: true, stderr: true, tty: false });
    chosenProtocol[rt.name] = session.protocol;
    const r = await session.done;
    if (r.exitCode !== 0 || r.error !== null) throw new Error(`${rt.name}: Exec true: exit ${r.exitCode}, error ${r.error}, status ${JSON.stringify(r.status)}`);
  },
};

interface Sample {
  runtime: RuntimeName;
  kind: Kind;
  i: number;
  /** when the call started, ms since the epoch */
  at: number;
  ms: number;
}

interface CpuPerCall {
  /** ms of CPU of the runtime's own processes per call */
  ownMs: number;
  /** the same plus the CPU of the children they reaped */
  withChildrenMs: number;
  pids: number[];
}

interface KindResult {
  latency: Record<string, Summary>;
  cpu: Record<string, CpuPerCall>;
}

function cpuOf(pids: number[]): { own: number; children: number } {
  return pids.map(cpuTicks).reduce((a, b) => ({ own: a.own + b.own, children: a.children + b.children }));
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

async function heapUsed(address: string): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(text)?.[1] ?? NaN);
}

function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}\x1b[K`);
}

async function main(): Promise<void> {
  const pair = await startRuntimePair({ containerd: withContainerd, nodecriConfig: '[metrics]\nenabled = true\naddress = "127.0.0.1:0"' });
  const samples: Sample[] = [];
  const results: Partial<Record<Kind, KindResult>> = {};
  const nodecriMemory: Array<{ after: string; rssKiB: number; heapBytes: number }> = [];
  const memoryNow = async (after: string) => {
    nodecriMemory.push({ after, rssKiB: rssKiB(pair.nodecri.workerPid), heapBytes: await heapUsed(pair.nodecri.metricsAddress!) });
  };
  const startedAt = new Date().toISOString();
  const machineAtStart = machine();
  try {
    const pods = new Map<BenchRuntime, BusyboxPod>();
    for (const rt of pair.runtimes) pods.set(rt, await pair.runPod(rt, ['sleep', '3600']));
    await memoryNow('start');
    for (const kind of kinds) {
      const call = calls[kind];
      for (let i = 0; i < warmup; i++) for (const rt of pair.runtimes) await call(rt, pods.get(rt)!);
      const pids = new Map(pair.runtimes.map((rt) => [rt, rt.pids(pods.get(rt)!.sandboxId)]));
      const before = new Map(pair.runtimes.map((rt) => [rt, cpuOf(pids.get(rt)!)]));
      for (let i = 0; i < N; i++) {
        for (const rt of pair.runtimes) {
          const at = Date.now();
          const t0 = performance.now();
          await call(rt, pods.get(rt)!);
          samples.push({ runtime: rt.name, kind, i, at, ms: performance.now() - t0 });
        }
        progress(`${kindNames[kind]}: sample ${i + 1}/${N}`);
      }
      const result: KindResult = { latency: {}, cpu: {} };
      for (const rt of pair.runtimes) {
        const after = cpuOf(pids.get(rt)!);
        const b = before.get(rt)!;
        const perCall = (ticks: number) => (ticks * 1000) / userHz / N;
        result.cpu[rt.name] = { ownMs: perCall(after.own - b.own), withChildrenMs: perCall(after.own + after.children - b.own - b.children), pids: pids.get(rt)! };
        result.latency[rt.name] = summarize(samples.filter((s) => s.kind === kind && s.runtime === rt.name).map((s) => s.ms));
      }
      results[kind] = result;
      await memoryNow(kind);
    }
    progress('');
    process.stdout.write(table(results, pair.runtimes.length > 1));
    if (kinds.includes('exec'))
      process.stdout.write(
        `\nExec over ${transport}, protocol chosen by ${Object.entries(chosenProtocol)
          .map(([rt, p]) => `${rt}: ${p}`)
          .join(', ')}\n`,
      );
    const mib = (b: number) => (b / 1048576).toFixed(1);
    process.stdout.write(
      `\nnodecri worker along the run (${nodecriMemory.map((m) => m.after).join(' -> ')}): RSS ${nodecriMemory.map((m) => mib(m.rssKiB * 1024)).join(' -> ')} MiB, V8 heap used ${nodecriMemory.map((m) => mib(m.heapBytes)).join(' -> ')} MiB\n`,
    );
    const load = machine().loadavg as number[];
    process.stdout.write(
      `load average ${(machineAtStart.loadavg as number[]).map((l) => l.toFixed(2)).join(' ')} at start, ${load.map((l) => l.toFixed(2)).join(' ')} at end (${machineAtStart.cpus} CPUs)\n`,
    );
    if (out) {
      const doc = {
        bench: 'exec',
        transport,
        chosenProtocol,
        startedAt,
        endedAt: new Date().toISOString(),
        N,
        warmup,
        machine: machineAtStart,
        loadavgAtEnd: load,
        results,
        nodecriMemory,
        samples,
      };
      fs.writeFileSync(out, `${JSON.stringify(doc, null, 1)}\n`);
      process.stdout.write(`every sample: ${out}\n`);
    }
  } catch (e) {
    progress('');
    process.stdout.write(`bench failed: ${(e as { details?: string }).details ?? (e as Error).stack}\n`);
    process.exitCode = 1;
  } finally {
    await pair.cleanup();
  }
}

function table(results: Partial<Record<Kind, KindResult>>, withPeer: boolean): string {
  const ms = (x: number) => x.toFixed(2);
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  const lines = withPeer ? ['| call | metric | nodecri | containerd | nodecri / containerd |', '|---|---|---:|---:|---:|'] : ['| call | metric | nodecri |', '|---|---|---:|'];
  for (const kind of kinds) {
    const r = results[kind];
    if (!r) continue;
    const row = (metric: string, pick: (rt: string) => number) => {
      const ours = pick('nodecri');
      if (!withPeer) return lines.push(`| ${kindNames[kind]} | ${metric} | ${ms(ours)} |`);
      const theirs = pick('containerd');
      return lines.push(`| ${kindNames[kind]} | ${metric} | ${ms(ours)} | ${ms(theirs)} | ${ratio(ours, theirs)} |`);
    };
    row(`latency median, ms (n=${r.latency.nodecri!.n})`, (rt) => r.latency[rt]!.median);
    row('latency p90, ms', (rt) => r.latency[rt]!.p90);
    row('latency p99, ms', (rt) => r.latency[rt]!.p99);
    row('runtime CPU per call, ms', (rt) => r.cpu[rt]!.ownMs);
    row('runtime CPU per call with reaped children, ms', (rt) => r.cpu[rt]!.withChildrenMs);
  }
  return `${lines.join('\n')}\n`;
}

void main();
