/**
 * A command run in a running container as its process runs: ExecSync (its output
 * collected) and the streaming Exec (its stdio connected to a client's streams). Both go
 * through runExec, which owns the process part: the exec itself, the kill on a timeout or
 * when the caller gives up, the wait for its exit and its output, and its release.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { RuntimeError, failedPrecondition, invalidArgument } from '../domain/errors';
import type { StreamIO } from '../domain/stream-io';
import type { ProcessHandle } from '../native/process';
import type { ContainerContext } from './context';
import type { ContainerRecord } from './model';
import { fdReader } from './logs';
import { exitCodeOf } from './state-machine';
import { execProcessSpec } from './process-plan';
import type { StdioPlan } from './process-plan';

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** ExecSync output beyond this is dropped (the stream is still drained). */
export const execOutputLimit = 16 * 1024 * 1024;

/**
 * How long the output of an exec that has exited may still take to arrive. Its children
 * may hold its pipes (or the pty's slave) open for as long as they live: what has not come
 * by then is not waited for, and the daemon's ends are closed. For the streaming Exec this
 * counts only while the output is idle and no client's stream holds it back (restarted on
 * each chunk, stopped while a destination is full): a slow or paused client still gets
 * all of it.
 */
export const execOutputGraceMs = 1000;

/** The container for an exec or attach: NOT_FOUND for an unknown id, FAILED_PRECONDITION naming its state otherwise. */
export function runningContainer(ctx: ContainerContext, idOrPrefix: string): ContainerRecord {
  const r = ctx.mustGet(idOrPrefix);
  if (r.state !== 'CONTAINER_RUNNING' || !ctx.live.get(r.id)?.handle) {
    throw failedPrecondition(`container ${r.id} is not running (it is ${r.state.replace('CONTAINER_', '').toLowerCase()})`);
  }
  return r;
}

/** What an exec's caller does with its stdio: started once the process runs. */
interface ExecStreams {
  /** settles once every output stream has ended and what it carried was delivered */
  done: Promise<void>;
  /** stops at once and closes the daemon's ends (pipes, pty master): idempotent */
  close(): void;
  /**
   * For the output grace (none: it runs from the exit on, as ExecSync's): `onChange` is
   * called on each chunk of output and whenever a full destination drains; `heldBack()`
   * tells whether a destination is full now (the output waits for the client).
   */
  activity?: { onChange(listener: () => void): void; heldBack(): boolean };
}

interface ExecOutcome {
  exitCode: number;
  timedOut: boolean;
  aborted: boolean;
}

/**
 * The process part of every exec: runs `cmd` in the running container as its process runs
 * (user, caps, seccomp, env, cgroups), hands its stdio to `connect`, kills it with SIGKILL
 * after `timeoutSeconds` (0: never) or when `signal` aborts (then its stdio is closed at
 * once), waits for its exit and then for its output (see execOutputGraceMs), closes its
 * stdio and releases it. Nothing of it is left once this settles.
 */
async function runExec(
  ctx: ContainerContext,
  idOrPrefix: string,
  cmd: string[],
  stdio: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean },
  timeoutSeconds: number,
  signal: AbortSignal | null,
  connect: (h: ProcessHandle) => ExecStreams,
): Promise<ExecOutcome> {
  const r = runningContainer(ctx, idOrPrefix);
  if (cmd.length === 0) throw invalidArgument('cmd is empty');
  const spec = await ctx.spec(r);
  const cgroupProcs = await ctx.cgroupProcs(r);
  // The container may have exited while the spec was read.
  const target = ctx.live.get(runningContainer(ctx, r.id).id)!.handle!;
  if (signal?.aborted) throw cancelled(cmd, r.id);
  const plan: StdioPlan = stdio.tty
    ? { stdin: 'null', stdout: 'null', stderr: 'null' }
    : { stdin: stdio.stdin ? 'pipe' : 'null', stdout: stdio.stdout ? 'pipe' : 'null', stderr: stdio.stderr ? 'pipe' : 'null' };
  const handle = await ctx.opts.host.execProcess(target, execProcessSpec(spec, cmd, cgroupProcs, plan, stdio.tty));
  let streams: ExecStreams;
  try {
    streams = connect(handle);
  } catch (e) {
    killProcess(ctx, handle);
    await handle.exited;
    await ctx.opts.host.releaseProcess(handle).catch(() => {});
    throw e;
  }
  let timedOut = false;
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    killProcess(ctx, handle);
    streams.close();
  };
  const timer = timeoutSeconds > 0 ? setTimeout(() => ((timedOut = true), killProcess(ctx, handle)), timeoutSeconds * 1000) : null;
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const st = await handle.exited;
    if (!aborted) {
      const grace = outputGrace(streams);
      await Promise.race([streams.done, grace.passed]);
      grace.cancel();
    }
    streams.close();
    return { exitCode: exitCodeOf(st) ?? 255, timedOut, aborted };
  } finally {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await ctx.opts.host.releaseProcess(handle).catch(() => {});
  }
}

/**
 * Settles once the output has been idle, and not held back by a destination, for
 * execOutputGraceMs (see there); without activity reporting, execOutputGraceMs from now.
 */
function outputGrace(streams: ExecStreams): { passed: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  let pass = () => {};
  const passed = new Promise<void>((res) => (pass = res));
  const restart = () => {
    clearTimeout(timer);
    timer = undefined;
    if (cancelled || streams.activity?.heldBack()) return;
    timer = setTimeout(pass, execOutputGraceMs);
  };
  streams.activity?.onChange(restart);
  restart();
  return {
    passed,
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}

function killProcess(ctx: ContainerContext, h: ProcessHandle): void {
  try {
    ctx.opts.host.signalProcess(h, 'SIGKILL');
  } catch {
    // gone
  }
}

const cancelled = (cmd: string[], id: string) => new RuntimeError('aborted', `exec ${JSON.stringify(cmd)} in container ${id} cancelled: the client went away`);

/** Settles when `s` is gone (ended, failed or destroyed); an error is the end of it. */
function untilClosed(s: Readable): Promise<void> {
  return new Promise((resolve) => {
    s.once('error', () => {});
    s.once('close', () => resolve());
  });
}

/**
 * Runs `cmd` in the running container as its process runs (user, caps, seccomp, env),
 * collecting up to 16 MiB of each stream. A timeout kills the exec and is an error.
 */
export async function execSync(ctx: ContainerContext, idOrPrefix: string, cmd: string[], timeoutSeconds: number, signal: AbortSignal | null): Promise<ExecSyncResult> {
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const sizes = { stdout: 0, stderr: 0 };
  const outcome = await runExec(ctx, idOrPrefix, cmd, { stdin: false, stdout: true, stderr: true, tty: false }, timeoutSeconds, signal, (h) => {
    const readers: Readable[] = [];
    for (const [name, fd] of [
      ['stdout', h.stdout],
      ['stderr', h.stderr],
    ] as const) {
      if (fd === null) continue;
      const sock = fdReader(fd, false);
      sock.on('data', (c: Buffer) => {
        if (sizes[name] < execOutputLimit) chunks[name].push(c.subarray(0, execOutputLimit - sizes[name]));
        sizes[name] += c.length;
      });
      readers.push(sock);
    }
    return { done: Promise.all(readers.map(untilClosed)).then(() => {}), close: () => readers.forEach((s) => s.destroy()) };
  });
  const id = ctx.get(idOrPrefix)?.id ?? idOrPrefix;
  if (outcome.timedOut) throw new RuntimeError('deadline-exceeded', `command ${JSON.stringify(cmd)} in container ${id} timed out after ${timeoutSeconds}s`);
  // An abort (the caller went away) answers as before: with the killed command's result.
  return { stdout: Buffer.concat(chunks.stdout), stderr: Buffer.concat(chunks.stderr), exitCode: outcome.exitCode };
}

/**
 * Copies `from` into `to` with backpressure (`from` is paused while `to` takes no more),
 * never ending `to`: the protocol layer closes it after the call settles.
 */
export function copyOut(from: Readable, to: Writable | null): void {
  if (to === null) {
    from.resume();
    return;
  }
  from.pipe(to, { end: false });
}

/**
 * Feeds the client's stdin into the process's stdin (`to`), with backpressure, ending it
 * when the client ends it. A process that stops reading (it exited, it closed its stdin)
 * makes `to` fail: the rest of the client's stdin is then read and dropped.
 */
export function copyIn(from: Readable, to: Writable): void {
  to.on('error', () => {
    from.unpipe(to);
    from.resume();
  });
  from.pipe(to);
}

/**
 * The streaming Exec: runs `cmd` as execSync does, with its stdio connected to `io`: pipes
 * for the streams the client asked for, or a pty (io.tty) whose master carries stdin and
 * stdout and takes the client's sizes (TIOCSWINSZ, the latest as soon as it exists).
 * Resolves with the exit code once the process exited and its output reached io (or its
 * output was idle for execOutputGraceMs, no client holding it back: children holding its
 * stdio are not waited for). An abort of `signal` (the client went away) kills it with
 * SIGKILL, closes its stdio and rejects with an 'aborted' error once it is reaped and
 * released.
 */
export async function execStream(ctx: ContainerContext, idOrPrefix: string, cmd: string[], io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }> {
  const want = { stdin: io.stdin !== null, stdout: io.stdout !== null, stderr: io.stderr !== null && !io.tty, tty: io.tty };
  const outcome = await runExec(ctx, idOrPrefix, cmd, want, 0, signal, (h) => connectExec(ctx, h, io));
  if (outcome.aborted) throw cancelled(cmd, ctx.get(idOrPrefix)?.id ?? idOrPrefix);
  return { exitCode: outcome.exitCode };
}

function connectExec(ctx: ContainerContext, h: ProcessHandle, io: StreamIO): ExecStreams {
  const readers: Readable[] = [];
  const writers: Writable[] = [];
  /** where the output goes: a full one holds the output grace */
  const destinations: Writable[] = [];
  const listeners: Array<() => void> = [];
  const changed = () => listeners.forEach((l) => l());
  /** copyOut, watched for the grace: after the pipe's own 'data' listener, so heldBack() sees its write */
  const watchedCopyOut = (out: Readable, to: Writable | null) => {
    copyOut(out, to);
    out.on('data', changed);
    if (to !== null) {
      destinations.push(to);
      to.on('drain', changed);
    }
  };
  /** fds a stream owns (closes) by now */
  const owned = new Set<number>();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (io.stdin) io.stdin.unpipe();
    for (const w of writers) w.destroy();
    for (const r of readers) r.destroy();
  };
  try {
    if (h.terminal !== null) {
      const master = h.terminal;
      const out = fdReader(master, true);
      owned.add(master);
      readers.push(out);
      watchedCopyOut(out, io.stdout);
      if (io.stdin) {
        const input = ctx.opts.host.terminalWriter(master);
        writers.push(input);
        copyIn(io.stdin, input);
      }
      // The master's fd number is free for reuse (another container's pty) once it is
      // closed: by close(), or by its reader on EIO (the terminal's slave side is gone),
      // which destroys the reader first. No resize after either.
      io.onResize((size) => {
        if (closed || out.destroyed) return;
        try {
          ctx.opts.host.resizeTerminal(master, size);
        } catch {
          // the terminal is going away
        }
      });
    } else {
      for (const [fd, to] of [
        [h.stdout, io.stdout],
        [h.stderr, io.stderr],
      ] as const) {
        if (fd === null) continue;
        const out = fdReader(fd, false);
        owned.add(fd);
        readers.push(out);
        watchedCopyOut(out, to);
      }
      if (h.stdin !== null) {
        const input = new net.Socket({ fd: h.stdin, readable: false, writable: true });
        owned.add(h.stdin);
        writers.push(input);
        if (io.stdin) copyIn(io.stdin, input);
        else input.end();
      }
    }
  } catch (e) {
    close();
    for (const fd of [h.stdin, h.stdout, h.stderr, h.terminal]) if (fd !== null && !owned.has(fd)) fs.close(fd, () => {});
    throw e;
  }
  return {
    done: Promise.all(readers.map(untilClosed)).then(() => {}),
    close,
    activity: { onChange: (l) => void listeners.push(l), heldBack: () => destinations.some((d) => d.writableNeedDrain && !d.destroyed) },
  };
}
