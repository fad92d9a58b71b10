/**
 * ListMetricDescriptors / ListPodSandboxMetrics / StreamPodSandboxMetrics: the cAdvisor-style
 * metrics kubelet can take from the runtime instead of cAdvisor (the peers' "CRI stats"
 * metrics), from the same cgroup numbers as the stats RPCs.
 */
import type { ServerStream, Unary } from '../handlers';
import type { CallContext } from '../context';
import type { Metric } from '../generated/runtime/v1/Metric';
import type { MetricDescriptor } from '../generated/runtime/v1/MetricDescriptor';
import type { PodSandboxMetrics } from '../generated/runtime/v1/PodSandboxMetrics';
import type { CgroupStats } from '../../linux/cgroups';
import { sendPages } from '../paging';

/** Each metric: its descriptor and how to read it from cgroup stats. */
const metrics: Array<MetricDescriptor & { type: 'COUNTER' | 'GAUGE'; read: (s: CgroupStats) => bigint | number | null }> = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed in nanoseconds',
    label_keys: [],
    type: 'COUNTER',
    read: (s) => s.cpuUsageNanos,
  },
  { name: 'container_memory_usage_bytes', help: 'Current memory usage in bytes', label_keys: [], type: 'GAUGE', read: (s) => s.memoryUsageBytes },
  { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes', label_keys: [], type: 'GAUGE', read: (s) => s.memoryWorkingSetBytes },
  { name: 'container_processes', help: 'Number of processes running inside the container', label_keys: [], type: 'GAUGE', read: (s) => s.pids },
  { name: 'container_oom_events_total', help: 'Count of out of memory events observed for the container', label_keys: [], type: 'COUNTER', read: (s) => s.oomKillCount },
];

function toMetrics(stats: CgroupStats | null, timestamp: string): Metric[] {
  if (!stats) return [];
  const out: Metric[] = [];
  for (const m of metrics) {
    const v = m.read(stats);
    if (v !== null) out.push({ name: m.name, timestamp, metric_type: m.type, label_values: [], value: { value: v.toString() } });
  }
  return out;
}

async function podMetrics(ctx: CallContext): Promise<PodSandboxMetrics[]> {
  return Promise.all(
    ctx.deps.sandboxes.list().map(async (sb) => {
      const pod = await ctx.deps.sandboxes.stats(sb);
      const containers = await Promise.all(
        ctx.deps.containers.ofSandbox(sb.id).map(async (c) => {
          const s = await ctx.deps.containers.stats(c);
          return { container_id: c.id, metrics: toMetrics(s.cgroup, s.timestamp) };
        }),
      );
      return { pod_sandbox_id: sb.id, metrics: toMetrics(pod.cgroup, pod.timestamp), container_metrics: containers };
    }),
  );
}

export const listMetricDescriptors: Unary<'ListMetricDescriptors'> = async () => ({
  descriptors: metrics.map(({ name, help, label_keys }) => ({ name, help, label_keys })),
});

export const listPodSandboxMetrics: Unary<'ListPodSandboxMetrics'> = async (_req, ctx) => ({ pod_metrics: await podMetrics(ctx) });

export const streamPodSandboxMetrics: ServerStream<'StreamPodSandboxMetrics'> = async (_req, ctx, send) => {
  const all = await podMetrics(ctx);
  sendPages(all, send, (pod_sandbox_metrics) => ({ pod_sandbox_metrics }));
};
