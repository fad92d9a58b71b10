/**
 * hugetlb: per page size limits. The kernel names each size in its file names the way
 * mm/hugetlb_cgroup.c formats it ("64KB", "2MB", "1GB"): v1 hugetlb.<size>.limit_in_bytes,
 * v2 hugetlb.<size>.max.
 */
import { CgroupConfigError, type ControllerWriter, type FileValue, fv } from './common';
import type { Resources } from './types';

const KB = 1024n;
const MB = 1024n * KB;
const GB = 1024n * MB;

/** The kernel's name for a page size in bytes: whole GB, else whole MB, else KB. */
export function hugepageSizeName(bytes: bigint): string {
  if (bytes <= 0n) throw new CgroupConfigError(`hugepage size must be positive: ${bytes}`, 'hugepageLimits');
  if (bytes >= GB) return `${bytes / GB}GB`;
  if (bytes >= MB) return `${bytes / MB}MB`;
  return `${bytes / KB}KB`;
}

const UNITS: Record<string, bigint> = { k: KB, m: MB, g: GB };

/**
 * Bytes of a page size written as "2MB", "2048kB" (sysfs: hugepages-2048kB), "1GB" or
 * "2Mi" (Kubernetes quantities); all units are binary, as they are for page sizes.
 */
export function parseHugepageSize(s: string): bigint {
  const m = /^(\d+)\s*([kmgKMG])(?:i?[bB]|i)?$/.exec(s.trim());
  if (!m) throw new CgroupConfigError(`invalid hugepage size: ${JSON.stringify(s)}`, 'hugepageLimits');
  const bytes = BigInt(m[1]) * UNITS[m[2].toLowerCase()];
  if (bytes === 0n) throw new CgroupConfigError(`invalid hugepage size: ${JSON.stringify(s)}`, 'hugepageLimits');
  return bytes;
}

/** Any accepted spelling to the kernel's: "2048kB" -> "2MB". */
export function canonicalHugepageSize(s: string): string {
  return hugepageSizeName(parseHugepageSize(s));
}

function entries(r: Resources): { size: string; limit: bigint }[] {
  return r.hugepageLimits.map((h) => ({ size: canonicalHugepageSize(h.pageSize), limit: h.limit }));
}

export const hugetlb: ControllerWriter = {
  name: 'hugetlb',
  wants: (r) => r.hugepageLimits.length > 0,
  v1: (r): FileValue[] => entries(r).map((e) => fv(`hugetlb.${e.size}.limit_in_bytes`, e.limit < 0n ? '-1' : String(e.limit))),
  v2: (r): FileValue[] => entries(r).map((e) => fv(`hugetlb.${e.size}.max`, e.limit < 0n ? 'max' : String(e.limit))),
};
