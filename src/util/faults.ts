/**
 * Fault injection for tests of the daemon as a whole process, set by the environment
 * variable NODECRI_FAULTS (never by the config file or a request), a comma-separated list:
 * - `delay:NAME=MS`: NAME is an RPC (each call is held MS milliseconds before its handler
 *   runs, e.g. to have a call in flight when a signal arrives) or a point inside the daemon:
 *     handoff  a graceful restart stalls the event loop MS ms after it stopped reaping and
 *              reading, then lets the loop run once, before the handoff is written and the
 *              re-exec happens (see stallLoop): exits and output of that time are left to
 *              the new image, or lost if anything still reaps or reads;
 *     StreamToken  the streaming server checks a token's expiry as if it were used MS ms
 *              later (an expired token without a test waiting a minute);
 * - `crash:OP=N` kills the daemon with SIGKILL at the N-th fault point of operation OP
 *   (RunPodSandbox, CreateContainer, StartContainer, RemovePodSandbox, ...): the points are
 *   the instants right before and right after each journal write of its cleanup stack and
 *   between its teardown steps, so N = 1, 2, ... walks a kill through every step.
 * Empty or unset means no faults and no cost.
 */
export interface Faults {
  delayMs(operation: string): number;
  /** a crash point of `operation`: kills this process when it is the chosen one */
  point(operation: string): void;
}

export const noFaults: Faults = { delayMs: () => 0, point: () => {} };

export function parseFaults(spec: string | undefined): Faults {
  if (!spec) return noFaults;
  const delays = new Map<string, number>();
  const crashes = new Map<string, number>();
  for (const item of spec.split(',')) {
    const m = /^(delay|crash):(\w+)=(\d+)$/.exec(item.trim());
    if (!m) throw new Error(`NODECRI_FAULTS: cannot parse ${JSON.stringify(item)}: expected delay:NAME=MS or crash:OP=N`);
    (m[1] === 'delay' ? delays : crashes).set(m[2], Number(m[3]));
  }
  const seen = new Map<string, number>();
  return {
    delayMs: (op) => delays.get(op) ?? 0,
    point(op) {
      const at = crashes.get(op);
      if (at === undefined) return;
      const n = (seen.get(op) ?? 0) + 1;
      seen.set(op, n);
      if (n === at) {
        process.stderr.write(`${JSON.stringify({ level: 60, msg: `fault injection: SIGKILL at point ${n} of ${op}` })}\n`);
        process.kill(process.pid, 'SIGKILL');
      }
    },
  };
}

/**
 * Blocks the thread (the event loop with it) for `ms`, then lets the loop run one turn
 * with its poll phase: whatever became ready meanwhile (a pidfd, a pipe) is then handed to
 * its callbacks at once, if any are still registered. A fault only; 0 costs nothing.
 */
export async function stallLoop(ms: number): Promise<void> {
  if (ms <= 0) return;
  // Written synchronously (stderr is a pipe or a file), so that a test sees the stall begin.
  process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), msg: `fault injection: the event loop stalls ${ms} ms` })}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  await new Promise((resolve) => setTimeout(resolve, 0));
}
