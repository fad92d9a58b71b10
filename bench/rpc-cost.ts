/**
 * What the calls kubelet makes all day cost, and what an idle runtime costs: nodecri and
 * containerd 1.6 + runc side by side (bench/peers/runtimes.ts), N pods each (a sandbox and
 * one `sleep` container), then Version, PodSandboxStatus, ContainerStatus, ListContainers,
 * ListPodSandbox and ListContainerStats through the same grpc-js client class, twice per
 * runtime: with the authority grpc-js sends by itself ("localhost") and with the socket
 * path as the authority (what crictl, critest and kubelet before 1.30 send, which nodecri's
 * front door rewrites: src/cri/transport.ts). Every round calls each of those targets in
 * turn (the order alternating round by round), K calls each, so that the load of the shared
 * machine falls on all of them alike; the medians and ratios come from all rounds. A bare
 * grpc-js server with the same proto and a Version that answers at once (its own process,
 * no front door, no wrapper) is the floor of the Version row. Then, after a quiet moment,
 * the CPU each runtime burns with no calls at all over S seconds: nodecri's daemon (and its
 * keeper); containerd and its shims; the pause processes apart (nodecri runs none for pods
 * with a PID namespace per container). CPU is read from /proc/PID/task/TID/schedstat (ns)
 * of every thread, and the server side's CPU per call likewise around each block of calls.
 *
 * Usage: node dist/bench/rpc-cost.js [pods=50] [--rounds=R] [--calls=K] [--idle=S]
 *        [--out=FILE] [--nodecri-only]
 * bench/version-rtt.js is the quick one: Version throughput of nodecri alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CriClient, type ClientRpc } from '../test/helpers/cri-client';
import { serviceDefinition } from '../src/cri/proto';
import { machine, startRuntimePair, type BenchRuntime, type BusyboxPod, type RuntimeName } from './peers/runtimes';
import { median, summarize, type Summary } from './stats';

const rpcs = ['Version', 'PodSandboxStatus', 'ContainerStatus', 'ListContainers', 'ListPodSandbox', 'ListContainerStats'] as const;
type Rpc = (typeof rpcs)[number];

type Authority = 'default' | 'socket-path';

interface Target {
  name: string;
  runtime: RuntimeName | 'bare-grpc-js';
  authority: Authority;
  client: CriClient;
  /** the server's processes whose CPU a call costs */
  serverPids: () => number[];
  pods: BusyboxPod[];
}

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
}

/** CPU time (ns) of every thread of `pid` that is alive now, from schedstat; 0 if it is gone. */
function threadCpuNs(pid: number): number {
  let total = 0;
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread is gone
    }
  }
  return total;
}

function cpuNs(pids: number[]): number {
  return pids.reduce((s, p) => s + threadCpuNs(p), 0);
}

function procs(): Array<{ pid: number; ppid: number; comm: string; cmdline: string[] }> {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(p), ppid, comm, cmdline: fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0') });
    } catch {
      // gone
    }
  }
  return out;
}

/** containerd's shims (those started for the socket `sock`) and the pause processes under them. */
function containerdHelpers(sock: string): { shims: number[]; pauses: number[] } {
  const all = procs();
  const shims = all.filter((p) => path.basename(p.cmdline[0] ?? '').startsWith('containerd-shim') && p.cmdline.includes(sock)).map((p) => p.pid);
  const pauses = all.filter((p) => shims.includes(p.ppid) && p.comm === 'pause').map((p) => p.pid);
  return { shims, pauses };
}

/** nodecri's pause processes (pods that share a PID namespace only): children of the daemon named pause. */
function nodecriPauses(daemonPids: number[]): number[] {
  return procs()
    .filter((p) => daemonPids.includes(p.ppid) && p.comm === 'pause')
    .map((p) => p.pid);
}

function request(rpc: Rpc, t: Target, i: number): Record<string, unknown> {
  const pod = t.pods[i % t.pods.length]!;
  switch (rpc) {
    case 'PodSandboxStatus':
      return { pod_sandbox_id: pod.sandboxId, verbose: false };
    case 'ContainerStatus':
      return { container_id: pod.containerId, verbose: false };
    default:
      return {};
  }
}

/** A grpc-js server with our proto whose Version answers at once: the floor of a round trip. */
async function bareServer(sock: string): Promise<void> {
  const server = new grpc.Server();
  server.addService(serviceDefinition('RuntimeService'), {
    Version: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { version: '0.1.0', runtime_name: 'bare', runtime_version: '0', runtime_api_version: 'v1' }),
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  process.stdout.write('ready\n');
}

async function startBare(dir: string): Promise<{ sock: string; proc: ChildProcess }> {
  const sock = path.join(dir, 'bare.sock');
  const proc = spawn(process.execPath, [__filename, '--bare-server', sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (code) => reject(new Error(`the bare grpc-js server exited (${code})`)));
  });
  return { sock, proc };
}

interface Row {
  rpc: Rpc;
  authority: Authority;
  latencyMs: Record<string, Summary>;
  /** server-side CPU per call (ms): the runtime's processes, schedstat */
  serverCpuMsPerCall: Record<string, number>;
  /** nodecri's median over containerd's */
  ratio: number;
  /** nodecri's median over the bare grpc-js server's (Version, default authority) */
  overFloor: number | null;
}

async function main(): Promise<void> {
  const nPods = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 50);
  const rounds = arg('rounds', 20);
  const calls = arg('calls', 10);
  const idleSeconds = arg('idle', 20);
  const outArg = process.argv.find((a) => a.startsWith('--out='));
  const withContainerd = !process.argv.includes('--nodecri-only');

  const pair = await startRuntimePair({ containerd: withContainerd });
  const extraClients: CriClient[] = [];
  let bare: { sock: string; proc: ChildProcess } | null = null;
  try {
    const pods = new Map<RuntimeName, BusyboxPod[]>();
    for (const rt of pair.runtimes) {
      const list: BusyboxPod[] = [];
      for (let i = 0; i < nPods; i++) list.push(await pair.runPod(rt, ['sleep', '36000']));
      pods.set(rt.name, list);
      process.stderr.write(`${rt.name}: ${nPods} pods running\n`);
    }
    const serverPidsOf = (rt: BenchRuntime): (() => number[]) => {
      if (rt.name === 'nodecri') return () => [...new Set([pair.nodecri.proc.pid!, pair.nodecri.workerPid])];
      const sock = rt.client.socketPath;
      const daemonPid = rt.pids(pods.get('containerd')![0]!.sandboxId)[0]!;
      return () => [daemonPid, ...containerdHelpers(sock).shims];
    };
    const targets: Target[] = [];
    for (const rt of pair.runtimes) {
      const pathClient = new CriClient(rt.client.socketPath, { 'grpc.default_authority': rt.client.socketPath });
      extraClients.push(pathClient);
      for (const [authority, client] of [
        ['default', rt.client],
        ['socket-path', pathClient],
      ] as const) {
        targets.push({ name: `${rt.name}/${authority}`, runtime: rt.name, authority, client, serverPids: serverPidsOf(rt), pods: pods.get(rt.name)! });
      }
    }
    bare = await startBare(pair.dir);
    const bareClient = new CriClient(bare.sock);
    extraClients.push(bareClient);
    const bareProc = bare.proc;
    const floor: Target = { name: 'bare-grpc-js/default', runtime: 'bare-grpc-js', authority: 'default', client: bareClient, serverPids: () => [bareProc.pid!], pods: [] };

    const rows: Row[] = [];
    for (const rpc of rpcs) {
      const ts = rpc === 'Version' ? [...targets, floor] : targets;
      const samples = new Map<Target, number[]>(ts.map((t) => [t, []]));
      const cpu = new Map<Target, { ns: number; calls: number }>(ts.map((t) => [t, { ns: 0, calls: 0 }]));
      for (const t of ts) for (let i = 0; i < 5; i++) await t.client.call(rpc as ClientRpc, request(rpc, t, i) as never); // warm-up
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? ts : [...ts].reverse();
        for (const t of order) {
          const pids = t.serverPids();
          const c0 = cpuNs(pids);
          for (let k = 0; k < calls; k++) {
            const req = request(rpc, t, r * calls + k) as never;
            const t0 = performance.now();
            await t.client.call(rpc as ClientRpc, req);
            samples.get(t)!.push(performance.now() - t0);
          }
          const acc = cpu.get(t)!;
          acc.ns += cpuNs(pids) - c0;
          acc.calls += calls;
        }
      }
      for (const authority of ['default', 'socket-path'] as const) {
        const mine = ts.filter((t) => t.authority === authority);
        const latencyMs: Record<string, Summary> = {};
        const serverCpuMsPerCall: Record<string, number> = {};
        for (const t of mine) {
          latencyMs[t.runtime] = summarize(samples.get(t)!);
          const acc = cpu.get(t)!;
          serverCpuMsPerCall[t.runtime] = acc.ns / acc.calls / 1e6;
        }
        const ours = latencyMs.nodecri?.median ?? NaN;
        rows.push({
          rpc,
          authority,
          latencyMs,
          serverCpuMsPerCall,
          ratio: ours / (latencyMs.containerd?.median ?? NaN),
          overFloor: latencyMs['bare-grpc-js'] ? ours / latencyMs['bare-grpc-js'].median : null,
        });
      }
    }

    // Idle: no calls for a moment (grpc-js keepalives, a GC after the burst), then S seconds.
    await new Promise((r) => setTimeout(r, 3000));
    const idleSets: Record<string, () => number[]> = { 'nodecri daemon': serverPidsOf(pair.runtimes[0]!) };
    idleSets['nodecri pauses'] = () => nodecriPauses(idleSets['nodecri daemon']!());
    const cd = pair.runtimes.find((rt) => rt.name === 'containerd');
    if (cd) {
      idleSets['containerd + shims'] = serverPidsOf(cd);
      idleSets['containerd pauses'] = () => containerdHelpers(cd.client.socketPath).pauses;
    }
    const idlePids = Object.fromEntries(Object.entries(idleSets).map(([k, f]) => [k, f()]));
    const before = Object.fromEntries(Object.entries(idlePids).map(([k, pids]) => [k, cpuNs(pids)]));
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const idleCpuMsPerSecond = Object.fromEntries(Object.entries(idlePids).map(([k, pids]) => [k, (cpuNs(pids) - before[k]!) / 1e6 / elapsed]));
    const idleProcesses = Object.fromEntries(Object.entries(idlePids).map(([k, pids]) => [k, pids.length]));

    const result = { bench: 'rpc-cost', pods: nPods, rounds, callsPerRound: calls, idleSeconds, machine: machine(), rows, idleCpuMsPerSecond, idleProcesses };
    console.log(JSON.stringify(result));
    const f = (x: number | undefined, d = 3) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
    console.log(`\n${nPods} pods per runtime; ${rounds} rounds x ${calls} calls per target, interleaved; medians in ms; server CPU per call in ms`);
    console.log('rpc                 authority     nodecri  containerd  ratio   bare-grpc  nodecri/bare   cpu nodecri  cpu containerd');
    for (const r of rows) {
      console.log(
        `${r.rpc.padEnd(20)}${r.authority.padEnd(12)}${f(r.latencyMs.nodecri?.median).padStart(9)}${f(r.latencyMs.containerd?.median).padStart(12)}${f(r.ratio, 2).padStart(7)}` +
          `${f(r.latencyMs['bare-grpc-js']?.median).padStart(12)}${f(r.overFloor ?? undefined, 2).padStart(15)}${f(r.serverCpuMsPerCall.nodecri).padStart(14)}${f(r.serverCpuMsPerCall.containerd).padStart(16)}`,
      );
    }
    console.log(`\nidle CPU over ${idleSeconds} s with no calls (ms per second):`);
    for (const [k, v] of Object.entries(idleCpuMsPerSecond)) console.log(`  ${k.padEnd(22)}${v.toFixed(3).padStart(9)}  (${idleProcesses[k]} processes)`);
    const worst = Math.max(...rows.map((r) => r.ratio).filter((x) => !Number.isNaN(x)));
    console.log(`worst ratio ${f(worst, 2)}; median of ratios ${f(median(rows.map((r) => r.ratio).filter((x) => !Number.isNaN(x))), 2)}`);
    if (outArg) fs.writeFileSync(outArg.slice('--out='.length), JSON.stringify(result, null, 2));
  } finally {
    for (const c of extraClients) c.close();
    bare?.proc.kill('SIGTERM');
    await pair.cleanup();
  }
}

if (process.argv[2] === '--bare-server') void bareServer(process.argv[3]!);
else
  void main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
