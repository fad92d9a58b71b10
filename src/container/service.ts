/**
 * Containers: the service the CRI layer and the daemon call. It is a facade: each part of
 * the module is a file of functions over one shared ContainerContext (context.ts), which
 * holds the options and every container's state:
 *
 * - create.ts: CreateContainer (validate, reserve the name, rootfs, OCI spec, cgroup, log
 *   FIFOs, the process held before exec, persist), each step pushing its undo;
 * - lifecycle.ts: start, stop and remove (and a pod's stopAll and removeAll);
 * - exit.ts: an exit reaped, its log drained, recorded; exec.ts: ExecSync and the
 *   streaming Exec; attach.ts: Attach;
 * - logs.ts: the output read into the CRI log; stats.ts: usage and UpdateContainerResources;
 * - restore.ts: recovery after a restart or a crash; handoff.ts: the graceful re-exec.
 *
 * The parts call one another (a start may make the process again as create does; a
 * restore watches exits as a start does), which plain functions over a shared context
 * allow without the parts holding references to each other.
 */
import type { CgroupStats, Resources } from '../linux/cgroups';
import type { SandboxContainers } from '../sandbox/service';
import type { StreamIO } from '../domain/stream-io';
import type { PendingOp } from '../state/op-journal';
import type { OciSpec } from '../oci/types';
import { ContainerContext, type ContainerServiceOptions } from './context';
import { attach } from './attach';
import { create } from './create';
import { execStream, execSync, runningContainer, type ExecSyncResult } from './exec';
import { prepareHandoff, type ContainerHandoff } from './handoff';
import { remove, removeAll, start, stop, stopAll } from './lifecycle';
import { reopenLog } from './logs';
import type { ContainerRecord } from './model';
import type { ContainerSpec } from './spec';
import { restore, rollBack, rollForward, sweepOrphans } from './restore';
import { stats, updateResources } from './stats';

export type { ContainerHost, ContainerImages, ContainerKeeper, ContainerServiceOptions } from './context';
export type { ContainerHandoff } from './handoff';
export { execOutputLimit, type ExecSyncResult } from './exec';

export class ContainerService implements SandboxContainers {
  private readonly ctx: ContainerContext;

  constructor(opts: ContainerServiceOptions) {
    this.ctx = new ContainerContext(opts);
  }

  /** Stops every container of a pod (StopPodSandbox; SandboxContainers). */
  stopAll(sandboxId: string): Promise<void> {
    return stopAll(this.ctx, sandboxId);
  }

  /** Removes every container of a pod (RemovePodSandbox; SandboxContainers). */
  removeAll(sandboxId: string): Promise<void> {
    return removeAll(this.ctx, sandboxId);
  }

  ofSandbox(sandboxId: string): ContainerRecord[] {
    return this.ctx.ofSandbox(sandboxId);
  }

  list(): ContainerRecord[] {
    return this.ctx.list();
  }

  get(idOrPrefix: string): ContainerRecord | null {
    return this.ctx.get(idOrPrefix);
  }

  mustGet(idOrPrefix: string): ContainerRecord {
    return this.ctx.mustGet(idOrPrefix);
  }

  /** The saved OCI spec of a container (config.json). */
  spec(r: ContainerRecord): Promise<OciSpec> {
    return this.ctx.spec(r);
  }

  create(sandboxIdOrPrefix: string, spec: ContainerSpec): Promise<string> {
    return create(this.ctx, sandboxIdOrPrefix, spec);
  }

  start(idOrPrefix: string): Promise<void> {
    return start(this.ctx, idOrPrefix);
  }

  /**
   * Sends the stop signal, then SIGKILL after `timeoutSeconds` (at once for 0), and waits
   * for the exit to be recorded. Idempotent. An abort of `signal` ends the wait (rejecting
   * with its reason) and sends nothing more.
   */
  stop(idOrPrefix: string, timeoutSeconds: number, signal: AbortSignal | null = null): Promise<void> {
    return stop(this.ctx, idOrPrefix, timeoutSeconds, signal);
  }

  /** Kills if running, then removes everything but the log. Unknown id is fine. */
  remove(idOrPrefix: string): Promise<void> {
    return remove(this.ctx, idOrPrefix);
  }

  execSync(idOrPrefix: string, cmd: string[], timeoutSeconds: number, signal: AbortSignal | null): Promise<ExecSyncResult> {
    return execSync(this.ctx, idOrPrefix, cmd, timeoutSeconds, signal);
  }

  /** The container for an Exec or Attach: NOT_FOUND, or FAILED_PRECONDITION naming its state when it is not running. */
  runningContainer(idOrPrefix: string): ContainerRecord {
    return runningContainer(this.ctx, idOrPrefix);
  }

  /**
   * The streaming Exec: `cmd` in the running container with its stdio on `io` (pipes, or a
   * pty); resolves with its exit code; an abort of `signal` kills it and rejects.
   */
  execStream(idOrPrefix: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
    return execStream(this.ctx, idOrPrefix, cmd, io, signal);
  }

  /**
   * Attach: `io` on the running container's own stdio (its output as the log gets it, its
   * stdin when it was created with one) until it exits or `signal` aborts.
   */
  attach(idOrPrefix: string, io: StreamIO, signal: AbortSignal): Promise<void> {
    return attach(this.ctx, idOrPrefix, io, signal);
  }

  updateResources(idOrPrefix: string, resources: Resources | null): Promise<void> {
    return updateResources(this.ctx, idOrPrefix, resources);
  }

  reopenLog(idOrPrefix: string): Promise<void> {
    return reopenLog(this.ctx, idOrPrefix);
  }

  stats(r: ContainerRecord): Promise<{ timestamp: string; cgroup: CgroupStats | null; nanoCores: bigint | null; writable: { bytes: bigint; inodes: bigint } | null }> {
    return stats(this.ctx, r);
  }

  rollBack(p: PendingOp): Promise<{ committed: boolean; failed: string[] }> {
    return rollBack(this.ctx, p);
  }

  rollForward(p: PendingOp): Promise<void> {
    return rollForward(this.ctx, p);
  }

  sweepOrphans(): Promise<string[]> {
    return sweepOrphans(this.ctx);
  }

  restore(handoff: ContainerHandoff | null = null): Promise<void> {
    return restore(this.ctx, handoff);
  }

  prepareHandoff(): Promise<ContainerHandoff> {
    return prepareHandoff(this.ctx);
  }
}
