/** Host identity from the addon; read once at start-up. */
import { nativeFunction } from './binding';

export interface Uname {
  sysname: string;
  release: string;
  machine: string;
  nodename: string;
}

/** The addon's own version string (matches package.json when the build is current). */
export const addonVersion = nativeFunction<() => string>('version');
/** uname(2). */
export const uname = nativeFunction<() => Uname>('uname');
/** prctl(PR_GET_DUMPABLE) of this process: core dumps and same-uid /proc access allowed. */
export const dumpable = nativeFunction<() => boolean>('dumpable');

/** One syscall (or flag) the container child needs, as the addon found it. */
export interface SyscallProbe {
  /** "close_range(CLOSE_RANGE_CLOEXEC)" */
  name: string;
  /** the first kernel release that has it */
  since: string;
  supported: boolean;
  /** what the probe call returned: 0 or an errno */
  errno: number;
}

/** Tries each syscall the child needs once, with arguments that do nothing. */
export const probeSyscalls = nativeFunction<() => SyscallProbe[]>('probeSyscalls');

/**
 * The start-up decision: null when every syscall the child needs is there, else a message
 * naming each missing one and the kernel that has it. Without them the child would fail
 * in ways that are not errors (close_range unchecked: fds leak into containers; openat2:
 * no confined path resolution), so the daemon refuses to start instead.
 */
export function kernelFloorError(probes: readonly SyscallProbe[], release: string): string | null {
  const missing = probes.filter((p) => !p.supported);
  if (missing.length === 0) return null;
  const floor = missing
    .map((p) => p.since)
    .sort(compareReleases)
    .at(-1)!;
  const list = missing.map((p) => `${p.name} (Linux ${p.since})`).join(', ');
  return `kernel ${release} lacks ${list}: nodecri needs Linux ${floor} or newer`;
}

function compareReleases(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
