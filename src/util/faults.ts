/**
 * Fault injection for tests of the daemon as a whole process, set by the environment
 * variable NODECRI_FAULTS (never by the config file): `delay:NAME=MS[,delay:NAME=MS]`.
 * NAME is an RPC (each call is held MS milliseconds before its handler runs, e.g. to have
 * a call in flight when a signal arrives) or a point inside the daemon:
 *   handoff  a graceful restart stalls the event loop MS ms after it stopped reaping and
 *            reading, then lets the loop run once, before the handoff is written and the
 *            re-exec happens (see stallLoop): exits and output of that time are left to
 *            the new image, or lost if anything still reaps or reads.
 * Empty or unset means no faults and no cost.
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

/**
 * Blocks the thread (the event loop with it) for `ms`, then lets the loop run one turn
 * with its poll phase: whatever became ready meanwhile (a pidfd, a pipe) is then handed to
 * its callbacks at once, if any are still registered. A fault only; 0 costs nothing.
 */
export async function stallLoop(ms: number): Promise<void> {
  if (ms <= 0) return;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  await new Promise((resolve) => setTimeout(resolve, 0));
}
