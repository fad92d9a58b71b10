/**
 * The event loop's longest gap while the addon does its heaviest bursts, measured, not
 * asserted (a test that asserted it failed on a loaded machine). The operations are the ones
 * the integration tests run at once:
 *   - 50 pinNamespaces(net+ipc+uts, one sysctl) in parallel (test/integration/namespaces.test.ts);
 *   - 50 containers created, started and awaited at once, each `sh -c 'echo $$'` in its own
 *     pid, mount, ipc, uts and net namespaces (test/integration/process.test.ts).
 * A 1 ms interval timer runs meanwhile; the gap is the longest time between two of its ticks
 * (the target is a loop that never stops for long: < 20 ms on an idle machine).
 *
 *   node dist/bench/event-loop-gap.js [rounds=5]
 * Needs root. Everything lives in a temp dir that is removed at the end.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pinNamespaces, unpinNamespaces, type PinnedNamespaces } from '../src/native/namespaces';
import { baseProcessSpec, createProcess, releaseProcess, startProcess, type ProcessSpec } from '../src/native/process';
import { buildRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 5);
const N = 50;

interface Gap {
  maxMs: number;
  ticks: number;
  elapsedMs: number;
}

/** Runs `work` with a 1 ms ticker beside it and returns the longest gap between ticks. */
async function gapDuring(work: () => Promise<void>): Promise<Gap> {
  let last = performance.now();
  let maxMs = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxMs = Math.max(maxMs, now - last);
    last = now;
    ticks++;
  }, 1);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  maxMs = Math.max(maxMs, performance.now() - last);
  return { maxMs, ticks, elapsedMs: performance.now() - started };
}

async function pinsInParallel(dir: string): Promise<Gap> {
  const dirs = Array.from({ length: N }, (_, i) => path.join(dir, `pod${i}`));
  let results: PromiseSettledResult<PinnedNamespaces>[] = [];
  const gap = await gapDuring(async () => {
    results = await Promise.allSettled(
      dirs.map((d) => pinNamespaces({ types: ['net', 'ipc', 'uts'], dir: d, sysctls: { 'net.ipv4.ip_forward': '1' }, uidMap: null, gidMap: null })),
    );
  });
  for (const r of results) if (r.status === 'fulfilled') await unpinNamespaces(r.value);
  await Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true })));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return gap;
}

function containerSpec(rootfs: string): ProcessSpec {
  return {
    ...baseProcessSpec(rootfs, ['sh', '-c', 'echo $$']),
    namespaces: (['pid', 'mount', 'ipc', 'uts', 'network'] as const).map((type) => ({ type, path: null })),
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] }],
    env: ['PATH=/bin'],
    stdout: 'pipe',
    stderr: 'null',
  };
}

/** Reads a pipe to its end. */
function drain(fd: number | null): Promise<void> {
  if (fd === null) return Promise.resolve();
  const s = new net.Socket({ fd, readable: true, writable: false });
  s.resume();
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('close', () => resolve());
  });
}

async function containersAtOnce(rootfs: string): Promise<Gap> {
  return gapDuring(async () => {
    await Promise.all(
      Array.from({ length: N }, async () => {
        const h = await createProcess(containerSpec(rootfs));
        try {
          const out = drain(h.stdout);
          await startProcess(h);
          const st = await h.exited;
          await out;
          if (st.exitCode !== 0) throw new Error(`container exited ${st.exitCode ?? st.signal}`);
        } finally {
          await releaseProcess(h);
        }
      }),
    );
  });
}

function show(name: string, gaps: Gap[]): void {
  const max = gaps.map((g) => g.maxMs).sort((a, b) => a - b);
  const median = max[Math.floor(max.length / 2)];
  const each = gaps.map((g) => `${g.maxMs.toFixed(1)} ms (${g.ticks} ticks in ${g.elapsedMs.toFixed(0)} ms)`).join(', ');
  console.log(`${name}: longest gap median ${median.toFixed(1)} ms, worst ${max[max.length - 1].toFixed(1)} ms   (target < 20)`);
  console.log(`  rounds: ${each}`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-bench-'));
  try {
    const rootfs = buildRootfs(dir);
    const pins: Gap[] = [];
    const containers: Gap[] = [];
    for (let i = 0; i < rounds; i++) {
      pins.push(await pinsInParallel(path.join(dir, 'pins')));
      containers.push(await containersAtOnce(rootfs));
    }
    console.log(`event-loop gaps over ${rounds} rounds, load average ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`);
    show(`${N} pinNamespaces(net, ipc, uts) in parallel`, pins);
    show(`${N} containers created, started and awaited at once`, containers);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
