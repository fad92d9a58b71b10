/**
 * A container's cgroup and writable layer as numbers: its usage (ContainerStats, and the
 * pod's metrics) and its limits (UpdateContainerResources).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { failedPrecondition } from '../domain/errors';
import { nowNanos } from '../domain/events';
import type { CgroupStats, Resources } from '../linux/cgroups';
import type { ContainerContext } from './context';
import { throwAsResourceError } from '../domain/limits';
import type { ContainerRecord } from './model';

export async function updateResources(ctx: ContainerContext, idOrPrefix: string, resources: Resources | null): Promise<void> {
  const r = ctx.mustGet(idOrPrefix);
  if (r.state === 'CONTAINER_EXITED') throw failedPrecondition(`container ${r.id} has exited`);
  await ctx.locked(r.id, async () => {
    if (resources) await ctx.opts.host.cgroups.update(r.cgroupPath, resources).catch(throwAsResourceError);
    r.resources = resources;
    await ctx.persist(r);
  });
}

export async function stats(
  ctx: ContainerContext,
  r: ContainerRecord,
): Promise<{ timestamp: string; cgroup: CgroupStats | null; nanoCores: bigint | null; writable: { bytes: bigint; inodes: bigint } | null }> {
  const timestamp = nowNanos();
  const cgroup = r.state === 'CONTAINER_RUNNING' ? await ctx.opts.host.cgroups.stats(r.cgroupPath).catch(() => null) : null;
  const nanoCores = cgroup?.cpuUsageNanos != null ? ctx.cpuRate.sample(r.id, cgroup.cpuUsageNanos, BigInt(timestamp)) : null;
  const writable = r.upperDir ? await diskUsage(r.upperDir).catch(() => null) : null;
  return { timestamp, cgroup, nanoCores, writable };
}

/** Bytes and inodes under a directory (the writable layer), without blocking the loop. */
async function diskUsage(dir: string): Promise<{ bytes: bigint; inodes: bigint }> {
  let bytes = 0n;
  let inodes = 0n;
  const walk = async (d: string): Promise<void> => {
    const entries = await fsp.readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = await fsp.lstat(p, { bigint: true });
      inodes++;
      bytes += st.blocks * 512n;
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { bytes, inodes };
}
