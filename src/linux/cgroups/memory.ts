/**
 * memory: the limit, the swap limit and the memory numbers for stats.
 * v1: memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory + swap, present only
 * with swap accounting); v2: memory.max and memory.swap.max (swap alone).
 */
import { CgroupConfigError, type ControllerWriter, type FileValue, type WriteContext, fv, parseKeyValues, parseSingle } from './common';
import type { Resources } from './types';

/** Normalised: null unset, -1n unlimited, else bytes. */
function norm(v: bigint | null): bigint | null {
  return v === null ? null : v < 0n ? -1n : v;
}

/** The swap limit to apply in v1 after runc's defaulting, or null for none. */
function v1Swap(r: Resources, memsw: boolean): bigint | null {
  const mem = norm(r.memoryLimitBytes);
  let swap = norm(r.memorySwapLimitBytes);
  // runc: lifting the memory limit without a word on swap lifts the swap limit too,
  // otherwise an old memsw limit below the new memory limit would make the write fail.
  if (mem === -1n && swap === null && memsw) swap = -1n;
  if (swap === null) return null;
  if (!memsw) {
    // No swap accounting: "unlimited" and "no swap beyond memory" ask for nothing that
    // needs enforcing, so they are dropped; a real swap allowance cannot be honoured.
    if (swap === -1n || swap === mem) return null;
    throw new CgroupConfigError(`memory swap limit ${swap} requested but this host has no swap accounting (memory.memsw.limit_in_bytes)`, 'memorySwapLimitBytes');
  }
  if (mem !== null && mem >= 0n && swap >= 0n && swap < mem) {
    throw new CgroupConfigError(`memory+swap limit ${swap} must not be below the memory limit ${mem}`, 'memorySwapLimitBytes');
  }
  return swap;
}

/** Whether the v1 writer needs the current memory.limit_in_bytes to order its writes. */
export function v1NeedsCurrentLimit(r: Resources, memsw: boolean): boolean {
  return r.memoryLimitBytes !== null && v1Swap(r, memsw) !== null;
}

/**
 * v1 writes in runc's order. The kernel keeps memsw.limit >= limit at every step, so
 * when the swap limit goes up (or to unlimited) past the current memory limit it is
 * written first, otherwise the memory limit is.
 */
export function memoryV1Writes(r: Resources, ctx: WriteContext): FileValue[] {
  const mem = norm(r.memoryLimitBytes);
  const swap = v1Swap(r, ctx.memswSupported);
  const memW = mem === null ? null : fv('memory.limit_in_bytes', String(mem));
  const swapW = swap === null ? null : fv('memory.memsw.limit_in_bytes', String(swap));
  if (memW !== null && swapW !== null && swap !== null) {
    const cur = ctx.currentMemoryLimit;
    if (cur === null) throw new Error('memory writer needs the current memory limit');
    return swap === -1n || cur < swap ? [swapW, memW] : [memW, swapW];
  }
  return [memW, swapW].filter((w): w is FileValue => w !== null);
}

/**
 * v2 memory.swap.max from CRI/v1-style "memory + swap" (runc's conversion):
 *  - swap unset -> unset, except that lifting memory to unlimited lifts swap too;
 *  - swap unlimited -> "max";
 *  - otherwise swap - memory, which needs a memory limit and swap >= memory.
 */
export function swapV2Value(memory: bigint | null, swap: bigint | null): string | null {
  const mem = norm(memory);
  const sw = norm(swap);
  if (sw === null) return mem === -1n ? 'max' : null;
  if (sw === -1n) return 'max';
  if (mem === null || mem === -1n) {
    throw new CgroupConfigError(`memory swap limit ${sw} needs a memory limit`, 'memorySwapLimitBytes');
  }
  if (sw < mem) throw new CgroupConfigError(`memory+swap limit ${sw} must not be below the memory limit ${mem}`, 'memorySwapLimitBytes');
  return String(sw - mem);
}

export function memoryV2Writes(r: Resources): FileValue[] {
  const out: FileValue[] = [];
  const mem = norm(r.memoryLimitBytes);
  if (mem !== null) out.push(fv('memory.max', mem === -1n ? 'max' : String(mem)));
  const swap = swapV2Value(r.memoryLimitBytes, r.memorySwapLimitBytes);
  if (swap !== null) {
    // Without swap accounting memory.swap.max does not exist. Like runc, asking for no
    // swap limit ("max") or no swap at all ("0") is then already satisfied.
    out.push(fv('memory.swap.max', swap, swap === 'max' || swap === '0' ? ['ENOENT'] : []));
  }
  return out;
}

export const memory: ControllerWriter = {
  name: 'memory',
  wants: (r) => r.memoryLimitBytes !== null || r.memorySwapLimitBytes !== null,
  v1: memoryV1Writes,
  v2: memoryV2Writes,
};

/** v1 reports "unlimited" as the largest page-aligned long (9223372036854771712). */
const V1_UNLIMITED = 1n << 62n;

export interface MemoryStats {
  memoryUsageBytes: bigint | null;
  memoryWorkingSetBytes: bigint | null;
  memoryLimitBytes: bigint | null;
  oomKillCount: number | null;
}

function workingSet(usage: bigint | null, inactiveFile: bigint | undefined): bigint | null {
  if (usage === null) return null;
  const inactive = inactiveFile ?? 0n;
  return usage > inactive ? usage - inactive : 0n;
}

/** From memory.usage_in_bytes, memory.stat, memory.limit_in_bytes, memory.oom_control. */
export function memoryStatsV1(usageText: string | null, statText: string | null, limitText: string | null, oomControlText: string | null): MemoryStats {
  const usage = parseSingle(usageText);
  const stat = parseKeyValues(statText ?? '');
  const limit = parseSingle(limitText);
  // oom_kill appeared in memory.oom_control with Linux 4.13.
  const oomKill = oomControlText === null ? undefined : parseKeyValues(oomControlText).get('oom_kill');
  return {
    memoryUsageBytes: usage,
    memoryWorkingSetBytes: workingSet(usage, stat.get('total_inactive_file')),
    memoryLimitBytes: limit === null || limit >= V1_UNLIMITED ? null : limit,
    oomKillCount: oomKill === undefined ? null : Number(oomKill),
  };
}

/** From memory.current, memory.stat, memory.max, memory.events. */
export function memoryStatsV2(currentText: string | null, statText: string | null, maxText: string | null, eventsText: string | null): MemoryStats {
  const usage = parseSingle(currentText);
  const stat = parseKeyValues(statText ?? '');
  const oomKill = eventsText === null ? undefined : parseKeyValues(eventsText).get('oom_kill');
  return {
    memoryUsageBytes: usage,
    memoryWorkingSetBytes: workingSet(usage, stat.get('inactive_file')),
    memoryLimitBytes: parseSingle(maxText), // "max" parses to null
    oomKillCount: oomKill === undefined ? null : Number(oomKill),
  };
}
