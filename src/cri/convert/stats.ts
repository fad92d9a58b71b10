/** Domain usage numbers to the CRI's stats messages (UInt64Value wrappers, ns timestamps). */
import type { CgroupStats } from '../../linux/cgroups';
import type { CpuUsage } from '../generated/runtime/v1/CpuUsage';
import type { MemoryUsage } from '../generated/runtime/v1/MemoryUsage';

const u64 = (v: bigint | number | null | undefined) => (v === null || v === undefined ? null : { value: v.toString() });

export function cpuUsage(timestamp: string, cg: CgroupStats | null, nanoCores: bigint | null): CpuUsage {
  return { timestamp, usage_core_nano_seconds: u64(cg?.cpuUsageNanos), usage_nano_cores: u64(nanoCores) };
}

export function memoryUsage(timestamp: string, cg: CgroupStats | null): MemoryUsage {
  const available =
    cg?.memoryLimitBytes != null && cg.memoryWorkingSetBytes != null && cg.memoryLimitBytes > cg.memoryWorkingSetBytes ? cg.memoryLimitBytes - cg.memoryWorkingSetBytes : null;
  return {
    timestamp,
    working_set_bytes: u64(cg?.memoryWorkingSetBytes),
    usage_bytes: u64(cg?.memoryUsageBytes),
    available_bytes: u64(available),
  };
}

export { u64 };
