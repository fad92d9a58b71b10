/**
 * The cgroup manager's public types. A cgroup is named by one path ("/kubepods/pod1/c1")
 * that is the same in every hierarchy; the manager places it under each controller's
 * mount (v1), under the unified mount (v2), or both (hybrid).
 */

import type { CgroupDeviceRule } from '../../native/cgroups';

/** How the host mounts cgroups, decided once at start-up from /proc/self/mountinfo. */
export type CgroupMode = 'v1' | 'hybrid' | 'v2';

/** The controllers the manager creates cgroups in and writes limits for. */
export type ControllerName = 'cpu' | 'cpuacct' | 'cpuset' | 'memory' | 'pids' | 'hugetlb' | 'freezer' | 'devices';

/**
 * One device rule (runtime-spec linux.resources.devices with its defaults filled in). A list
 * is read as a v1 devices cgroup reads the writes of its rules in order: the last rule that
 * matches an access decides, and the first rule must be for every device ("a").
 */
export type DeviceRule = CgroupDeviceRule;

/**
 * What enforces device rules: "auto" is the v1 devices controller where it is mounted and
 * the cgroup2 BPF device program where the cgroup has a cgroup2 dir (on a hybrid host, both:
 * the kernel checks both); "v1" or "bpf" is that one only.
 */
export type DeviceEnforcement = 'auto' | 'v1' | 'bpf';

export interface HugepageLimit {
  /** Page size as the kernel names it in hugetlb.<size>.*: "2MB", "1GB", "64KB". */
  pageSize: string;
  /** Bytes. */
  limit: bigint;
}

/**
 * CRI-style resources. Every property is always set; `null` means "leave as it is". The
 * CRI layer maps its zero values ("0 = not specified") to null before calling.
 */
export interface Resources {
  /** Relative CPU weight in v1 units (2..262144, clamped); v2 gets cpu.weight from it. */
  cpuShares: number | null;
  /** CFS quota in microseconds per period; <= 0 means unlimited. */
  cpuQuota: number | null;
  /** CFS period in microseconds. */
  cpuPeriod: number | null;
  /** cpuset lists such as "0-3,6"; "" is treated like null. */
  cpusetCpus: string | null;
  cpusetMems: string | null;
  /** Bytes; negative means unlimited. */
  memoryLimitBytes: bigint | null;
  /** Memory plus swap in bytes, as in v1 and the CRI; negative means unlimited. */
  memorySwapLimitBytes: bigint | null;
  /** Maximum number of tasks; <= 0 means unlimited. */
  pidsLimit: number | null;
  hugepageLimits: HugepageLimit[];
  /** v2 control files written verbatim ({"memory.high": "1G"}), after everything else. */
  unified: Record<string, string>;
  /** Device rules, applied before the other resources; null leaves them as they are. */
  devices: DeviceRule[] | null;
}

/** Resources with nothing set, to spread over: `{ ...noResources(), cpuShares: 512 }`. */
export function noResources(): Resources {
  return {
    cpuShares: null,
    cpuQuota: null,
    cpuPeriod: null,
    cpusetCpus: null,
    cpusetMems: null,
    memoryLimitBytes: null,
    memorySwapLimitBytes: null,
    pidsLimit: null,
    hugepageLimits: [],
    unified: {},
    devices: null,
  };
}

/** Usage numbers; null where the controller providing them is not available. */
export interface CgroupStats {
  /** Total CPU time of all tasks, nanoseconds. */
  cpuUsageNanos: bigint | null;
  memoryUsageBytes: bigint | null;
  /** Usage minus inactive file pages, floored at 0: what kubelet/cadvisor call working set. */
  memoryWorkingSetBytes: bigint | null;
  /** null when unlimited (or no memory controller). */
  memoryLimitBytes: bigint | null;
  pids: number | null;
  oomKillCount: number | null;
}

/**
 * Absolute cgroup directory per controller; "unified" is the cgroup2 directory (v2 and
 * hybrid). Several controllers may share one directory.
 */
export type CgroupPaths = Readonly<Partial<Record<ControllerName | 'unified', string>>>;

/** Which device mechanisms a manager applies rules with. */
export interface DeviceControl {
  /** devices.deny / devices.allow in the v1 devices controller */
  v1: boolean;
  /** a BPF_PROG_TYPE_CGROUP_DEVICE program on the cgroup2 dir */
  bpf: boolean;
}

/**
 * The cgroupfs backend (crun's cgroup vtable, youki's manager trait). All methods take the
 * cgroup's path ("/parent/child"); create, remove and killAll are idempotent.
 */
export interface CgroupManager {
  readonly mode: CgroupMode;
  /** The mechanisms that enforce device rules on this host, as configured. */
  readonly deviceControl: DeviceControl;
  /** Makes the cgroup (and missing parents) in every hierarchy, then applies resources. */
  create(path: string, resources: Resources): Promise<void>;
  /** Applies the set (non-null) resources to an existing cgroup. */
  update(path: string, resources: Resources): Promise<void>;
  /** Moves a process (all its threads) into the cgroup in every hierarchy. */
  attach(path: string, pid: number): Promise<void>;
  stats(path: string): Promise<CgroupStats>;
  /** Kills every task in the cgroup and its children and waits until they are gone. */
  killAll(path: string): Promise<void>;
  /** Removes the cgroup, with any child cgroups, from every hierarchy. */
  remove(path: string): Promise<void>;
  /** Where the cgroup lives, per controller; pure, touches nothing. */
  paths(path: string): CgroupPaths;
}
