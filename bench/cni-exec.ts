/**
 * What exec'ing a CNI plugin costs the daemon: child_process.execFile (libuv forks the
 * daemon) against the addon's posix_spawn (src/native/host-spawn.ts, a vfork-style clone),
 * interleaved, on a real plugin (`loopback` answering CNI_COMMAND=VERSION), from a process
 * holding a daemon-sized heap (a fork copies its page tables). Wall time per call and the
 * parent's own CPU per call (process.cpuUsage, which leaves out the children's CPU).
 *
 *   node dist/bench/cni-exec.js [calls=300] [heapMiB=100]
 */
import { execFile } from 'node:child_process';
import { runHostProgram } from '../src/native/host-spawn';
import { debianCniDir } from '../test/helpers/cni';
import { median, quantile } from './stats';

const calls = Number(process.argv[2] ?? 300);
const heapMiB = Number(process.argv[3] ?? 100);
const plugin = `${debianCniDir}/loopback`;
const env = { CNI_COMMAND: 'VERSION', CNI_PATH: debianCniDir, PATH: '/usr/bin:/bin' };
const stdin = Buffer.from('{"cniVersion":"1.0.0","name":"n","type":"loopback"}');

function viaExecFile(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(plugin, [], { env, timeout: 10_000, maxBuffer: 4 << 20 }, (err) => (err ? reject(err) : resolve()));
    child.stdin!.end(stdin);
  });
}

async function viaAddon(): Promise<void> {
  const r = await runHostProgram({ path: plugin, argv: [plugin], env: Object.entries(env).map(([k, v]) => `${k}=${v}`), stdin, timeoutMs: 10_000, maxOutputBytes: 4 << 20 });
  if (r.exitCode !== 0) throw new Error(`loopback VERSION exited ${r.exitCode}: ${r.stderr.toString()}`);
}

async function main(): Promise<void> {
  // A daemon-sized heap, touched so that it is resident (and its page tables exist).
  const heap = Array.from({ length: heapMiB }, () => Buffer.alloc(1 << 20, 1));
  const ways = { execFile: viaExecFile, addon: viaAddon };
  const wall: Record<string, number[]> = { execFile: [], addon: [] };
  const cpu: Record<string, number[]> = { execFile: [], addon: [] };
  for (let i = 0; i < 10; i++) for (const f of Object.values(ways)) await f(); // warm-up
  for (let i = 0; i < calls; i++) {
    for (const [name, f] of Object.entries(ways)) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await f();
      wall[name]!.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[name]!.push((c.user + c.system) / 1000);
    }
  }
  const row = (name: string) => ({
    wallMedianMs: +median(wall[name]!).toFixed(3),
    wallP90Ms: +quantile(wall[name]!, 0.9).toFixed(3),
    parentCpuMedianMs: +median(cpu[name]!).toFixed(3),
  });
  const result = { bench: 'cni-exec', calls, heapMiB: heap.length, rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20), execFile: row('execFile'), addon: row('addon') };
  console.log(JSON.stringify(result));
  for (const name of ['execFile', 'addon']) {
    const r = result[name as 'execFile' | 'addon'];
    console.log(`${name.padEnd(8)} wall median ${r.wallMedianMs} ms (p90 ${r.wallP90Ms}), daemon CPU median ${r.parentCpuMedianMs} ms per call`);
  }
  console.log(
    `addon/execFile: wall ${(result.addon.wallMedianMs / result.execFile.wallMedianMs).toFixed(2)}, daemon CPU ${(result.addon.parentCpuMedianMs / result.execFile.parentCpuMedianMs).toFixed(2)}`,
  );
}

void main();
