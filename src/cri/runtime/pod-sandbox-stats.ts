import type { ServerStream, Unary } from '../handlers';
import type { CallContext } from '../context';
import type { PodSandboxStats } from '../generated/runtime/v1/PodSandboxStats';
import type { SandboxRecord } from '../../sandbox/model';
import { selectSandboxes } from '../convert/filter';
import { sendPages } from '../paging';
import { cpuUsage, memoryUsage, u64 } from '../convert/stats';

async function statsOf(ctx: CallContext, r: SandboxRecord): Promise<PodSandboxStats> {
  const s = await ctx.deps.sandboxes.stats(r);
  return {
    attributes: {
      id: r.id,
      metadata: { name: r.spec.name, namespace: r.spec.namespace, uid: r.spec.uid, attempt: r.spec.attempt },
      labels: r.spec.labels,
      annotations: r.spec.annotations,
    },
    linux: {
      cpu: cpuUsage(s.timestamp, s.cgroup, s.nanoCores),
      memory: memoryUsage(s.timestamp, s.cgroup),
      network: s.network
        ? {
            timestamp: s.timestamp,
            default_interface: {
              name: s.network.name,
              rx_bytes: u64(s.network.rxBytes),
              rx_errors: u64(s.network.rxErrors),
              tx_bytes: u64(s.network.txBytes),
              tx_errors: u64(s.network.txErrors),
            },
            interfaces: [],
          }
        : null,
      process: { timestamp: s.timestamp, process_count: u64(s.cgroup?.pids) },
      containers: [],
    },
  };
}

export const podSandboxStats: Unary<'PodSandboxStats'> = async (req, ctx) => ({
  stats: await statsOf(ctx, ctx.deps.sandboxes.mustGet(req.pod_sandbox_id)),
});

export const listPodSandboxStats: Unary<'ListPodSandboxStats'> = async (req, ctx) => ({
  stats: await Promise.all(selectSandboxes(ctx.deps, req.filter).map((r) => statsOf(ctx, r))),
});

export const streamPodSandboxStats: ServerStream<'StreamPodSandboxStats'> = async (req, ctx, send) => {
  const all = await Promise.all(selectSandboxes(ctx.deps, req.filter).map((r) => statsOf(ctx, r)));
  sendPages(all, send, (pod_sandbox_stats) => ({ pod_sandbox_stats }));
};
