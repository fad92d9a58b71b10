/**
 * A container's lifecycle after create: StartContainer (the held process let go to exec),
 * StopContainer (the stop signal, then SIGKILL) and RemoveContainer (everything but the
 * log), and the stop and removal of all of a pod's containers that the sandbox side asks for.
 */
import fsp from 'node:fs/promises';
import { CleanupStack } from '../domain/cleanup';
import { RuntimeError, failedPrecondition, notFound } from '../domain/errors';
import { nowNanos } from '../domain/events';
import type { ContainerContext } from './context';
import { makeProcess } from './create';
import { watchExit } from './exit';
import type { ContainerRecord } from './model';
import { canMove, transition } from './state-machine';
import { raceAbort } from '../util/abort';
import { stepTimer } from '../obs/steps';

export async function start(ctx: ContainerContext, idOrPrefix: string): Promise<void> {
  const r = ctx.mustGet(idOrPrefix);
  const steps = stepTimer(ctx.opts.metrics, 'StartContainer');
  await ctx.locked(r.id, async () => {
    if (!canMove(r.state, 'CONTAINER_RUNNING')) throw failedPrecondition(`container ${r.id} is ${r.state.replace('CONTAINER_', '').toLowerCase()}, not created`);
    // A crash before the RUNNING record is on disk leaves a process no client was told
    // about: the journal's undo kills what runs in the container's cgroup (it stays CREATED).
    const journal = await steps.time('journal', () => ctx.opts.ops.begin('StartContainer', r.id));
    try {
      await steps.time('journal_append', () => journal.append({ kind: 'cgroup', path: r.cgroupPath, keep: true }));
      journal.point();
      let live = ctx.live.get(r.id);
      if (!live?.handle) {
        // Created by a daemon that is gone: its held process went with it; make it again.
        const cleanup = new CleanupStack(ctx.opts.log);
        await makeProcess(ctx, r, await ctx.spec(r), cleanup, steps).catch(async (e: unknown) => {
          await cleanup.unwind();
          throw e;
        });
        await cleanup.commit();
        live = ctx.live.get(r.id)!;
        journal.point();
      }
      const handle = live.handle!;
      // Registered before it runs: from then on, were this daemon to die, the keeper (whose
      // child it becomes) writes its exit down.
      const [pid, startTime] = [r.pid, r.pidStartTime];
      if (pid !== null && startTime !== null) ctx.keeper?.watch(pid, startTime);
      try {
        await steps.time('start_process', () => ctx.opts.host.startProcess(handle));
        journal.point();
      } catch (e) {
        if (pid !== null && startTime !== null) void ctx.keeper?.forget(pid, startTime).catch(() => {});
        transition(r, { to: 'CONTAINER_EXITED', exitCode: 128, reason: 'StartError', message: (e as Error).message });
        live.closeStdio();
        ctx.keeper?.drop(r.id);
        await live.log?.close();
        await ctx.opts.host.releaseProcess(handle).catch(() => {});
        ctx.live.delete(r.id);
        await ctx.persist(r);
        ctx.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STOPPED_EVENT', createdAt: r.finishedAt, sandboxId: r.sandboxId });
        throw new RuntimeError('unknown', `start container ${r.id}: ${(e as Error).message}`, { cause: e });
      }
      ctx.opts.host.refProcess(handle, false);
      transition(r, { to: 'CONTAINER_RUNNING' });
      await steps.time('persist', () => ctx.persist(r));
      journal.point();
      live.done = steps.timeSync('watch_exit', () => watchExit(ctx, r, live));
      steps.timeSync('event', () => ctx.opts.events.publish({ containerId: r.id, type: 'CONTAINER_STARTED_EVENT', createdAt: r.startedAt, sandboxId: r.sandboxId }));
    } finally {
      // Once this settles the client knows the outcome; only a crash leaves the journal.
      await steps.time('journal_finish', () => journal.finish());
    }
    journal.point();
  });
}

/**
 * Sends the stop signal, then SIGKILL after `timeoutSeconds` (at once for 0), and waits
 * for the exit to be recorded. Idempotent. When `signal` aborts (the caller gave up: its
 * deadline or a cancel), it stops waiting and throws the abort: no SIGKILL follows, the
 * container runs on with the stop signal it was sent, as containerd does.
 */
export async function stop(ctx: ContainerContext, idOrPrefix: string, timeoutSeconds: number, signal: AbortSignal | null = null): Promise<void> {
  const r = ctx.get(idOrPrefix);
  if (!r) throw notFound(`container ${idOrPrefix} not found`);
  const live = ctx.live.get(r.id);
  if (r.state === 'CONTAINER_CREATED' && live?.handle) {
    // Never started: it will never run; its process goes now.
    await ctx.locked(r.id, async () => {
      if (r.state !== 'CONTAINER_CREATED') return;
      live.closeStdio();
      ctx.keeper?.drop(r.id);
      await live.log?.close();
      await ctx.opts.host.releaseProcess(live.handle!).catch(() => {});
      ctx.live.delete(r.id);
      transition(r, { to: 'CONTAINER_EXITED', exitCode: 0, reason: 'Error', message: 'stopped before it was started' });
      await ctx.persist(r);
    });
    return;
  }
  if (r.state !== 'CONTAINER_RUNNING' || !live?.handle || !live.done) {
    await live?.done;
    return;
  }
  const handle = live.handle;
  const send = (name: string) => {
    try {
      ctx.opts.host.signalProcess(handle, name as NodeJS.Signals);
    } catch {
      // already exited
    }
  };
  const done = live.done;
  if (timeoutSeconds > 0) {
    send(r.stopSignal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((res) => (timer = setTimeout(() => res(false), timeoutSeconds * 1000).unref()));
    try {
      if (await raceAbort(Promise.race([done.then(() => true), timedOut]), signal)) return;
    } finally {
      clearTimeout(timer);
    }
  }
  send('SIGKILL');
  // A container's init finishes dying only once every process of its PID namespace is
  // reaped. Exec processes are our children, each watched by the pidfd its clone made (a
  // released handle keeps watching until it has reaped); a stray nothing watches (its
  // intermediate was killed before passing it, or its watcher was lost across a
  // re-exec) is reaped here, or this would wait forever.
  await raceAbort(ctx.opts.host.untilExitReapingStrays(handle, done), signal);
}

/** Kills if running, then removes everything but the log. Unknown id is fine. */
export async function remove(ctx: ContainerContext, idOrPrefix: string): Promise<void> {
  const r = ctx.get(idOrPrefix);
  if (!r) return;
  // Rolled forward after a crash: the next start finishes the removal.
  await ctx.opts.ops.teardown('RemoveContainer', r.id, async (step) => {
    if (r.state === 'CONTAINER_RUNNING' || r.state === 'CONTAINER_CREATED') await stop(ctx, r.id, 0);
    await ctx.locked(r.id, () => removeLocked(ctx, r, step));
  });
}

async function removeLocked(ctx: ContainerContext, r: ContainerRecord, step: () => void): Promise<void> {
  if (!ctx.records.has(r.id)) return;
  step();
  // Exec'd processes and anything else left in the cgroup go first: none may still write
  // into the rootfs while it is removed.
  await ctx.opts.host.cgroups.killAll(r.cgroupPath).catch(() => {});
  // Then the empty cgroup and the rootfs, which are independent of each other, go at once
  // (the removal's journal rolls both forward after a crash, each step idempotent).
  const cgroupGone = (async () => {
    await ctx.opts.host.cgroups.remove(r.cgroupPath);
    step();
  })();
  const rootfsGone = (async () => {
    await ctx.opts.host.unmount(r.rootfs);
    step();
    await ctx.opts.images.releaseRootfs(r.id);
    step();
    await fsp.rm(r.runDir, { recursive: true, force: true });
  })();
  // Both settle before either failure is thrown: no step still runs when the call returns.
  const [c, f] = await Promise.allSettled([cgroupGone, rootfsGone]);
  for (const s of [c, f]) if (s.status === 'rejected') throw s.reason;
  step();
  // The record goes last: until then a restart finds the container and finishes the removal.
  await fsp.rm(r.stateDir, { recursive: true, force: true });
  step();
  ctx.records.delete(r.id);
  ctx.hasDevicesCgroup.delete(r.id);
  ctx.specs.delete(r.id);
  ctx.index.delete(r.id);
  ctx.names.release(r.name);
  ctx.cpuRate.forget(r.id);
  ctx.live.delete(r.id);
  // The series goes with the container, so that its label set stays bounded.
  ctx.opts.metrics?.containerLogDroppedBytes.remove({ container_id: r.id });
  ctx.keeper?.drop(r.id);
  ctx.opts.events.publish({ containerId: r.id, type: 'CONTAINER_DELETED_EVENT', createdAt: nowNanos(), sandboxId: r.sandboxId });
}

/** Stops every container of a pod at once (StopPodSandbox). */
export async function stopAll(ctx: ContainerContext, sandboxId: string): Promise<void> {
  await Promise.all(ctx.ofSandbox(sandboxId).map((c) => stop(ctx, c.id, 0)));
}

/** Removes every container of a pod (RemovePodSandbox). */
export async function removeAll(ctx: ContainerContext, sandboxId: string): Promise<void> {
  await Promise.all(ctx.ofSandbox(sandboxId).map((c) => remove(ctx, c.id)));
}
