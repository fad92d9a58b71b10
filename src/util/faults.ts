/**
 * Fault injection for tests of the daemon as a whole process, set by the environment
 * variable NODECRI_FAULTS (never by the config file): `delay:RPC=MS[,delay:RPC=MS]`
 * holds each call of RPC for MS milliseconds before its handler runs, e.g. to have a
 * call in flight when a signal arrives. Empty or unset means no faults and no cost.
 */
export interface Faults {
  delayMs(operation: string): number;
}

export const noFaults: Faults = { delayMs: () => 0 };

export function parseFaults(spec: string | undefined): Faults {
  if (!spec) return noFaults;
  const delays = new Map<string, number>();
  for (const item of spec.split(',')) {
    const m = /^delay:(\w+)=(\d+)$/.exec(item.trim());
    if (!m) throw new Error(`NODECRI_FAULTS: cannot parse ${JSON.stringify(item)}: expected delay:RPC=MS`);
    delays.set(m[1], Number(m[2]));
  }
  return { delayMs: (op) => delays.get(op) ?? 0 };
}
