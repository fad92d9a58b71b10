/**
 * After a crash or a restart: the container side of recovery. Interrupted operations are
 * rolled back (creates, starts) or forward (removals) from their journals, every record is
 * loaded again (a running container's process adopted and its log read on, or its exit
 * taken from the keeper, or recorded as unknown), and what no record accounts for is swept.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { objectIdPattern } from '../domain/ids';
import type { PendingOp } from '../state/op-journal';
import type { SandboxRecord } from '../sandbox/model';
import { readJson } from '../state/atomic-file';
import type { ContainerContext, Live, LogReader } from './context';
import type { CriLogWriter } from './cri-log';
import { watchExit } from './exit';
import { containerStdin } from './attach';
import { closeHanded, takeHandedFd, takeHandedFifo, type ContainerHandoff, type HandedFds } from './handoff';
import { attachReader, containerLogWriter, openFd } from './logs';
import { containerRecordVersion, type ContainerRecord } from './model';
import { dropHeldProcess, transition } from './state-machine';
import { remove } from './lifecycle';

/**
 * Before restore: an operation a crash interrupted. A CreateContainer whose record is on
 * disk is complete; a StartContainer whose record says it left CREATED is too. Any other
 * is undone from its journal, last step first (a start's undo kills what runs in the
 * container's cgroup: the container stays CREATED and can be started again).
 */
export async function rollBack(ctx: ContainerContext, p: PendingOp): Promise<{ committed: boolean; failed: string[] }> {
  const r = await readJson<ContainerRecord>(path.join(ctx.config.root, 'containers', p.header.id, 'container.json')).catch(() => null);
  const committed = p.header.op === 'CreateContainer' ? r !== null : r === null || r.state !== 'CONTAINER_CREATED';
  if (committed) {
    await fsp.rm(p.file, { force: true });
    return { committed: true, failed: [] };
  }
  return { committed: false, failed: await ctx.opts.ops.replay(p) };
}

/** After restore: a removal a crash interrupted is finished. */
export async function rollForward(ctx: ContainerContext, p: PendingOp): Promise<void> {
  if (p.header.op === 'RemoveContainer') await remove(ctx, p.header.id);
  await fsp.rm(p.file, { force: true });
}

/**
 * After recovery: container dirs with no record (run dirs with their rootfs mount,
 * state dirs, writable layers) and container cgroups under a known pod's cgroup that no
 * record names go, and are logged.
 */
export async function sweepOrphans(ctx: ContainerContext): Promise<string[]> {
  const cfg = ctx.config;
  const removed: string[] = [];
  const known = (id: string) => ctx.records.has(id);
  for (const base of [path.join(cfg.runroot, 'containers'), path.join(cfg.root, 'containers')]) {
    for (const n of await fsp.readdir(base).catch(() => [] as string[])) {
      if (!objectIdPattern.test(n) || known(n)) continue;
      await ctx.opts.host.removeTree(path.join(base, n)).then(
        () => removed.push(`dir ${path.join(base, n)}`),
        (e: unknown) => ctx.opts.log.error({ err: e, containerId: n }, 'cannot remove an orphaned container dir'),
      );
    }
  }
  for (const n of await ctx.opts.images.rootfsOwners().catch(() => [] as string[])) {
    if (!objectIdPattern.test(n) || known(n)) continue;
    await ctx.opts.images.releaseRootfs(n).then(
      () => removed.push(`rootfs of container ${n}`),
      (e: unknown) => ctx.opts.log.error({ err: e, containerId: n }, 'cannot remove an orphaned container rootfs'),
    );
  }
  const cgroups = ctx.opts.host.cgroups;
  for (const sandbox of ctx.opts.sandboxes.list()) {
    const names = new Set<string>();
    for (const dir of new Set(Object.values(cgroups.paths(sandbox.cgroup.path)))) {
      for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) names.add(e.name);
    }
    for (const n of names) {
      const m = /^nodecri-(infra-)?([0-9a-f]{64})$/.exec(n);
      if (!m) continue;
      const owner = m[1] ? ctx.opts.sandboxes.get(m[2]) : ctx.records.get(m[2]);
      const inUse = m[1] ? owner !== null && (owner as SandboxRecord).infra !== null : owner !== undefined;
      if (inUse) continue;
      const p = path.posix.join(sandbox.cgroup.path, n);
      await ctx.opts.ops.undo({ kind: 'cgroup', path: p }).then(
        () => removed.push(`cgroup ${p}`),
        (e: unknown) => ctx.opts.log.error({ err: e, cgroup: p }, 'cannot remove an orphaned container cgroup'),
      );
    }
  }
  return removed;
}

/**
 * After a restart: every record is loaded; a running container whose process is still
 * there (same pid and start time) is adopted and its log FIFOs read on; one that is gone
 * is EXITED with its exit unknown.
 */
export async function restore(ctx: ContainerContext, handoff: ContainerHandoff | null = null): Promise<void> {
  const handed = new Map(Object.entries(handoff?.containers ?? {}));
  const dir = path.join(ctx.config.root, 'containers');
  let ids: string[] = [];
  try {
    ids = await fsp.readdir(dir);
  } catch {
    // no containers yet
  }
  for (const id of ids) {
    const file = ctx.recordFile(path.join(dir, id));
    const r = await readJson<ContainerRecord>(file).catch(() => null);
    if (!r) continue;
    // A record of another format (1 kept the CRI config, not the spec) is not guessed at:
    // the start stops, naming it. Skipping it would let the orphan sweep remove the dirs of
    // a container that may still run; no node runs a format-1 build, so none should exist.
    if (r.version !== containerRecordVersion || !r.spec) {
      throw new Error(
        `container record ${file} has format ${String(r.version)}, and this nodecri reads format ${containerRecordVersion} only: remove the container with the nodecri that made it, or remove ${path.join(dir, id)} and its processes by hand`,
      );
    }
    ctx.records.set(r.id, r);
    ctx.index.add(r.id);
    ctx.names.reserve(r.name, r.id);
    const fds = handed.get(r.id) ?? {};
    handed.delete(r.id);
    if (r.state === 'CONTAINER_RUNNING') {
      if (r.pid !== null && r.pidStartTime !== null) ctx.keeper?.expect(r.pid, r.pidStartTime);
      await adopt(ctx, r, fds);
    } else {
      closeHanded(fds);
      if (r.state === 'CONTAINER_CREATED') await reapHeld(ctx, r);
    }
  }
  for (const fds of handed.values()) closeHanded(fds);
  // Exec processes were watched by the image before a re-exec, and nothing watches them
  // now: one that is a zombie already would hold its PID namespace's init forever. Once
  // every container (and, before, every pod's pause) is watched again, whatever zombie of
  // ours is left in a container's namespace is such a stray.
  let strays = 0;
  for (const live of ctx.live.values()) if (live.handle) strays += ctx.opts.host.reapStrays(live.handle);
  if (strays > 0) ctx.opts.log.warn({ strays }, 'reaped exec processes nothing watched');
  ctx.opts.log.info({ containers: ctx.records.size, handedOver: handoff !== null }, 'containers restored');
}

/**
 * A created container's held process died with the daemon that held it (it waits on a
 * socket that closed). If it was our child (a re-exec), reap it; StartContainer makes
 * the process again.
 */
async function reapHeld(ctx: ContainerContext, r: ContainerRecord): Promise<void> {
  const h = r.pid === null ? null : await ctx.opts.host.adoptStarted(r.pid, r.pidStartTime);
  if (h) {
    ctx.opts.host.refProcess(h, false);
    void h.exited.then(() => ctx.opts.host.releaseProcess(h)).catch(() => {});
  }
  dropHeldProcess(r);
}

async function adopt(ctx: ContainerContext, r: ContainerRecord, handed: HandedFds): Promise<void> {
  // Asked before the pidfd is opened: a keeper's child stays one until the keeper reaps it.
  const keeperChild = ctx.keeper !== null && r.pid !== null && r.pidStartTime !== null && (await ctx.keeper.isKeeperChild(r.pid, r.pidStartTime));
  const handle = r.pid === null ? null : await ctx.opts.host.adoptStarted(r.pid, r.pidStartTime);
  // Gone while no daemon ran: the keeper wrote its exit down before it reaped it.
  const recorded = !handle && ctx.keeper && r.pid !== null && r.pidStartTime !== null ? await ctx.keeper.recordedExit(r.pid, r.pidStartTime) : null;
  if (!handle && !recorded) {
    closeHanded(handed);
    transition(r, { to: 'CONTAINER_EXITED', exitCode: 255, reason: 'ContainerStatusUnknown', message: 'the container exited while nodecri was down, so its exit code is unknown' });
    await ctx.persist(r);
    return;
  }
  if (handle) ctx.opts.host.refProcess(handle, false);
  let log: CriLogWriter | null = null;
  const readers: LogReader[] = [];
  if (r.logPath !== '') {
    log = containerLogWriter(ctx, r);
    await log.openFile();
  }
  for (const s of ['stdout', 'stderr'] as const) {
    const p = path.join(r.runDir, s);
    // The previous image's read end, kept open across its execve, when it is this FIFO;
    // else the FIFO opened again (after a crash the pipe lived on in the container's end).
    const fd = (await takeHandedFifo(handed[s], p)) ?? (await openFd(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK).catch(() => null));
    if (fd === null) continue;
    // The same pipe as before (the container, or the keeper, kept it open): the keeper
    // holds it again, for the next crash.
    ctx.keeper?.hold(r.id, s, fd);
    readers.push(attachReader(log, s, fd, false));
  }
  // A graceful restart hands over the pty master and the stdin pipe's write end (a crash
  // loses both: the master's close hung the terminal up, the pipe's write end was closed).
  const terminal = await takeHandedFd(handed.terminal, 'terminal');
  if (terminal !== null) readers.push(attachReader(log, 'stdout', terminal, true));
  const stdinPipe = await takeHandedFd(handed.stdin, 'pipe');
  let stdin = null;
  if (terminal !== null && handed.terminalStdin && r.spec.stdin) stdin = containerStdin(ctx, r, { terminal, stdin: null });
  else if (terminal === null && stdinPipe !== null) stdin = containerStdin(ctx, r, { terminal: null, stdin: stdinPipe });
  else if (stdinPipe !== null) closeHanded({ stdin: stdinPipe });
  const stdinFd = stdin !== null ? stdinPipe : null;
  const closeStdio = () => {
    for (const x of readers) x.sock.destroy();
    stdin?.destroy();
  };
  const live: Live = { handle, keeperChild, log, readers, stdin, stdinFd, closeStdio, done: null };
  ctx.live.set(r.id, live);
  live.done = watchExit(ctx, r, live, recorded);
}
