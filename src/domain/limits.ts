/**
 * Input the kernel would refuse only half-way through an operation, checked up front so
 * that the caller gets INVALID_ARGUMENT naming the field and nothing is left behind: paths
 * longer than PATH_MAX or with a component longer than NAME_MAX, and cgroup resources
 * (the cgroup manager says which resource; here it gets its CRI name).
 */
import { CgroupConfigError, type ResourceField } from '../linux/cgroups';
import { invalidArgument } from './errors';

/** Linux's PATH_MAX (with the terminating NUL) and NAME_MAX, in bytes. */
export const PATH_MAX = 4096;
export const NAME_MAX = 255;

/** A path for a message: quoted, and cut when long (the status would carry it all). */
export function quotePath(p: string): string {
  return JSON.stringify(p.length > 96 ? `${p.slice(0, 64)}...${p.slice(-16)}` : p);
}

/**
 * Why `p` cannot be a path the kernel takes, or null. `prefixBytes` counts what the path
 * is joined under (a rootfs, for a path inside the container).
 */
export function pathLengthError(p: string, prefixBytes = 0): string | null {
  const bytes = Buffer.byteLength(p) + prefixBytes;
  if (bytes >= PATH_MAX) return `is ${bytes} bytes${prefixBytes > 0 ? ' where it is made' : ''}, over PATH_MAX (${PATH_MAX})`;
  for (const c of p.split('/')) {
    const n = Buffer.byteLength(c);
    if (n > NAME_MAX) return `has a component of ${n} bytes, over NAME_MAX (${NAME_MAX})`;
  }
  return null;
}

/** Throws INVALID_ARGUMENT naming `field` when `p` is too long for the kernel. */
export function checkPathLength(field: string, p: string, prefixBytes = 0): void {
  const why = pathLengthError(p, prefixBytes);
  if (why !== null) throw invalidArgument(`${field} ${quotePath(p)} ${why}`);
}

/** The CRI's names for the resources (LinuxContainerResources). */
const criResourceNames: Record<ResourceField, string> = {
  cpuShares: 'cpu_shares',
  cpuQuota: 'cpu_quota',
  cpuPeriod: 'cpu_period',
  cpusetCpus: 'cpuset_cpus',
  cpusetMems: 'cpuset_mems',
  memoryLimitBytes: 'memory_limit_in_bytes',
  memorySwapLimitBytes: 'memory_swap_limit_in_bytes',
  pidsLimit: 'pids_limit',
  hugepageLimits: 'hugepage_limits',
  unified: 'unified',
  devices: 'devices',
};

/**
 * A cgroup manager's refusal of a resource given at `at` ("linux.resources") as the
 * caller's invalid argument naming the CRI field; anything else unchanged.
 */
export function resourceError(e: unknown, at: string): unknown {
  if (!(e instanceof CgroupConfigError) || e.field === null) return e;
  return invalidArgument(`${at}.${criResourceNames[e.field]}: ${e.detail}`);
}

/**
 * resourceError for the resources of a pod or a container, which the CRI names
 * linux.resources in both configs (and in UpdateContainerResources); a catch handler.
 */
export function throwAsResourceError(e: unknown): never {
  throw resourceError(e, 'linux.resources');
}
