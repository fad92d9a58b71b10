/**
 * Spawn latency: start-to-exit of /bin/true in a fresh container (new mount, pid, ipc, uts
 * and net namespaces, pivot_root, /proc), three ways:
 *   - through the addon, measured inside this Node process (median of N);
 *   - bench/spawn-floor.c, the same syscalls in plain C: in-process loop and whole process;
 *   - `runc run` on a bundle with the same rootfs.
 * Then the daemon's RSS growth per running container over 100 `sleep 60` containers.
 *
 *   node dist/bench/spawn.js [iterations=200] [runcIterations=30]
 * Needs root. Everything lives in a temp dir that is removed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessHandle, ProcessSpec, createProcess, releaseProcess, signalProcess, startProcess } from '../src/native/process';
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../src/oci';
import { defaultDev, defaultMounts } from '../test/helpers/process-defaults';
import { buildRootfs } from '../test/helpers/rootfs';
import { addonRunUs, minimalSpec } from './peers/floors';
import { median } from './stats';

const iterations = Number(process.argv[2] ?? 200);
const runcIterations = Number(process.argv[3] ?? 30);

function fullSpec(rootfs: string, args: string[]): ProcessSpec {
  const caps = { bounding: [...DEFAULT_CAPABILITIES], effective: [...DEFAULT_CAPABILITIES], permitted: [...DEFAULT_CAPABILITIES], inheritable: [], ambient: [] };
  return {
    ...minimalSpec(rootfs, args),
    mounts: defaultMounts(),
    ...defaultDev(),
    hostname: 'bench',
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
    capabilities: caps,
    noNewPrivileges: true,
  };
}

async function addonMedian(spec: ProcessSpec, n: number): Promise<number> {
  for (let i = 0; i < 10; i++) await addonRunUs(spec);
  const t: number[] = [];
  for (let i = 0; i < n; i++) t.push(await addonRunUs(spec));
  return median(t);
}

function wholeProcessMedian(cmd: string, args: string[], n: number): number {
  const t: number[] = [];
  for (let i = 0; i < n + 5; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    const t1 = process.hrtime.bigint();
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status} ${r.error ?? ''}`);
    if (i >= 5) t.push(Number(t1 - t0) / 1000);
  }
  return median(t);
}

function runcBundle(dir: string, rootfs: string): string {
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(bundle);
  // `runc spec` writes its default config.json; we only change what a CRI runtime would.
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const cfg = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  cfg.process.terminal = false;
  cfg.process.args = ['/bin/true'];
  cfg.root = { path: rootfs, readonly: false };
  cfg.hostname = 'bench';
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(cfg, null, 2));
  return bundle;
}

function rssKiB(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function rssPerContainer(rootfs: string, n: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Warm up the code paths and the allocator so that one-time costs are not counted.
  const warm: ProcessHandle[] = [];
  for (let i = 0; i < 10; i++) {
    const h = await createProcess(fullSpec(rootfs, ['sleep', '60']));
    await startProcess(h);
    warm.push(h);
  }
  for (const h of warm) {
    signalProcess(h, 'SIGKILL');
    await h.exited;
    await releaseProcess(h);
  }
  gc?.();
  const before = rssKiB();
  const handles: ProcessHandle[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const h = await createProcess(fullSpec(rootfs, ['sleep', '60']));
      handles.push(h);
      await startProcess(h);
    }
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
    gc?.();
    return (rssKiB() - before) / n;
  } finally {
    for (const h of handles) {
      try {
        signalProcess(h, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const h of handles) {
      await h.exited;
      await releaseProcess(h);
    }
  }
}

/** The longest gap between 1 ms timer ticks while `n` containers are created and run at once. */
async function loopGapWhileStarting(rootfs: string, n: number): Promise<number> {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  try {
    await Promise.all(
      Array.from({ length: n }, async () => {
        const h = await createProcess(minimalSpec(rootfs, ['/bin/true']));
        await startProcess(h);
        await h.exited;
        await releaseProcess(h);
      }),
    );
  } finally {
    clearInterval(timer);
  }
  return maxGap;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodecri-bench-'));
  try {
    const rootfs = buildRootfs(dir);
    const floor = path.join(dir, 'spawn-floor');
    execFileSync('cc', ['-O2', '-Wall', '-o', floor, path.join(__dirname, '..', '..', 'bench', 'spawn-floor.c')]);

    const addon = await addonMedian(minimalSpec(rootfs, ['/bin/true']), iterations);
    const addonFull = await addonMedian(fullSpec(rootfs, ['/bin/true']), iterations);
    const floorLoop = Number(execFileSync(floor, [rootfs, 'loop', String(iterations)], { encoding: 'utf8' }).trim());
    const floorWhole = wholeProcessMedian(floor, [rootfs], iterations);
    const spawnOverhead = wholeProcessMedian('/bin/true', [], iterations);

    const bundle = runcBundle(dir, rootfs);
    const runcRoot = path.join(dir, 'runc-state');
    let runc = NaN;
    let runcNote = '';
    try {
      let i = 0;
      const t: number[] = [];
      for (let k = 0; k < runcIterations + 3; k++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `nodecri-bench-${process.pid}-${i++}`], { stdio: ['ignore', 'ignore', 'pipe'] });
        const t1 = process.hrtime.bigint();
        if (r.status !== 0) throw new Error(`runc run exited ${r.status}: ${r.stderr.toString().trim()}`);
        if (k >= 3) t.push(Number(t1 - t0) / 1000);
      }
      runc = median(t);
    } catch (e) {
      runcNote = ` (${(e as Error).message})`;
    }

    const rss = await rssPerContainer(rootfs, 100);
    const gap = await loopGapWhileStarting(rootfs, 50);

    const ms = (us: number): string => `${(us / 1000).toFixed(3)} ms`;
    console.log(`start-to-exit of /bin/true in a new container (median of ${iterations}; runc: ${runcIterations})`);
    console.log(`  addon, minimal spec (same work as the C floor) ${ms(addon)}`);
    console.log(`  addon, default spec (dev, masks, caps, nnp)    ${ms(addonFull)}`);
    console.log(`  C floor, in-process loop                       ${ms(floorLoop)}`);
    console.log(`  C floor, whole process (spawnSync)             ${ms(floorWhole)}   [spawnSync of /bin/true alone: ${ms(spawnOverhead)}]`);
    console.log(`  runc run                                       ${Number.isNaN(runc) ? 'n/a' + runcNote : ms(runc)}`);
    console.log('ratios');
    console.log(`  addon / C floor in-process     ${(addon / floorLoop).toFixed(2)}x   (target <= 2)`);
    console.log(`  addon / C floor whole process  ${(addon / floorWhole).toFixed(2)}x`);
    if (!Number.isNaN(runc)) console.log(`  addon / runc                   ${(addon / runc).toFixed(3)}   (target <= 0.2)`);
    console.log(`daemon RSS growth per running container (100 x sleep 60): ${rss.toFixed(1)} KiB   (target < 50)`);
    console.log(`longest event-loop gap while 50 containers start at once: ${gap.toFixed(1)} ms   (target < 20)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
