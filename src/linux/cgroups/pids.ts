/** pids: the task limit (pids.max, same in v1 and v2) and the task count for stats. */
import { type ControllerWriter, type FileValue, fv, parseSingle, requireInteger } from './common';
import type { Resources } from './types';

/** pids.max value: a positive count, or "max" for <= 0 (unlimited), as runc does. */
export function pidsMaxValue(limit: number): string {
  requireInteger('pidsLimit', limit);
  return limit > 0 ? String(limit) : 'max';
}

function writes(r: Resources): FileValue[] {
  return r.pidsLimit === null ? [] : [fv('pids.max', pidsMaxValue(r.pidsLimit))];
}

export const pids: ControllerWriter = {
  name: 'pids',
  wants: (r) => r.pidsLimit !== null,
  v1: writes,
  v2: writes,
};

/** pids.current (same file in both versions). */
export function pidsCurrent(text: string | null): number | null {
  const v = parseSingle(text);
  return v === null ? null : Number(v);
}
