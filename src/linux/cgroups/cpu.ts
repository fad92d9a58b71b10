/**
 * cpu: shares/weight and CFS bandwidth (quota per period), plus CPU usage for stats.
 * v1: cpu.shares, cpu.cfs_period_us, cpu.cfs_quota_us; v2: cpu.weight, cpu.max.
 */
import { type ControllerWriter, type FileValue, fv, parseKeyValues, parseSingle, requireInteger } from './common';
import type { Resources } from './types';

/** The kernel's range for v1 cpu.shares; values outside are clamped by it anyway. */
export const MIN_SHARES = 2;
export const MAX_SHARES = 262144;

function clampShares(shares: number): number {
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

/**
 * v1 shares to v2 cpu.weight, runc's linear map of [2, 262144] onto [1, 10000]:
 * 1 + ((shares - 2) * 9999) / 262142 in integer arithmetic. The default 1024 gives 39.
 */
export function sharesToWeight(shares: number): number {
  requireInteger('cpuShares', shares);
  const s = clampShares(shares);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/**
 * The cpu.max line: "<quota|max> [period]". Unset or non-positive quota is "max"; the
 * period is left out when unset so that the kernel keeps the current one. null when
 * neither is set.
 */
export function cpuMaxValue(quota: number | null, period: number | null): string | null {
  if (quota === null && period === null) return null;
  const q = quota === null || quota <= 0 ? 'max' : String(quota);
  return period === null ? q : `${q} ${period}`;
}

function validate(r: Resources): void {
  if (r.cpuShares !== null) requireInteger('cpuShares', r.cpuShares);
  if (r.cpuQuota !== null) requireInteger('cpuQuota', r.cpuQuota);
  if (r.cpuPeriod !== null) requireInteger('cpuPeriod', r.cpuPeriod);
}

export const cpu: ControllerWriter = {
  name: 'cpu',
  wants: (r) => r.cpuShares !== null || r.cpuQuota !== null || r.cpuPeriod !== null,

  v1(r) {
    validate(r);
    const out: FileValue[] = [];
    if (r.cpuShares !== null) out.push(fv('cpu.shares', String(clampShares(r.cpuShares))));
    const quota = r.cpuQuota === null ? null : r.cpuQuota <= 0 ? '-1' : String(r.cpuQuota);
    if (r.cpuPeriod !== null && quota !== null) {
      // Like runc: a period smaller than the current one can be refused (EINVAL) because
      // old quota / new period would exceed the parent's bandwidth. Let that first try
      // fail, set the quota, then set the period again (a no-op if the first one took).
      out.push(fv('cpu.cfs_period_us', String(r.cpuPeriod), ['EINVAL']));
      out.push(fv('cpu.cfs_quota_us', quota));
      out.push(fv('cpu.cfs_period_us', String(r.cpuPeriod)));
    } else if (r.cpuPeriod !== null) {
      out.push(fv('cpu.cfs_period_us', String(r.cpuPeriod)));
    } else if (quota !== null) {
      out.push(fv('cpu.cfs_quota_us', quota));
    }
    return out;
  },

  v2(r) {
    validate(r);
    const out: FileValue[] = [];
    if (r.cpuShares !== null) out.push(fv('cpu.weight', String(sharesToWeight(r.cpuShares))));
    const max = cpuMaxValue(r.cpuQuota, r.cpuPeriod);
    if (max !== null) out.push(fv('cpu.max', max));
    return out;
  },
};

/** v1 cpuacct.usage: total nanoseconds. */
export function cpuUsageV1(cpuacctUsage: string | null): bigint | null {
  return parseSingle(cpuacctUsage);
}

/** v2 cpu.stat usage_usec, in nanoseconds. */
export function cpuUsageV2(cpuStat: string | null): bigint | null {
  if (cpuStat === null) return null;
  const usec = parseKeyValues(cpuStat).get('usage_usec');
  return usec === undefined ? null : usec * 1000n;
}
