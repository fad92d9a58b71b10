/** Container records to the CRI's status, list and stats messages. */
import type { ContainerRecord } from '../../container/model';
import type { ContainerStatus } from '../generated/runtime/v1/ContainerStatus';
import type { Container } from '../generated/runtime/v1/Container';
import type { LinuxContainerResources } from '../generated/runtime/v1/LinuxContainerResources';
import type { Resources } from '../../linux/cgroups';
import type { OciSpec } from '../../oci/types';

function resourcesToCri(r: Resources | null): LinuxContainerResources | null {
  if (!r) return null;
  const s = (v: number | bigint | null) => (v === null ? '0' : v.toString());
  return {
    cpu_period: s(r.cpuPeriod),
    cpu_quota: s(r.cpuQuota),
    cpu_shares: s(r.cpuShares),
    memory_limit_in_bytes: s(r.memoryLimitBytes),
    memory_swap_limit_in_bytes: s(r.memorySwapLimitBytes),
    cpuset_cpus: r.cpusetCpus ?? '',
    cpuset_mems: r.cpusetMems ?? '',
    hugepage_limits: r.hugepageLimits.map((h) => ({ page_size: h.pageSize, limit: h.limit.toString() })),
    unified: r.unified,
  };
}

export function containerStatusToCri(r: ContainerRecord, spec: OciSpec | null): ContainerStatus {
  return {
    id: r.id,
    metadata: r.config.metadata,
    state: r.state,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    exit_code: r.exitCode,
    image: r.config.image,
    image_ref: r.image.ref,
    image_id: r.image.id,
    reason: r.reason,
    message: r.message,
    labels: r.config.labels,
    annotations: r.config.annotations,
    mounts: r.config.mounts,
    log_path: r.logPath,
    resources: { linux: resourcesToCri(r.resources) },
    user: spec
      ? {
          linux: {
            uid: String(spec.process.user.uid),
            gid: String(spec.process.user.gid),
            supplemental_groups: spec.process.user.additionalGids.map(String),
          },
        }
      : null,
  };
}

export function containerListItem(r: ContainerRecord): Container {
  return {
    id: r.id,
    pod_sandbox_id: r.sandboxId,
    metadata: r.config.metadata,
    image: r.config.image,
    image_ref: r.image.ref,
    image_id: r.image.id,
    state: r.state,
    created_at: r.createdAt,
    labels: r.config.labels,
    annotations: r.config.annotations,
  };
}
