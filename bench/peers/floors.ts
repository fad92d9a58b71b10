/**
 * The floors the benches compare against, measured in the bench's own process: a container
 * started by the addon with the least spec that still makes one (new namespaces, /proc,
 * pivot_root), and the CNI chain's ADD called directly, with no runtime around either.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type ProcessSpec, baseProcessSpec, createProcess, releaseProcess, startProcess } from '../../src/native/process';
import { parseCniConfig } from '../../src/network/cni-config';
import { CniPluginRunner } from '../../src/network/cni-plugin';
import { debianCniDir, type TestCni } from '../../test/helpers/cni';

/** The least spec that is a container: new pid, mount, ipc, uts and net namespaces, /proc. */
export function minimalSpec(rootfs: string, args: string[]): ProcessSpec {
  return {
    ...baseProcessSpec(rootfs, args),
    namespaces: (['pid', 'mount', 'ipc', 'uts', 'network'] as const).map((type) => ({ type, path: null })),
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] }],
    env: ['PATH=/bin'],
  };
}

/** Start to exit of `spec` through the addon, in microseconds. */
export async function addonRunUs(spec: ProcessSpec): Promise<number> {
  const t0 = process.hrtime.bigint();
  const h = await createProcess(spec);
  await startProcess(h);
  const st = await h.exited;
  const t1 = process.hrtime.bigint();
  await releaseProcess(h);
  if (st.exitCode !== 0) throw new Error(`container exited with ${JSON.stringify(st)}`);
  return Number(t1 - t0) / 1000;
}

/** `n` timings (ms) of the chain's ADD called directly, each into a netns of its own, DEL after (not timed). */
export async function cniAddFloorMs(cni: TestCni, dir: string, n: number): Promise<number[]> {
  const net = parseCniConfig(cni.conflistFile, fs.readFileSync(cni.conflistFile, 'utf8'));
  const runner = new CniPluginRunner({ pluginDirs: [debianCniDir], cacheDir: path.join(dir, 'floor-cache'), timeoutMs: 30_000 });
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const ns = `nodecri-bench-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', ns]);
    const req = { containerId: `floor${i}`, netnsPath: `/var/run/netns/${ns}`, ifName: 'eth0', args: {}, capabilities: {} };
    try {
      const t0 = performance.now();
      await runner.add(net, req);
      ms.push(performance.now() - t0);
      await runner.del(net.name, net, req);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  }
  return ms;
}
