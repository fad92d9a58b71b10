import type { ServerStream, Unary } from '../handlers';
import type { CallContext } from '../context';
import type { ContainerStats } from '../generated/runtime/v1/ContainerStats';
import type { ContainerRecord } from '../../container/model';
import { containerAttributes } from '../convert/container';
import { selectContainers } from '../convert/filter';
import { sendPages } from '../paging';
import { cpuUsage, memoryUsage, u64 } from '../convert/stats';

export async function containerStatsOf(ctx: CallContext, r: ContainerRecord): Promise<ContainerStats> {
  const s = await ctx.deps.containers.stats(r);
  return {
    attributes: containerAttributes(r),
    cpu: cpuUsage(s.timestamp, s.cgroup, s.nanoCores),
    memory: memoryUsage(s.timestamp, s.cgroup),
    writable_layer: s.writable ? { timestamp: s.timestamp, fs_id: { mountpoint: r.rootfs }, used_bytes: u64(s.writable.bytes), inodes_used: u64(s.writable.inodes) } : null,
  };
}

export const containerStats: Unary<'ContainerStats'> = async (req, ctx) => ({
  stats: await containerStatsOf(ctx, ctx.deps.containers.mustGet(req.container_id)),
});

export const listContainerStats: Unary<'ListContainerStats'> = async (req, ctx) => ({
  stats: await Promise.all(selectContainers(ctx.deps, req.filter).map((r) => containerStatsOf(ctx, r))),
});

export const streamContainerStats: ServerStream<'StreamContainerStats'> = async (req, ctx, send) => {
  const all = await Promise.all(selectContainers(ctx.deps, req.filter).map((r) => containerStatsOf(ctx, r)));
  sendPages(all, send, (container_stats) => ({ container_stats }));
};
