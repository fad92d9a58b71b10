/**
 * Cost of making a cgroup: create (in every hierarchy) + apply a full set of limits +
 * remove, through the manager and addon, against the same filesystem operations done by a
 * shell script with mkdir/echo/cat/rmdir. The script is generated from the operations the
 * manager actually performed (recorded at the native facade), so both sides do the same
 * work. Needs root. Usage: node dist/bench/cgroup-write.js [iterations=200]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type CgroupManager, type Resources, cgroupManagerFor, createCgroupManager, noResources } from '../src/linux/cgroups';
import {
  type CgroupCreateSpec,
  type CgroupDeviceRule,
  type CgroupFileRead,
  type CgroupFileWrite,
  type CgroupKillSpec,
  type CgroupNative,
  cgroupNative,
} from '../src/native/cgroups';
import { median, quantile } from './stats';

type Op = { kind: 'mkdir'; spec: CgroupCreateSpec } | { kind: 'write'; w: CgroupFileWrite } | { kind: 'read'; r: CgroupFileRead } | { kind: 'rmdir'; dir: string };

/** Passes through to the addon and records what was asked. */
class Recorder implements CgroupNative {
  ops: Op[] = [];
  constructor(private readonly inner: CgroupNative) {}
  cgroupCreate(specs: CgroupCreateSpec[]): Promise<void> {
    for (const spec of specs) this.ops.push({ kind: 'mkdir', spec });
    return this.inner.cgroupCreate(specs);
  }
  cgroupWriteFiles(writes: CgroupFileWrite[]): Promise<number[]> {
    for (const w of writes) this.ops.push({ kind: 'write', w });
    return this.inner.cgroupWriteFiles(writes);
  }
  cgroupReadFiles(reads: CgroupFileRead[]): Promise<(string | null)[]> {
    for (const r of reads) this.ops.push({ kind: 'read', r });
    return this.inner.cgroupReadFiles(reads);
  }
  cgroupKillAll(spec: CgroupKillSpec): Promise<void> {
    return this.inner.cgroupKillAll(spec);
  }
  cgroupRemove(dirs: string[]): Promise<void> {
    for (const dir of dirs) this.ops.push({ kind: 'rmdir', dir });
    return this.inner.cgroupRemove(dirs);
  }
  // The bench writes no device rules; these only pass through.
  cgroupDeviceFilter(dir: string, rules: CgroupDeviceRule[]): Promise<void> {
    return this.inner.cgroupDeviceFilter(dir, rules);
  }
  cgroupDeviceFilterProbe(): Promise<number> {
    return this.inner.cgroupDeviceFilterProbe();
  }
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The recorded operations as sh commands (the parent exists and is populated already). */
function toShell(ops: Op[]): string {
  const lines: string[] = [];
  for (const op of ops) {
    if (op.kind === 'mkdir') {
      const dir = `${op.spec.root}/${op.spec.path}`;
      lines.push(`mkdir -p ${q(dir)}`);
      const parentDir = dir.slice(0, dir.lastIndexOf('/'));
      for (const f of op.spec.inheritFiles) lines.push(`cat ${q(`${parentDir}/${f}`)} > ${q(`${dir}/${f}`)}`);
    } else if (op.kind === 'write') {
      const cmd = `echo ${q(op.w.value)} > ${q(`${op.w.dir}/${op.w.file}`)}`;
      lines.push(op.w.mayFail ? `{ ${cmd}; } 2>/dev/null || true` : cmd);
    } else if (op.kind === 'read') {
      lines.push(`cat ${q(`${op.r.dir}/${op.r.file}`)} > /dev/null`);
    } else {
      lines.push(`rmdir ${q(op.dir)}`);
    }
  }
  return lines.join('\n');
}

function runSh(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-e', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sh exited ${code}: ${err.trim()}`))));
  });
}

async function timeIt(n: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out;
}

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 200);
  const { manager: probe, layout } = await createCgroupManager();
  const parent = `/nodecri-bench-${randomBytes(4).toString('hex')}`;
  const leaf = `${parent}/c`;
  const resources: Resources = {
    ...noResources(),
    cpuShares: 512,
    cpuQuota: 50_000,
    cpuPeriod: 100_000,
    cpusetCpus: '0',
    cpusetMems: '0',
    memoryLimitBytes: 256n << 20n,
    memorySwapLimitBytes: layout.memswSupported || layout.mode === 'v2' ? 512n << 20n : null,
    pidsLimit: 64,
    hugepageLimits: probe.paths(leaf).hugetlb !== undefined ? [{ pageSize: '2MB', limit: 8n << 20n }] : [],
  };
  const manager: CgroupManager = probe;
  try {
    await manager.create(parent, noResources());
    // Record one create+remove to generate the equivalent shell script.
    const rec = new Recorder(cgroupNative);
    const recorded = cgroupManagerFor(layout, rec);
    await recorded.create(leaf, resources);
    await recorded.remove(leaf);
    const script = toShell(rec.ops);

    const once = async (): Promise<void> => {
      await manager.create(leaf, resources);
      await manager.remove(leaf);
    };
    await timeIt(20, once); // warm-up: JIT, dentries
    const addon = await timeIt(iterations, once);
    await timeIt(5, () => runSh(script));
    const shell = await timeIt(iterations, () => runSh(script));
    // One sh running the body in a loop: no spawn per iteration (mkdir/cat/rmdir still fork).
    const t0 = process.hrtime.bigint();
    await runSh(`i=0\nwhile [ $i -lt ${iterations} ]; do\n${script}\ni=$((i+1))\ndone`);
    const loopMean = Number(process.hrtime.bigint() - t0) / 1000 / iterations;

    const result = {
      bench: 'cgroup-write',
      mode: layout.mode,
      iterations,
      fileOps: rec.ops.length,
      addonMedianUs: Math.round(median(addon)),
      addonP90Us: Math.round(quantile(addon, 0.9)),
      shellPerScriptMedianUs: Math.round(median(shell)),
      shellPerScriptP90Us: Math.round(quantile(shell, 0.9)),
      shellLoopMeanUs: Math.round(loopMean),
    };
    console.log(JSON.stringify(result));
    console.log(`cgroup create+limits+remove (${layout.mode}, ${rec.ops.length} file ops, ${iterations} runs)`);
    console.log(`  addon:                      median ${result.addonMedianUs} µs (p90 ${result.addonP90Us} µs)`);
    console.log(
      `  sh -c script per iteration: median ${result.shellPerScriptMedianUs} µs (p90 ${result.shellPerScriptP90Us} µs)  ratio ${(median(shell) / median(addon)).toFixed(1)}x`,
    );
    console.log(`  one sh looping the script:  mean   ${result.shellLoopMeanUs} µs  ratio ${(loopMean / median(addon)).toFixed(1)}x`);
  } finally {
    await manager.remove(parent);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
