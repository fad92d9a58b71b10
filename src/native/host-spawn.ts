/**
 * Host helper programs (CNI plugins) run by the addon: glibc's posix_spawn (a
 * CLONE_VM|CLONE_VFORK child: no copy of the daemon's page tables, which a fork by
 * child_process makes on every call), stdin written and stdout/stderr read on the loop, the
 * exit watched by a pidfd, a deadline that SIGKILLs the program and its process group. The
 * promise settles once the program is reaped: nothing of the run is left then.
 */
import { nativeFunction } from './binding';

export interface HostRunSpec {
  /** absolute path of the binary (no PATH search) */
  path: string;
  /** argv[0] included */
  argv: string[];
  /** the whole environment, "KEY=value" */
  env: string[];
  stdin: Buffer;
  /** 0: no deadline */
  timeoutMs: number;
  /** each of stdout and stderr may hold this much; past it the program is killed */
  maxOutputBytes: number;
}

export interface HostRunResult {
  pid: number;
  /** null when a signal ended it */
  exitCode: number | null;
  signal: number | null;
  stdout: Buffer;
  stderr: Buffer;
  /** killed at the deadline */
  timedOut: boolean;
  /** the stream that passed maxOutputBytes (and got the program killed), or null */
  overflowed: 'stdout' | 'stderr' | null;
}

/** Runs a host program to its end; rejects (a SyscallError naming the path) only if it could not be started. */
export const runHostProgram = nativeFunction<(spec: HostRunSpec) => Promise<HostRunResult>>('hostRun');
