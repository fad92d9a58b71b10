/**
 * Port-forward throughput, nodecri against containerd 1.6 in the same run through the same
 * client: busybox httpd in a pod serves a file of M MiB of random data; each round is a
 * PortForward call, a SPDY/3.1 portforward.k8s.io session as kubectl port-forward opens it
 * (test/helpers/streaming-client.ts), one data stream to port 8080 and one HTTP/1.0 GET of the
 * file through it. The rate is the file's size over the time from the request's first byte
 * to the response's last (MiB/s); the total (the call, the upgrade and the stream's setup
 * too) is recorded beside it. A warm-up round per runtime is not counted: it waits for httpd
 * to listen, and checks the file arrives whole (its SHA-256 against sha256sum in the pod).
 * The runtimes are interleaved per round (A B A B); the runtime's CPU per MiB is the utime +
 * stime delta of its processes (nodecri's daemon; containerd and the pod's shim) over the
 * rounds.
 *
 * `--transport=websocket`: the same over WebSocket (v4.channel.k8s.io, the port in the query).
 *
 * Usage: node dist/bench/port-forward.js [MiB=128] [--rounds=R] [--transport=spdy|websocket] [--out=FILE] [--no-containerd]
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { openPortForward, type StreamTransport } from '../test/helpers/streaming-client';
import { cpuTicks, machine, startRuntimePair, userHz, waitForLog, type BenchRuntime, type BusyboxPod, type RuntimeName } from './peers/runtimes';
import { summarize, type Summary } from './stats';

const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const MiB = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 128);
const rounds = Number(flag('rounds') ?? 7);
const out = flag('out');
const withContainerd = !process.argv.includes('--no-containerd');
const port = 8080;
const transport = (flag('transport') ?? 'spdy') as StreamTransport;
if (transport !== 'spdy' && transport !== 'websocket') throw new Error(`unknown transport ${String(transport)}: spdy or websocket`);

interface Sample {
  runtime: RuntimeName;
  round: number;
  /** when the round started (the PortForward call), ms since the epoch */
  at: number;
  /** the PortForward call to the response's last byte */
  totalMs: number;
  /** the request's first byte to the response's last */
  transferMs: number;
  mibPerSecond: number;
  /** how many chunks the body came in (the client's reads: DATA frames or WebSocket messages, or several of them) */
  chunks: number;
}

/**
 * GETs `file` over `stream` (HTTP/1.0) and resolves once the whole body has arrived, with
 * when the request was written and its digest when asked. The end of the response is its
 * Content-Length, not the stream's end, which the runtimes signal differently.
 */
function get(stream: Duplex, file: string, digest: boolean): Promise<{ requestAt: number; bytes: number; chunks: number; sha256: string | null }> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let length = -1;
    let received = 0;
    let chunks = 0;
    const hash = digest ? createHash('sha256') : null;
    const fail = (e: Error) => reject(e);
    stream.once('error', fail);
    stream.once('end', () => reject(new Error(`the stream ended after ${received} of ${length} body bytes; head: ${head.subarray(0, 200).toString()}`)));
    stream.on('data', (chunk: Buffer) => {
      if (length < 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString();
        const m = /^content-length:\s*(\d+)/im.exec(text);
        if (!/^HTTP\/1\.[01] 200/.test(text) || !m) return reject(new Error(`httpd answered: ${text}`));
        length = Number(m[1]);
        chunk = head.subarray(end + 4);
      }
      received += chunk.length;
      chunks++;
      hash?.update(chunk);
      if (received >= length) {
        stream.removeAllListeners('end');
        stream.off('error', fail);
        resolve({ requestAt, bytes: received, chunks, sha256: hash ? hash.digest('hex') : null });
      }
    });
    const requestAt = performance.now();
    stream.write(`GET /${file} HTTP/1.0\r\nHost: localhost\r\n\r\n`);
  });
}

/** One PortForward session with one data stream to the pod's port; `body` uses it, then both close. */
async function withStream<T>(rt: BenchRuntime, pod: BusyboxPod, body: (s: Duplex) => Promise<T>): Promise<T> {
  const { url } = await rt.client.call('PortForward', { pod_sandbox_id: pod.sandboxId, port: [port] });
  // Over WebSocket the ports are in the query, as the API server passes kubectl's on.
  const session = await openPortForward(transport === 'spdy' ? url : `${url}${url.includes('?') ? '&' : '?'}port=${port}`, { transport });
  try {
    const stream = await session.connect(port);
    try {
      return await body(stream);
    } finally {
      stream.destroy();
    }
  } finally {
    session.close();
  }
}

interface PortForwardResult {
  mibPerSecond: Summary;
  totalMs: Summary;
  cpuMsPerMiB: number;
  meanChunkKiB: number;
}

function cpuOf(pids: number[]): number {
  return pids.map((p) => cpuTicks(p).own).reduce((a, b) => a + b, 0);
}

async function main(): Promise<void> {
  const pair = await startRuntimePair({ containerd: withContainerd });
  const samples: Sample[] = [];
  const startedAt = new Date().toISOString();
  const machineAtStart = machine();
  try {
    const pods = new Map<BenchRuntime, BusyboxPod>();
    const serve = `mkdir -p /www && echo ok > /www/index.html && dd if=/dev/urandom of=/www/big bs=1048576 count=${MiB} 2>/dev/null && echo ready && exec httpd -f -p ${port} -h /www`;
    for (const rt of pair.runtimes) pods.set(rt, await pair.runPod(rt, ['sh', '-c', serve]));
    for (const rt of pair.runtimes) {
      const pod = pods.get(rt)!;
      await waitForLog(pod, /ready/);
      // httpd listens a moment after the log line: the first connections may be refused.
      for (let attempt = 1; ; attempt++) {
        try {
          await withStream(rt, pod, (s) => get(s, 'index.html', false));
          break;
        } catch (e) {
          if (attempt === 50) throw new Error(`${rt.name}: no answer from httpd through port-forward: ${(e as Error).message}`, { cause: e });
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const sum = await rt.client.call('ExecSync', { container_id: pod.containerId, cmd: ['sha256sum', '/www/big'], timeout: '60' });
      const expected = sum.stdout.toString().split(' ')[0];
      const got = await withStream(rt, pod, (s) => get(s, 'big', true));
      if (got.sha256 !== expected) throw new Error(`${rt.name}: the file arrived changed (${got.bytes} bytes, sha256 ${got.sha256}, in the pod ${expected})`);
    }
    const pids = new Map(pair.runtimes.map((rt) => [rt, rt.pids(pods.get(rt)!.sandboxId)]));
    const cpu = new Map(pair.runtimes.map((rt) => [rt, 0]));
    for (let round = 0; round < rounds; round++) {
      for (const rt of pair.runtimes) {
        const at = Date.now();
        const ticks0 = cpuOf(pids.get(rt)!);
        const t0 = performance.now();
        const r = await withStream(rt, pods.get(rt)!, (s) => get(s, 'big', false));
        const t1 = performance.now();
        cpu.set(rt, cpu.get(rt)! + cpuOf(pids.get(rt)!) - ticks0);
        if (r.bytes !== MiB * 1048576) throw new Error(`${rt.name}: ${r.bytes} bytes arrived, not ${MiB} MiB`);
        const transferMs = t1 - r.requestAt;
        samples.push({ runtime: rt.name, round, at, totalMs: t1 - t0, transferMs, mibPerSecond: MiB / (transferMs / 1000), chunks: r.chunks });
      }
      if (process.stderr.isTTY) process.stderr.write(`\rport-forward ${MiB} MiB: round ${round + 1}/${rounds}\x1b[K`);
    }
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    const results: Record<string, PortForwardResult> = {};
    for (const rt of pair.runtimes) {
      const mine = samples.filter((s) => s.runtime === rt.name);
      results[rt.name] = {
        mibPerSecond: summarize(mine.map((s) => s.mibPerSecond)),
        totalMs: summarize(mine.map((s) => s.totalMs)),
        cpuMsPerMiB: (cpu.get(rt)! * 1000) / userHz / (rounds * MiB),
        meanChunkKiB: (rounds * MiB * 1024) / mine.reduce((a, s) => a + s.chunks, 0),
      };
    }
    process.stdout.write(table(results));
    const load = machine().loadavg as number[];
    process.stdout.write(
      `load average ${(machineAtStart.loadavg as number[]).map((l) => l.toFixed(2)).join(' ')} at start, ${load.map((l) => l.toFixed(2)).join(' ')} at end (${machineAtStart.cpus} CPUs)\n`,
    );
    if (out) {
      const doc = { bench: 'port-forward', transport, startedAt, endedAt: new Date().toISOString(), MiB, rounds, machine: machineAtStart, loadavgAtEnd: load, results, samples };
      fs.writeFileSync(out, `${JSON.stringify(doc, null, 1)}\n`);
      process.stdout.write(`every sample: ${out}\n`);
    }
  } catch (e) {
    process.stdout.write(`bench failed: ${(e as { details?: string }).details ?? (e as Error).stack}\n`);
    process.exitCode = 1;
  } finally {
    await pair.cleanup();
  }
}

function table(results: Record<string, PortForwardResult>): string {
  const names = Object.keys(results);
  const withPeer = names.includes('containerd');
  const lines = [
    `| port-forward (${transport === 'spdy' ? 'SPDY' : 'WebSocket'}), one stream, ${MiB} MiB | ${names.join(' | ')} |${withPeer ? ' nodecri / containerd |' : ''}`,
    `|---|${names.map(() => '---:|').join('')}${withPeer ? '---:|' : ''}`,
  ];
  const row = (metric: string, pick: (name: string) => number, digits = 1) => {
    const v = names.map(pick);
    lines.push(`| ${metric} | ${v.map((x) => x.toFixed(digits)).join(' | ')} |${withPeer ? ` ${(pick('nodecri') / pick('containerd')).toFixed(2)} |` : ''}`);
  };
  row(`throughput median, MiB/s (n=${rounds})`, (n) => results[n]!.mibPerSecond.median);
  row('throughput p10 (slowest rounds), MiB/s', (n) => results[n]!.mibPerSecond.p10);
  row('round median incl. call and upgrade, ms', (n) => results[n]!.totalMs.median);
  row('runtime CPU per MiB, ms', (n) => results[n]!.cpuMsPerMiB, 2);
  row('mean chunk the client read, KiB', (n) => results[n]!.meanChunkKiB);
  return `${lines.join('\n')}\n`;
}

void main();
