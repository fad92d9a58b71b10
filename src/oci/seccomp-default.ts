/**
 * nodecri's RuntimeDefault seccomp profile: an allow-list. Anything not listed fails with
 * EPERM (defaultAction SCMP_ACT_ERRNO, defaultErrnoRet 1).
 *
 * The list is written for x86_64 (with its i386 and x32 ABIs) and aarch64 (with its arm
 * ABI). It names the syscalls of every ABI; a name an architecture lacks is skipped when
 * the filter is compiled (libseccomp's behaviour, which the addon's compiler must match).
 * The compiler should also make syscall numbers above the highest one it knows fail with
 * ENOSYS rather than EPERM, so that libcs fall back from syscalls newer than this list
 * (runc does this; faccessat2 and clone3 were the cases that bit containers).
 *
 * What is refused, and why. Several refusals are lifted when the container's bounding set
 * holds the capability that makes the call meaningful, as the peers' profiles do, so that
 * adding CAP_SYS_ADMIN to a pod is enough to let it mount (the capability check still
 * happens in the kernel).
 *
 * | syscalls | why refused | lifted by |
 * |---|---|---|
 * | unshare, setns, clone/clone3 with namespace flags | new or foreign namespaces are the main way out of a container's confinement (user namespaces in particular hand out capabilities over new namespaces and expose much kernel code); clone is allowed only when its flags (argument 0 on x86_64 and aarch64) hold none of CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP; clone3 takes its flags in a struct seccomp cannot read, so it fails with ENOSYS and libcs fall back to clone | CAP_SYS_ADMIN |
 * | mount, umount, umount2, pivot_root, the new mount API (fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, mount_setattr) | changing the mount tree | CAP_SYS_ADMIN |
 * | sethostname, setdomainname | the pod shares its UTS namespace | CAP_SYS_ADMIN |
 * | quotactl, quotactl_fd, lookup_dcookie, fanotify_init | host-wide filesystem or profiling state | CAP_SYS_ADMIN |
 * | bpf | loads code into the kernel; a large attack surface | CAP_SYS_ADMIN or CAP_BPF |
 * | perf_event_open | host-wide performance data, a history of kernel bugs | CAP_SYS_ADMIN or CAP_PERFMON |
 * | keyctl, add_key, request_key | the kernel keyring is not namespaced | never |
 * | kexec_load, kexec_file_load | replaces the host kernel | never |
 * | init_module, finit_module, delete_module | loads or removes host kernel modules | CAP_SYS_MODULE |
 * | reboot | reboots the host, or kills the PID namespace's init | CAP_SYS_BOOT |
 * | swapon, swapoff | host memory configuration | never |
 * | settimeofday, stime, clock_settime(64) | the clock is not namespaced | CAP_SYS_TIME |
 * | acct | host-wide process accounting | CAP_SYS_PACCT |
 * | open_by_handle_at, name_to_handle_at | file handles bypass path lookup (the "shocker" breakout) | CAP_DAC_READ_SEARCH |
 * | userfaultfd | used to win kernel races in exploits | never |
 * | iopl, ioperm | raw port I/O | CAP_SYS_RAWIO |
 * | chroot | (harmless alone, but CRI-O and docker gate it) | CAP_SYS_CHROOT |
 * | syslog | the host's kernel log | CAP_SYSLOG |
 * | kcmp | compares kernel objects of other processes | CAP_SYS_PTRACE |
 * | mbind, set_mempolicy, set_mempolicy_home_node, move_pages, migrate_pages, get_mempolicy | NUMA placement of the host's memory | CAP_SYS_NICE |
 * | vhangup | the host's terminals | CAP_SYS_TTY_CONFIG |
 * | io_uring_setup, io_uring_enter, io_uring_register | bypasses seccomp for the operations it performs, and the source of many kernel exploits (docker's profile dropped it too) | never |
 * | modify_ldt, vm86, vm86old, uselib, nfsservctl, create_module, get_kernel_syms, query_module, sysfs, ustat, _sysctl, pciconfig_* | obsolete or legacy, no use in a container | never |
 * | personality | allowed only for PER_LINUX, PER_LINUX32, UNAME26 (and their combination) and the 0xffffffff query: other personalities change address-space layout and can disable ASLR | never |
 *
 * ptrace, process_vm_readv and process_vm_writev are allowed: since Linux 4.8 a traced
 * process cannot use ptrace to skip seccomp, and the kernel's ptrace access check (same
 * uid, same PID namespace, no CAP_SYS_PTRACE needed for one's own processes) still holds,
 * which is what both peers' default profiles do on such kernels.
 */
import type { OciSeccomp, OciSyscall } from './types';

/** Always allowed. Grouped for reading, one line per group (so not formatted); the order means nothing. */
// prettier-ignore
const ALLOWED: readonly string[] = [
  // file descriptors and file I/O
  'read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
  'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'lseek', '_llseek',
  'dup', 'dup2', 'dup3', 'fcntl', 'fcntl64', 'flock', 'ioctl', 'pipe', 'pipe2',
  'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'sync_file_range2', 'arm_sync_file_range',
  'truncate', 'truncate64', 'ftruncate', 'ftruncate64', 'fallocate',
  'fadvise64', 'fadvise64_64', 'arm_fadvise64_64', 'readahead',
  'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range',
  // paths, metadata, directories
  'stat', 'stat64', 'lstat', 'lstat64', 'fstat', 'fstat64', 'newfstatat', 'fstatat64', 'statx',
  'statfs', 'statfs64', 'fstatfs', 'fstatfs64', 'access', 'faccessat', 'faccessat2',
  'getdents', 'getdents64', 'getcwd', 'chdir', 'fchdir',
  'mkdir', 'mkdirat', 'rmdir', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat',
  'unlink', 'unlinkat', 'readlink', 'readlinkat', 'mknod', 'mknodat',
  'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'chown32', 'fchown', 'fchown32', 'fchownat', 'lchown', 'lchown32',
  'umask', 'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat',
  'getxattr', 'lgetxattr', 'fgetxattr', 'setxattr', 'lsetxattr', 'fsetxattr', 'listxattr', 'llistxattr', 'flistxattr',
  'removexattr', 'lremovexattr', 'fremovexattr', 'getxattrat', 'setxattrat', 'listxattrat', 'removexattrat',
  'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark',
  // memory
  'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'pkey_mprotect', 'pkey_alloc', 'pkey_free',
  'madvise', 'process_madvise', 'mlock', 'mlock2', 'munlock', 'mlockall', 'munlockall', 'mincore', 'msync',
  'membarrier', 'memfd_create', 'memfd_secret', 'remap_file_pages', 'mseal', 'map_shadow_stack',
  // processes and threads
  'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid',
  'kill', 'tkill', 'tgkill', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo',
  'pidfd_open', 'pidfd_send_signal', 'pidfd_getfd', 'process_mrelease',
  'getpid', 'getppid', 'gettid', 'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid',
  'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq', 'restart_syscall',
  'arch_prctl', 'set_thread_area', 'get_thread_area', 'set_tls', 'cacheflush', 'breakpoint',
  'prctl', 'capget', 'capset', 'seccomp',
  'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
  'ptrace', 'process_vm_readv', 'process_vm_writev',
  // credentials
  'getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getegid', 'getegid32',
  'setuid', 'setuid32', 'setgid', 'setgid32', 'setreuid', 'setreuid32', 'setregid', 'setregid32',
  'setresuid', 'setresuid32', 'setresgid', 'setresgid32', 'getresuid', 'getresuid32', 'getresgid', 'getresgid32',
  'setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32', 'getgroups', 'getgroups32', 'setgroups', 'setgroups32',
  // scheduling and limits
  'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getparam', 'sched_setparam',
  'sched_getscheduler', 'sched_setscheduler', 'sched_get_priority_max', 'sched_get_priority_min',
  'sched_rr_get_interval', 'sched_rr_get_interval_time64', 'sched_getattr', 'sched_setattr',
  'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set', 'getcpu',
  'getrlimit', 'setrlimit', 'ugetrlimit', 'prlimit64', 'getrusage', 'times',
  // futexes
  'futex', 'futex_time64', 'futex_waitv', 'futex_wait', 'futex_wake', 'futex_requeue',
  // time and timers (reading the clock; adjtimex/clock_adjtime only change it with CAP_SYS_TIME)
  'clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64', 'clock_nanosleep', 'clock_nanosleep_time64',
  'nanosleep', 'gettimeofday', 'time', 'adjtimex', 'clock_adjtime', 'clock_adjtime64',
  'getitimer', 'setitimer', 'alarm',
  'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
  'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64',
  // signals
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64',
  'sigaction', 'sigprocmask', 'sigreturn', 'sigpending', 'sigsuspend', 'sigaltstack', 'signal', 'signalfd', 'signalfd4', 'pause',
  // waiting for events
  'poll', 'ppoll', 'ppoll_time64', 'select', '_newselect', 'pselect6', 'pselect6_time64',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old', 'epoll_pwait', 'epoll_pwait2',
  'eventfd', 'eventfd2',
  'io_setup', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_submit', 'io_cancel',
  // sockets (the network namespace is the pod's own)
  'socket', 'socketpair', 'socketcall', 'bind', 'connect', 'listen', 'accept', 'accept4',
  'getsockname', 'getpeername', 'getsockopt', 'setsockopt', 'shutdown',
  'send', 'sendto', 'sendmsg', 'sendmmsg', 'recv', 'recvfrom', 'recvmsg', 'recvmmsg', 'recvmmsg_time64',
  // System V and POSIX IPC (the IPC namespace is the pod's own)
  'ipc', 'shmget', 'shmat', 'shmdt', 'shmctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'semctl',
  'msgget', 'msgsnd', 'msgrcv', 'msgctl',
  'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64',
  'mq_notify', 'mq_getsetattr',
  // system information
  'uname', 'olduname', 'oldolduname', 'sysinfo', 'getrandom', 'cachestat',
];

/** Allowed when the bounding set holds any one of the capabilities. */
const BY_CAPABILITY: ReadonlyArray<{ caps: readonly string[]; names: readonly string[] }> = [
  {
    caps: ['CAP_SYS_ADMIN'],
    names: [
      'unshare',
      'setns',
      'clone',
      'clone3',
      'mount',
      'umount',
      'umount2',
      'pivot_root',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'move_mount',
      'open_tree',
      'mount_setattr',
      'sethostname',
      'setdomainname',
      'quotactl',
      'quotactl_fd',
      'lookup_dcookie',
      'fanotify_init',
    ],
  },
  { caps: ['CAP_SYS_ADMIN', 'CAP_BPF'], names: ['bpf'] },
  { caps: ['CAP_SYS_ADMIN', 'CAP_PERFMON'], names: ['perf_event_open'] },
  { caps: ['CAP_SYS_MODULE'], names: ['init_module', 'finit_module', 'delete_module'] },
  { caps: ['CAP_SYS_BOOT'], names: ['reboot'] },
  { caps: ['CAP_SYS_TIME'], names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'] },
  { caps: ['CAP_SYS_PACCT'], names: ['acct'] },
  { caps: ['CAP_DAC_READ_SEARCH'], names: ['open_by_handle_at', 'name_to_handle_at'] },
  { caps: ['CAP_SYS_RAWIO'], names: ['iopl', 'ioperm'] },
  { caps: ['CAP_SYS_CHROOT'], names: ['chroot'] },
  { caps: ['CAP_SYSLOG'], names: ['syslog'] },
  { caps: ['CAP_SYS_PTRACE'], names: ['kcmp'] },
  { caps: ['CAP_SYS_NICE'], names: ['mbind', 'set_mempolicy', 'set_mempolicy_home_node', 'get_mempolicy', 'move_pages', 'migrate_pages'] },
  { caps: ['CAP_SYS_TTY_CONFIG'], names: ['vhangup'] },
];

/** Never allowed by this profile, whatever the capabilities (listed for the tests and readers). */
export const NEVER_ALLOWED: readonly string[] = [
  'keyctl',
  'add_key',
  'request_key',
  'kexec_load',
  'kexec_file_load',
  'swapon',
  'swapoff',
  'userfaultfd',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'modify_ldt',
  'vm86',
  'vm86old',
  'uselib',
  'nfsservctl',
  'create_module',
  'get_kernel_syms',
  'query_module',
  'sysfs',
  'ustat',
  '_sysctl',
  'pciconfig_iobase',
  'pciconfig_read',
  'pciconfig_write',
];

const CLONE_NAMESPACE_FLAGS =
  0x00020000 /* NEWNS */ |
  0x04000000 /* NEWUTS */ |
  0x08000000 /* NEWIPC */ |
  0x10000000 /* NEWUSER */ |
  0x20000000 /* NEWPID */ |
  0x40000000 /* NEWNET */ |
  0x02000000; /* NEWCGROUP */

/** Personalities a container may ask for: PER_LINUX, PER_LINUX32, UNAME26, both, and the query. */
const PERSONALITIES: readonly number[] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const EPERM = 1;
const ENOSYS = 38;

/** The seccomp architectures for a Node `process.arch`: the native ABI first, then its compat ABIs. */
export function seccompArchitectures(arch: string): string[] {
  switch (arch) {
    case 'x64':
      return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'arm64':
      return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'ia32':
      return ['SCMP_ARCH_X86'];
    case 'arm':
      return ['SCMP_ARCH_ARM'];
    default:
      return [];
  }
}

/**
 * The RuntimeDefault profile for a container whose bounding set is `capabilities` (CAP_
 * names), on the architecture `arch` (Node's process.arch: x64, arm64).
 */
export function defaultSeccompProfile(opts: { arch: string; capabilities: readonly string[] }): OciSeccomp {
  const has = (caps: readonly string[]) => caps.some((c) => opts.capabilities.includes(c));
  const allowed = [...ALLOWED];
  for (const g of BY_CAPABILITY) if (has(g.caps)) allowed.push(...g.names);
  const syscalls: OciSyscall[] = [{ names: allowed, action: 'SCMP_ACT_ALLOW' }];
  for (const p of PERSONALITIES) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }] });
  }
  if (!has(['CAP_SYS_ADMIN'])) {
    syscalls.push({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: seccompArchitectures(opts.arch),
    syscalls,
  };
}
