/**
 * The encodings of the addon's process plan: mount option strings to MS_* flags,
 * capability names to bit masks, rlimit names, namespace types and device types to
 * numbers. No policy: every default a container gets (capabilities, masks, mounts, /dev
 * devices and symlinks) is in src/oci/ and reaches the plan through config.json
 * (container/process-plan.ts). No I/O, so it is unit-tested without root.
 */

// <sys/mount.h>
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  REC: 16384,
  SILENT: 32768,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
} as const;

// <linux/sched.h>
export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

export type NamespaceType = 'pid' | 'mount' | 'ipc' | 'uts' | 'network' | 'user' | 'cgroup';

export const NAMESPACE_FLAGS: Record<NamespaceType, number> = {
  pid: CLONE.NEWPID,
  mount: CLONE.NEWNS,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  network: CLONE.NEWNET,
  user: CLONE.NEWUSER,
  cgroup: CLONE.NEWCGROUP,
};

/** Capability names in kernel order (<linux/capability.h>), without the CAP_ prefix. */
export const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** "CAP_CHOWN" (or "chown") → bit mask. Unknown names throw: a typo must not silently drop a cap. */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const raw of names) {
    const name = raw.toUpperCase().replace(/^CAP_/, '');
    const bit = (CAPABILITIES as readonly string[]).indexOf(name);
    if (bit < 0) throw new Error(`unknown capability ${raw}`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

export function rlimitNumber(name: string): number {
  const n = RLIMITS[name.toUpperCase()];
  if (n === undefined) throw new Error(`unknown rlimit ${name}`);
  return n;
}

const FLAG_OPTIONS: Record<string, { set: number } | { clear: number }> = {
  ro: { set: MS.RDONLY },
  rw: { clear: MS.RDONLY },
  nosuid: { set: MS.NOSUID },
  suid: { clear: MS.NOSUID },
  nodev: { set: MS.NODEV },
  dev: { clear: MS.NODEV },
  noexec: { set: MS.NOEXEC },
  exec: { clear: MS.NOEXEC },
  sync: { set: MS.SYNCHRONOUS },
  async: { clear: MS.SYNCHRONOUS },
  dirsync: { set: MS.DIRSYNC },
  mand: { set: MS.MANDLOCK },
  nomand: { clear: MS.MANDLOCK },
  noatime: { set: MS.NOATIME },
  atime: { clear: MS.NOATIME },
  nodiratime: { set: MS.NODIRATIME },
  diratime: { clear: MS.NODIRATIME },
  relatime: { set: MS.RELATIME },
  norelatime: { clear: MS.RELATIME },
  strictatime: { set: MS.STRICTATIME },
  nostrictatime: { clear: MS.STRICTATIME },
  silent: { set: MS.SILENT },
  loud: { clear: MS.SILENT },
  remount: { set: MS.REMOUNT },
};

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

export function propagationFlags(name: string): number {
  const f = PROPAGATION[name];
  if (f === undefined) throw new Error(`unknown propagation ${name}`);
  return f;
}

export interface ParsedMountOptions {
  /** flags for the first mount(2): everything for a plain mount, MS_BIND[|MS_REC] for a bind */
  flags: number;
  /** for binds: flags applied by a second MS_REMOUNT|MS_BIND pass (ro, nosuid, ...) */
  remount: number;
  propagation: number;
  bind: boolean;
  /** options that are not flags, comma-joined, or null */
  data: string | null;
}

/** OCI mount options → flags, the way runc and crun read them. */
export function parseMountOptions(options: readonly string[], type: string | null): ParsedMountOptions {
  let flags = 0;
  let propagation = 0;
  let bind = type === 'bind';
  let recursive = false;
  const data: string[] = [];
  for (const o of options) {
    if (o === 'bind') bind = true;
    else if (o === 'rbind') {
      bind = true;
      recursive = true;
    } else if (o in FLAG_OPTIONS) {
      const f = FLAG_OPTIONS[o];
      if ('set' in f) flags |= f.set;
      else flags &= ~f.clear;
    } else if (o in PROPAGATION) propagation |= PROPAGATION[o];
    else data.push(o);
  }
  if (bind) {
    return {
      flags: MS.BIND | (recursive ? MS.REC : 0),
      remount: flags & ~MS.REMOUNT,
      propagation,
      bind,
      data: data.length > 0 ? data.join(',') : null,
    };
  }
  return { flags, remount: 0, propagation, bind, data: data.length > 0 ? data.join(',') : null };
}

/** Device types to their S_IF* mode bits ('u' is the runtime-spec's other name for 'c'). */
export const S_IF = { c: 0o020000, u: 0o020000, b: 0o060000, p: 0o010000 } as const;
