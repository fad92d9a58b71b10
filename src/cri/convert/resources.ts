/**
 * CRI LinuxContainerResources to the cgroup manager's Resources. The CRI says 0 means "not
 * specified" for every number; those become null (leave as it is).
 */
import type { Resources } from '../../linux/cgroups';
import { noResources } from '../../linux/cgroups';
import type { LinuxContainerResources__Output } from '../generated/runtime/v1/LinuxContainerResources';

const num = (s: string): number | null => (s === '' || s === '0' ? null : Number(s));
const big = (s: string): bigint | null => (s === '' || s === '0' ? null : BigInt(s));

export function resourcesFromCri(r: LinuxContainerResources__Output | null): Resources | null {
  if (!r) return null;
  return {
    ...noResources(),
    cpuShares: num(r.cpu_shares),
    cpuQuota: num(r.cpu_quota),
    cpuPeriod: num(r.cpu_period),
    cpusetCpus: r.cpuset_cpus || null,
    cpusetMems: r.cpuset_mems || null,
    memoryLimitBytes: big(r.memory_limit_in_bytes),
    memorySwapLimitBytes: big(r.memory_swap_limit_in_bytes),
    hugepageLimits: r.hugepage_limits.map((h) => ({ pageSize: h.page_size, limit: BigInt(h.limit || '0') })),
    unified: { ...r.unified },
  };
}

/** Pod overhead plus pod resources, summed where both are set (kubelet's pod cgroup sizing). */
export function podResources(overhead: Resources | null, resources: Resources | null): Resources | null {
  if (!overhead) return resources;
  if (!resources) return overhead;
  const addN = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : a + b);
  const addB = (a: bigint | null, b: bigint | null) => (a === null ? b : b === null ? a : a + b);
  return {
    ...resources,
    cpuShares: addN(overhead.cpuShares, resources.cpuShares),
    cpuQuota: addN(overhead.cpuQuota, resources.cpuQuota),
    memoryLimitBytes: addB(overhead.memoryLimitBytes, resources.memoryLimitBytes),
  };
}
