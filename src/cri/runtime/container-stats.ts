import type { ServerStream, Unary } from '../handlers';
import type { CallContext } from '../context';
import type { ContainerStats } from '../generated/runtime/v1/ContainerStats';
import type { ContainerRecord } from '../../container/model';
import { failedPrecondition } from '../../domain/errors';
import { containerAttributes } from '../convert/container';
import { selectContainers } from '../convert/filter';
import { sendPages } from '../paging';
import { cpuUsage, memoryUsage, u64 } from '../convert/stats';

/**
 * A container's stats as containerd 1.6 gives them: a container that is not running (it
 * has no task there) has its attributes and writable layer but no cpu or memory at all
 * (kubelet then counts zero usage), rather than usage messages with every value unset.
 */
export async function containerStatsOf(ctx: CallContext, r: ContainerRecord): Promise<ContainerStats> {
  const s = await ctx.deps.containers.stats(r);
  const running = r.state === 'CONTAINER_RUNNING';
  return {
    attributes: containerAttributes(r),
    cpu: running ? cpuUsage(s.timestamp, s.cgroup, s.nanoCores) : null,
    memory: running ? memoryUsage(s.timestamp, s.cgroup) : null,
    writable_layer: s.writable ? { timestamp: s.timestamp, fs_id: { mountpoint: r.rootfs }, used_bytes: u64(s.writable.bytes), inodes_used: u64(s.writable.inodes) } : null,
  };
}

/**
 * One container's stats: an error for one that is not running, as containerd 1.6 answers
 * (its task metrics come back empty). containerd's code is UNKNOWN only because its error
 * is unclassified; the caller asked for what a container only has while it runs, which is
 * FAILED_PRECONDITION here. ListContainerStats lists such a container (containerStatsOf).
 */
export const containerStats: Unary<'ContainerStats'> = async (req, ctx) => {
  const r = ctx.deps.containers.mustGet(req.container_id);
  if (r.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${r.id} is ${r.state.replace('CONTAINER_', '').toLowerCase()}, not running: it has no usage to report`);
  return { stats: await containerStatsOf(ctx, r) };
};

export const listContainerStats: Unary<'ListContainerStats'> = async (req, ctx) => ({
  stats: await Promise.all(selectContainers(ctx.deps, req.filter).map((r) => containerStatsOf(ctx, r))),
});

export const streamContainerStats: ServerStream<'StreamContainerStats'> = async (req, ctx, send) => {
  const all = await Promise.all(selectContainers(ctx.deps, req.filter).map((r) => containerStatsOf(ctx, r)));
  sendPages(all, send, (container_stats) => ({ container_stats }));
};
