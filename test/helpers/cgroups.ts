/**
 * Where a controller's files are on this host, found the way the daemon finds them (its
 * mount classification over /proc/self/mountinfo), so that the tests that read a cgroup's
 * files work on a v1, hybrid or v2 host alike.
 */
import fs from 'node:fs';
import path from 'node:path';
import { classifyMounts } from '../../src/linux/cgroups/detect';
import { readMountInfo } from '../../src/linux/mountinfo';

export interface ControllerMount {
  /** the mount point of the hierarchy that carries the controller */
  dir: string;
  /** a v1 hierarchy (else the unified one) */
  v1: boolean;
}

/** The hierarchy `controller` lives on: its v1 mount, else the cgroup2 mount. */
export async function controllerMount(controller: string): Promise<ControllerMount> {
  const { v1Mounts, unifiedMount } = classifyMounts(await readMountInfo());
  const v1 = v1Mounts.get(controller);
  if (v1 !== undefined) return { dir: v1, v1: true };
  if (unifiedMount === null) throw new Error(`no hierarchy carries the ${controller} controller`);
  return { dir: unifiedMount, v1: false };
}

/** A cgroup's memory limit as the kernel shows it (v1 memory.limit_in_bytes, v2 memory.max). */
export async function memoryLimitOf(cgroupPath: string): Promise<string> {
  const m = await controllerMount('memory');
  return fs.readFileSync(path.join(m.dir, cgroupPath, m.v1 ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8').trim();
}

/** A cgroup's CPU time so far in ns, as the kernel counts it (v1 cpuacct.usage, v2 cpu.stat usage_usec). */
export async function cpuUsageNanosOf(cgroupPath: string): Promise<bigint> {
  const m = await controllerMount('cpuacct').catch(() => controllerMount('cpu'));
  if (m.v1) return BigInt(fs.readFileSync(path.join(m.dir, cgroupPath, 'cpuacct.usage'), 'utf8').trim());
  const usec = /^usage_usec (\d+)$/m.exec(fs.readFileSync(path.join(m.dir, cgroupPath, 'cpu.stat'), 'utf8'));
  if (!usec) throw new Error(`no usage_usec in ${path.join(m.dir, cgroupPath, 'cpu.stat')}`);
  return BigInt(usec[1]) * 1000n;
}
