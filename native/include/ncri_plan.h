// The flat plan a container's init consumes, and the frames it sends back.
//
// The frames, steps and messages here are those of every child the runtime clones: the
// container's (nodecri-init on a ChildPlan, native/child) and the namespace child that makes
// and enters pod namespaces (core/ns.cc, on a plan of its own in the cloning thread's
// memory). One set of numbers, one table of step names (core/child_steps.cc).
//
// Everything the child needs is resolved by the parent (native/spawn) before the clone.
// The parent lays the plan out in one contiguous block (the ChildPlan at offset 0, then
// the strings and arrays it points to) where every pointer field holds an offset into the
// block, and hands the block to the child in a memfd. The child is not a copy of the
// daemon: it execs nodecri-init (native/child/init_main.cc) straight after the clone, and
// the init reads the block into its own memory and adds its address to every pointer
// (ncri_plan_relocate). So nothing a container can ever see shares the daemon's memory,
// and the daemon may free its side of the plan as soon as the clone returned.
// fds in the plan are the daemon's fd numbers, kept open across the exec of the init.
#pragma once

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

namespace ncri {

// What the child was doing when it failed. The parent owns the names (core/child_steps.cc),
// so that the child reports a number and never formats a string.
enum ChildStep : uint32_t {
  kStepNone = 0,
  kStepSignals,
  kStepCloseFds,
  kStepSetsid,
  kStepStdio,
  kStepControllingTty,
  kStepCgroup,
  kStepWaitIdMaps,
  kStepSetns,
  kStepUnshare,
  kStepInnerClone,
  kStepRootPropagation,
  kStepRootBind,
  kStepMountPoint,
  kStepMount,
  kStepMountRemount,
  kStepMountPropagation,
  kStepDevice,
  kStepSymlink,
  kStepSysctl,
  kStepHostname,
  kStepDomainname,
  kStepOomScoreAdj,
  kStepPivotRoot,
  kStepDetachOldRoot,
  kStepMaskPath,
  kStepReadonlyPath,
  kStepReadonlyRoot,
  kStepRlimit,
  kStepBoundingSet,
  kStepKeepCaps,
  kStepSetgroups,
  kStepSetgid,
  kStepSetuid,
  kStepCapset,
  kStepAmbientCaps,
  kStepNoNewPrivs,
  kStepSeccomp,
  kStepChdirCwd,
  kStepResolveExec,
  kStepReady,
  kStepWaitStart,
  kStepExec,
  kStepExecInit,
  kStepReadPlan,
  kStepConsole,      // open the container's /dev/ptmx, its peer, make it stdio and the ctty
  kStepSendConsole,  // pass the pty master to the parent (SCM_RIGHTS)
  kStepMaskSource,   // clone the runtime's /dev/null (a detached mount) before pivot_root
  kStepWaitPidHeld,  // the real child of a double clone waits until the parent holds its pidfd
  // The namespace child (core/ns.cc). For the sysctl steps, the frame's value is the
  // index of the sysctl in its plan.
  kStepNsSignals,
  kStepNsUnshareUser,
  kStepNsSetresgid,
  kStepNsSetresuid,
  kStepNsUnshare,
  kStepNsSetns,
  kStepNsSysctlOpen,
  kStepNsSysctlWrite,
  kStepNsLoopbackSocket,
  kStepNsLoopbackGetFlags,
  kStepNsLoopbackSetFlags,
  kStepCount
};

enum FrameKind : uint32_t {
  kFrameReady = 1,    // setup done, blocked waiting for the start byte
  kFrameError = 2,    // step failed with err; the child _exits right after
  kFrameWarning = 3,  // step degraded (e.g. oom_score_adj clamped); the child goes on
  kFramePid = 4,      // the intermediate cloned the real child: value = its pid (our pid ns),
                      // its pidfd (CLONE_PIDFD) attached (SCM_RIGHTS); answered by kMsgPidHeld
  kFrameIdMaps = 5,   // made a user namespace: write its id maps (and for the namespace child
                      // setgroups), then send kMsgIdMapsWritten
  kFrameTerminal = 6, // carries the pty master (SCM_RIGHTS), opened in the container's devpts
};

// Fixed-size record over the SOCK_SEQPACKET sync socket. `path` is the offset of one of
// the plan's strings in the plan block (the parent maps it back to text, and ignores
// values it does not know), 0 for none.
struct ChildFrame {
  uint32_t kind;
  uint32_t step;
  int32_t err;
  uint32_t pad;
  uint64_t path;
  int64_t value;
};

// Bytes the parent sends to the child.
constexpr char kMsgIdMapsWritten = 'M';
constexpr char kMsgPidHeld = 'P';  // to the real child of a double clone: the parent holds your pidfd
constexpr char kMsgStart = 'S';
constexpr char kMsgExit = 'X';  // to the namespace child after READY: its namespaces are pinned, exit

struct PlanMount {
  const char *source;   // host path for binds (resolved before pivot_root), or fs source
  const char *target;   // <rootfs>/<destination>: for error reports only
  const char *rel;      // destination relative to the rootfs, resolved with RESOLVE_IN_ROOT
  const char *fstype;   // nullptr for binds
  const char *data;     // fs-specific options, or nullptr
  uint64_t flags;       // MS_* for the first mount(2) (includes MS_BIND|MS_REC for binds)
  uint64_t remount;     // MS_* applied by a MS_REMOUNT|MS_BIND pass (binds with ro/nosuid/...), 0 = none
  uint64_t propagation; // MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (|MS_REC), 0 = none
  int32_t target_is_dir;  // create a directory (1) or an empty file (0) as mount point
  int32_t pad;
};

struct PlanDevice {
  const char *target;     // <rootfs>/<path>: for error reports only
  const char *rel;        // path relative to the rootfs (resolved in root)
  const char *host_path;  // host device to bind when mknod is refused (user ns), or nullptr
  uint32_t mode;          // S_IFCHR|S_IFBLK|S_IFIFO | permissions
  uint32_t uid, gid;
  uint32_t pad;
  uint64_t dev;           // makedev(major, minor)
};

struct PlanSymlink {
  const char *target;    // what the link points to ("/proc/self/fd")
  const char *linkpath;  // <rootfs>/<path>: for error reports only
  const char *rel;       // path relative to the rootfs (resolved in root)
};

struct PlanSysctl {
  const char *path;   // "/proc/sys/net/ipv4/ip_forward" (host /proc, written before pivot_root)
  const char *value;
  size_t value_len;
};

struct PlanRlimit {
  int32_t resource;
  int32_t pad;
  uint64_t soft, hard;
};

// Namespaces the child joins, in the order given (the parent sorts: user first, mnt last).
struct PlanNamespace {
  int32_t fd;
  int32_t nstype;  // CLONE_NEW*
  const char *path;
};

enum PlanFlags : uint32_t {
  kPlanWaitIdMaps = 1u << 0,      // creates a user ns (unshare): ask the parent to write the maps
  kPlanIntermediate = 1u << 1,    // join/unshare, clone the real child with CLONE_PARENT|CLONE_PIDFD, exit
  kPlanTerminal = 1u << 2,        // open a pty in the container's devpts: stdio, ctty, master to the parent
  kPlanNoNewPrivs = 1u << 3,
  kPlanHasCaps = 1u << 4,
  kPlanHasOom = 1u << 5,
  kPlanSkipStartWait = 1u << 6,   // exec sessions: no create/start split
  kPlanSetUmask = 1u << 7,
  kPlanRootReadonly = 1u << 8,
  kPlanCloneFallback = 1u << 9,   // tests: use clone(2) as if clone3 were ENOSYS
  kPlanTestKillIntermediate = 1u << 10,  // tests: the intermediate SIGKILLs itself after its clone
  kPlanTestPidFrameWrongPid = 1u << 11,  // tests: its PID frame names another pid
  kPlanTestPidFrameTwoFds = 1u << 12,    // tests: its PID frame carries the pidfd twice
};

struct ChildPlan {
  uint32_t flags;
  int32_t sync_fd;  // child end of the SOCK_SEQPACKET pair (O_CLOEXEC)

  // Every fd the child may use; all others are closed first thing (they may be another
  // container's pipe ends, inherited because a concurrent create was in flight). Sorted.
  const int32_t *keep_fds;
  int32_t n_keep_fds;

  int32_t stdio[3];  // fds to dup onto 0, 1, 2

  const int32_t *cgroup_fds;  // opened cgroup.procs files: the child writes "0" to each
  const char *const *cgroup_paths;
  int32_t n_cgroup_fds;

  const PlanNamespace *join_ns;
  int32_t n_join_ns;
  uint64_t unshare_flags;      // CLONE_NEW* to unshare in the child (cgroup ns: after the cgroup join)
  uint64_t inner_clone_flags;  // intermediate only: CLONE_NEW* for the second clone (CLONE_NEWPID)

  // Rootfs; rootfs == nullptr means "stay where we are" (exec sessions).
  const char *rootfs;
  uint64_t root_propagation;  // MS_PRIVATE|MS_REC by default
  const PlanMount *mounts;
  int32_t n_mounts;
  const PlanDevice *devices;
  int32_t n_devices;
  const PlanSymlink *symlinks;
  int32_t n_symlinks;
  const PlanSysctl *sysctls;
  int32_t n_sysctls;
  // An fd number the parent reserved (the host's /dev/null, O_PATH) for the mask source:
  // the child replaces it, before pivot_root, with a detached clone of that /dev/null
  // mount (open_tree), which masks are bound from. -1 = none (no rootfs).
  int32_t devnull_fd;
  const char *const *masked_paths;  // container paths, applied after pivot_root
  int32_t n_masked;
  const char *const *readonly_paths;
  int32_t n_readonly;

  const char *hostname;  // nullptr = leave
  const char *domainname;

  const char *oom_score_adj;  // decimal text
  const PlanRlimit *rlimits;
  int32_t n_rlimits;

  uint32_t uid, gid;
  const uint32_t *groups;
  int32_t n_groups;
  uint32_t umask;

  uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  int32_t cap_last_cap;

  const sock_filter *seccomp_filter;  // compiled by libseccomp in the parent
  uint16_t seccomp_len;
  uint32_t seccomp_flags;  // SECCOMP_FILTER_FLAG_*

  const char *cwd;
  const char *exec_name;          // argv[0] or the explicit path
  const char *const *exec_dirs;   // PATH entries to search when exec_name has no '/'
  int32_t n_exec_dirs;
  const char *const *argv;        // NULL-terminated
  const char *const *envp;        // NULL-terminated
};

// The stage between the clone and the exec of nodecri-init. It runs in the daemon's memory
// (CLONE_VM|CLONE_VFORK: the cloning thread waits until it has exec'd), so it only clears
// close-on-exec on the fds the init needs and execs; everything it reads is here.
struct ExecInitArgs {
  int32_t init_fd;        // sealed memfd holding nodecri-init (O_CLOEXEC: execveat keeps its file)
  int32_t sync_fd;        // to report a failed exec
  const int32_t *keep_fds;  // fds the init needs: their close-on-exec flag is cleared
  int32_t n_keep_fds;
  const char *const *argv;  // {"nodecri-init", "<plan fd>", NULL}
  const char *const *envp;  // {NULL}
};

}  // namespace ncri

// A frame; `path` is a plan-string offset (0: none).
inline ncri::ChildFrame ncri_make_frame(uint32_t kind, uint32_t step, long err, uint64_t path, int64_t value) {
  ncri::ChildFrame f;
  f.kind = kind;
  f.step = step;
  f.err = (int32_t)-err;
  f.pad = 0;
  f.path = path;
  f.value = value;
  return f;
}

// The names of a step (core/child_steps.cc; the child reports only the number): the
// syscall that failed ("" if none) and what it was doing ("find executable").
const char *ncri_step_syscall(uint32_t step);
const char *ncri_step_name(uint32_t step);

// Offsets in a plan block -> addresses (init side). Returns false on a pointer outside the
// block (a bad plan: the init reports EPROTO).
bool ncri_plan_relocate(ncri::ChildPlan *plan, uint64_t size);
// The offset in the plan block of a relocated plan pointer, 0 if it is not in the block.
uint64_t ncri_plan_offset(const void *ptr);

// Entry points (hidden visibility: called directly, never through the PLT, since lazy
// binding in a child that shares our memory would take the loader's locks).
extern "C" {
// Stage 0 (in the addon): runs on a private stack in the daemon's memory until it execs.
int ncri_exec_init_main(void *exec_init_args) __attribute__((visibility("hidden")));
// In nodecri-init, on its own relocated plan. Never return: exec or _exit.
int ncri_child_main(void *plan) __attribute__((visibility("hidden")));
// The intermediate of a double clone: joins, unshares, clones the real child (which runs
// ncri_child_main) with CLONE_PARENT|CLONE_PIDFD, passes its pidfd to the parent and exits.
int ncri_intermediate_main(void *plan) __attribute__((visibility("hidden")));
// clone3 that runs fn(arg) on `args->stack` in the child and exit_group()s with its result.
// Returns the child pid in the parent or -errno. Touches no libc state (no errno).
long ncri_clone3_run(void *clone_args, size_t size, int (*fn)(void *), void *arg)
    __attribute__((visibility("hidden")));
// Same with the legacy clone(2) (fallback when clone3 is ENOSYS): flags include the exit
// signal; with CLONE_PIDFD the pidfd is stored at *pidfd.
long ncri_clone_run(unsigned long flags, void *stack_top, int *pidfd, int (*fn)(void *), void *arg)
    __attribute__((visibility("hidden")));
}
