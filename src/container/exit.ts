/**
 * A container's exit: once its process is reaped (by the daemon, or by the keeper when the
 * keeper is its parent) and its log drained, the exit is recorded, persisted and emitted.
 */
import type { ExitStatus } from '../native/process';
import type { ContainerContext, Live } from './context';
import type { ContainerRecord } from './model';
import { exitCodeOf, exitMove, transition } from './state-machine';

/** How long an exited container's log may still be drained by its grandchildren. */
const logDrainMs = 2000;

/**
 * Records the exit once the process is reaped (by us, or by the keeper when it is the
 * keeper's child; `known` when that happened before this daemon started) and its log
 * drained. Never rejects: nothing but a stop awaits it, so a failure is logged here rather
 * than left to become an unhandled rejection.
 */
export async function watchExit(ctx: ContainerContext, r: ContainerRecord, live: Live, known: ExitStatus | null = null): Promise<void> {
  await watchExitOnce(ctx, r, live, known).catch((e: unknown) => ctx.opts.log.error({ err: e, containerId: r.id }, `cannot record the exit of container ${r.id}`));
}

async function watchExitOnce(ctx: ContainerContext, r: ContainerRecord, live: Live, known: ExitStatus | null): Promise<void> {
  const keeper = ctx.keeper;
  const pid = r.pid;
  const startTime = r.pidStartTime;
  const keyed = keeper !== null && pid !== null && startTime !== null;
  let st = known ?? (await live.handle!.exited);
  // Not our child: the pidfd said it exited; the keeper writes down how, then reaps it.
  if (keyed && known === null && live.keeperChild && exitCodeOf(st) === null) st = await keeper.exitOf(pid, startTime);
  // From here the exit is ours alone (the kernel has handed it over): a handoff must wait
  // for it to be on disk, or it would be lost.
  let done!: () => void;
  const recording = new Promise<void>((res) => (done = res));
  ctx.recording.add(recording);
  try {
    if (keyed && known === null && exitCodeOf(st) === null) st = (await keeper.recordedExit(pid, startTime)) ?? st;
    // Ours: written down at once, so that a crash while the log drains keeps it.
    else if (keyed && known === null && !live.keeperChild) {
      await keeper.record(pid, startTime, st).catch((e: unknown) => ctx.opts.log.warn({ err: e, containerId: r.id }, 'cannot write the exit record'));
    }
    await recordExit(ctx, r, live, st);
    if (keyed) await keeper.forget(pid, startTime).catch(() => {});
  } finally {
    ctx.recording.delete(recording);
    done();
  }
}

async function recordExit(ctx: ContainerContext, r: ContainerRecord, live: Live, st: ExitStatus): Promise<void> {
  if (live.log) {
    await Promise.race([live.log.ended, new Promise((res) => setTimeout(res, logDrainMs).unref())]);
    live.closeStdio();
    await live.log.close();
  } else {
    live.closeStdio();
  }
  ctx.keeper?.drop(r.id);
  const code = exitCodeOf(st);
  const stats = await ctx.opts.host.cgroups.stats(r.cgroupPath).catch(() => null);
  transition(r, exitMove(code, (stats?.oomKillCount ?? 0) > 0));
  if (live.handle) await ctx.opts.host.releaseProcess(live.handle).catch(() => {});
  live.handle = null;
  await ctx.persist(r).catch((e: unknown) => ctx.opts.log.error({ err: e, containerId: r.id }, 'cannot persist the exit'));
  ctx.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STOPPED_EVENT', createdAt: r.finishedAt, sandboxId: r.sandboxId });
}
