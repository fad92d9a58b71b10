/**
 * A container's state, changed in one place. A record is born CREATED (create.ts) and makes
 * at most two moves: CREATED -> RUNNING (started), then -> EXITED (its exit recorded); or
 * CREATED -> EXITED at once (its start failed, or it was stopped before it was started).
 * EXITED is final. UNKNOWN (the CRI's) is never entered: an exit nobody saw is EXITED with
 * reason ContainerStatusUnknown (exitMove). Each move sets the
 * state with what goes with it (the time, the exit code, reason and message, the process
 * gone), so no record can say RUNNING without a start time or EXITED with a pid. A move
 * from anywhere else is refused, naming the container and both states.
 *
 * The process a CREATED container holds before exec (made at create, or again at start by
 * a daemon that did not make it) is set and dropped here too, and only in CREATED.
 */
import os from 'node:os';
import { failedPrecondition } from '../domain/errors';
import { nowNanos } from '../domain/events';
import type { ExitStatus } from '../native/process';
import type { ContainerRecord, ContainerState } from './model';

/** A move, with what the new state needs. */
export type ContainerMove = { to: 'CONTAINER_RUNNING' } | { to: 'CONTAINER_EXITED'; exitCode: number; reason: string; message: string };

const moves: Record<ContainerState, readonly ContainerState[]> = {
  CONTAINER_CREATED: ['CONTAINER_RUNNING', 'CONTAINER_EXITED'],
  CONTAINER_RUNNING: ['CONTAINER_EXITED'],
  CONTAINER_EXITED: [],
  CONTAINER_UNKNOWN: [],
};

/** Whether a container in state `from` may move to `to`. */
export function canMove(from: ContainerState, to: ContainerState): boolean {
  return moves[from]?.includes(to) ?? false;
}

const shortName = (s: string) => s.replace('CONTAINER_', '').toLowerCase();

/**
 * Moves `r` to `move.to`, at `at` (nanoseconds since the epoch, now by default); throws a
 * failed-precondition error, changing nothing, when the move is not allowed.
 */
export function transition(r: ContainerRecord, move: ContainerMove, at: string = nowNanos()): void {
  if (!canMove(r.state, move.to)) throw failedPrecondition(`container ${r.id} cannot go from ${shortName(r.state)} to ${shortName(move.to)}`);
  switch (move.to) {
    case 'CONTAINER_RUNNING':
      r.state = 'CONTAINER_RUNNING';
      r.startedAt = at;
      return;
    case 'CONTAINER_EXITED':
      r.state = 'CONTAINER_EXITED';
      r.finishedAt = at;
      r.exitCode = move.exitCode;
      r.reason = move.reason;
      r.message = move.message;
      r.pid = null;
      r.pidStartTime = null;
      return;
  }
}

/** A CREATED container's process, held before exec: its pid and that pid's start time. */
export function holdProcess(r: ContainerRecord, pid: number, startTime: string | null): void {
  if (r.state !== 'CONTAINER_CREATED') throw failedPrecondition(`container ${r.id} is ${shortName(r.state)}: only a created container holds a process before exec`);
  r.pid = pid;
  r.pidStartTime = startTime;
}

/** A CREATED container's held process is gone (it died with the daemon that held it). */
export function dropHeldProcess(r: ContainerRecord): void {
  if (r.state !== 'CONTAINER_CREATED') throw failedPrecondition(`container ${r.id} is ${shortName(r.state)}: only a created container holds a process before exec`);
  r.pid = null;
  r.pidStartTime = null;
}

/** Exit code as the CRI reports it: the code, or 128 + the signal number; null when unknowable. */
export function exitCodeOf(st: ExitStatus): number | null {
  if (st.exitCode !== null) return st.exitCode;
  if (st.signal !== null) return 128 + os.constants.signals[st.signal];
  return null;
}

/** The move of a reaped exit: its code (null: unknowable) and whether the OOM killer struck. */
export function exitMove(code: number | null, oomKilled: boolean): ContainerMove {
  if (code === null) {
    return {
      to: 'CONTAINER_EXITED',
      exitCode: 255,
      reason: 'ContainerStatusUnknown',
      message: 'the container exited while nodecri was not its parent, so its exit code is unknown',
    };
  }
  return { to: 'CONTAINER_EXITED', exitCode: code, reason: oomKilled ? 'OOMKilled' : code === 0 ? 'Completed' : 'Error', message: '' };
}
