// Code that runs in nodecri-init (init_main.cc), on the plan the parent prepared
// (ncri_plan.h), relocated into the init's own memory.
//
// Rules (style-anchors Rule 3): the init is a static program without libc, so it calls
// only raw syscalls (sys.h), allocates nothing but with mmap, formats nothing and takes no
// lock. It has its own address space (nothing here is shared with the daemon), but a
// fork-style child of it (the intermediate's) shares nothing either. Failure is a
// fixed-size frame (step, -errno, offset of the plan string it concerns) on the sync
// socket followed by exit_group.
//
// Order, and why:
//   signals reset/unblocked first (the daemon's dispositions, SIG_IGN of SIGPIPE included,
//   survive an exec), then every fd we do not need is closed (concurrent creates leave
//   their own fds in the daemon's table: holding another container's sync socket or pipe
//   would delay its EOF), session and stdio, cgroup (before any namespace, while we still
//   are host root; before the cgroup ns so that its root is the container's cgroup), id
//   maps, setns (user first), unshare, rootfs (mounts, devices, symlinks; sysctls and
//   oom_score_adj through the host /proc before it disappears), pivot_root,
//   masked/readonly paths, readonly root, hostname, rlimits, identity and capabilities,
//   no_new_privs, cwd, exec resolution, READY, wait for start, close_range(CLOEXEC),
//   seccomp, execve (seccomp before the identity change only when neither no_new_privs
//   nor CAP_SYS_ADMIN would be left to load it).
#pragma GCC optimize("no-tree-loop-distribute-patterns")  // no memcpy/memset calls synthesised

#include <errno.h>  // constants only: the child never reads or writes errno
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <termios.h>

#include "ncri_plan.h"
#include "sys.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#define MOUNT_ATTR__ATIME 0x00000070
#define MOUNT_ATTR_RELATIME 0x00000000
#define MOUNT_ATTR_NOATIME 0x00000010
#define MOUNT_ATTR_STRICTATIME 0x00000020
#define MOUNT_ATTR_NODIRATIME 0x00000080
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace {

using ncri::ChildFrame;
using ncri::ChildPlan;
using ncri::sys::L;
using ncri::sys::raw;
using namespace ncri;

size_t Slen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

bool HasSlash(const char *s) {
  for (; *s; s++)
    if (*s == '/') return true;
  return false;
}

long SendFrame(const ChildPlan *p, uint32_t kind, uint32_t step, long err, const void *path,
                int64_t value) {
  ChildFrame f = ncri_make_frame(kind, step, err, ncri_plan_offset(path), value);
  return raw(SYS_sendto, p->sync_fd, L(&f), sizeof f, MSG_NOSIGNAL, 0, 0);
}

[[noreturn]] void Die(long code) {
  for (;;) raw(SYS_exit_group, code);
}

[[noreturn]] void Fail(const ChildPlan *p, uint32_t step, long err, const void *path) {
  SendFrame(p, kFrameError, step, err, path, 0);
  Die(127);
}

#define CHECK(expr, step, path)                  \
  do {                                           \
    long r_ = (expr);                            \
    if (r_ < 0) Fail(p, (step), r_, (path));     \
  } while (0)

// Kernel layout of struct sigaction for rt_sigaction on x86_64.
struct KernelSigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

void ResetSignals() {
  KernelSigaction sa;
  sa.handler = nullptr;  // SIG_DFL
  sa.flags = 0;
  sa.restorer = nullptr;
  sa.mask = 0;
  for (int s = 1; s <= 64; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    raw(SYS_rt_sigaction, s, L(&sa), 0, 8);
  }
  uint64_t empty = 0;
  raw(SYS_rt_sigprocmask, SIG_SETMASK, L(&empty), 0, 8);
}

// Close every fd >= 3 that is not in the (sorted) keep list.
void CloseOthers(const ChildPlan *p) {
  unsigned int next = 3;
  for (int i = 0; i < p->n_keep_fds; i++) {
    unsigned int fd = (unsigned int)p->keep_fds[i];
    if (fd < next) continue;
    if (fd > next) raw(SYS_close_range, next, fd - 1, 0);
    next = fd + 1;
  }
  raw(SYS_close_range, next, ~0U, 0);
}

// The mount flags that a bind remount must carry over (they may be locked in a user ns).
uint64_t KeptFlags(const char *path) {
  struct statfs s;
  if (raw(SYS_statfs, L(path), L(&s)) < 0) return 0;
  return (uint64_t)s.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
}

void WriteFile(const ChildPlan *p, const char *path, const char *value, size_t len, uint32_t step) {
  long fd = raw(SYS_openat, AT_FDCWD, L(path), O_WRONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (fd < 0) Fail(p, step, fd, path);
  long r = raw(SYS_write, fd, L(value), len);
  raw(SYS_close, fd);
  if (r < 0) Fail(p, step, r, path);
}

void SetupStdio(const ChildPlan *p) {
  CHECK(raw(SYS_setsid), kStepSetsid, nullptr);
  for (int i = 0; i < 3; i++) {
    if (p->stdio[i] == i) {
      // Already in place (adopted fd): make sure it survives exec.
      raw(SYS_fcntl, i, F_SETFD, 0);
      continue;
    }
    CHECK(raw(SYS_dup3, p->stdio[i], i, 0), kStepStdio, nullptr);
  }
  // A terminal's stdio is /dev/null until OpenConsole puts the container's pty there.
}

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
constexpr long kDevptsSuperMagic = 0x1cd1;

// A frame with one fd attached (SCM_RIGHTS), as runc's SendRawFd and crun's
// send_fd_to_socket pass the pty master. Returns what sendmsg returned.
long SendFrameWithFds(const ChildPlan *p, const ChildFrame &frame, long fd, int copies) {
  ChildFrame f = frame;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * 2)];
  } control;
  for (size_t i = 0; i < sizeof control.buf; i++) control.buf[i] = 0;
  control.h.cmsg_level = SOL_SOCKET;
  control.h.cmsg_type = SCM_RIGHTS;
  control.h.cmsg_len = CMSG_LEN(sizeof(int) * copies);
  for (int i = 0; i < copies; i++) reinterpret_cast<int *>(CMSG_DATA(&control.h))[i] = (int)fd;
  struct iovec iov;
  iov.iov_base = &f;
  iov.iov_len = sizeof f;
  struct msghdr msg;
  msg.msg_name = nullptr;
  msg.msg_namelen = 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * copies);
  msg.msg_flags = 0;
  return raw(SYS_sendmsg, p->sync_fd, L(&msg), MSG_NOSIGNAL);
}

long SendFrameWithFd(const ChildPlan *p, const ChildFrame &frame, long fd) {
  return SendFrameWithFds(p, frame, fd, 1);
}

// Passes the pty master to the parent.
void SendConsole(const ChildPlan *p, long master) {
  CHECK(SendFrameWithFd(p, ncri_make_frame(kFrameTerminal, kStepSendConsole, 0, 0, 0), master), kStepSendConsole,
        nullptr);
}

// The container's own pty (runc's setupConsole, crun's terminal.c): /dev/ptmx opened once
// we are inside (after pivot_root, or after joining an exec target's mount namespace), so
// that the pty lives in the container's devpts instance, not the daemon's. Checked to be a
// devpts ptmx (an exec target's /dev is the container's to change); the slave comes from
// TIOCGPTPEER (no path lookup), becomes stdio and the controlling terminal, and the
// master goes to the parent.
void OpenConsole(const ChildPlan *p) {
  static const char kPtmx[] = "/dev/ptmx";
  long master = raw(SYS_openat, AT_FDCWD, L(kPtmx), O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
  if (master < 0) Fail(p, kStepConsole, master, nullptr);
  struct statfs sf;
  long r = raw(SYS_fstatfs, master, L(&sf));
  if (r < 0) Fail(p, kStepConsole, r, nullptr);
  if (sf.f_type != kDevptsSuperMagic) Fail(p, kStepConsole, -ENOTTY, nullptr);
  int unlock = 0;
  CHECK(raw(SYS_ioctl, master, TIOCSPTLCK, L(&unlock)), kStepConsole, nullptr);
  long slave = raw(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) Fail(p, kStepConsole, slave, nullptr);
  for (int i = 0; i < 3; i++) CHECK(raw(SYS_dup3, slave, i, 0), kStepStdio, nullptr);
  raw(SYS_close, slave);
  CHECK(raw(SYS_ioctl, 0, TIOCSCTTY, 0), kStepControllingTty, nullptr);
  SendConsole(p, master);
  raw(SYS_close, master);
}

// After unshare(CLONE_NEWUSER): the parent writes our id maps, then we become the
// namespace's root. We are still host root, which the new namespace does not map: files we
// create on filesystems it owns (the /dev tmpfs) would be EOVERFLOW. The switch *to* the
// namespace's root keeps our capabilities (runc does the same).
void WaitIdMaps(const ChildPlan *p) {
  SendFrame(p, kFrameIdMaps, kStepWaitIdMaps, 0, nullptr, 0);
  char c = 0;
  long r = raw(SYS_recvfrom, p->sync_fd, L(&c), 1, 0, 0, 0);
  if (r == 0) Die(1);  // the parent gave up
  if (r < 0 || c != kMsgIdMapsWritten) Fail(p, kStepWaitIdMaps, r < 0 ? r : -EPROTO, nullptr);
  CHECK(raw(SYS_setresgid, 0, 0, 0), kStepSetgid, nullptr);
  CHECK(raw(SYS_setresuid, 0, 0, 0), kStepSetuid, nullptr);
}

void Join(const ChildPlan *p) {
  for (int i = 0; i < p->n_cgroup_fds; i++) {
    long r = raw(SYS_write, p->cgroup_fds[i], L("0"), 1);
    if (r < 0) Fail(p, kStepCgroup, r, p->cgroup_paths[i]);
    raw(SYS_close, p->cgroup_fds[i]);
  }
  for (int i = 0; i < p->n_join_ns; i++) {
    CHECK(raw(SYS_setns, p->join_ns[i].fd, p->join_ns[i].nstype), kStepSetns, p->join_ns[i].path);
    raw(SYS_close, p->join_ns[i].fd);
  }
  if (p->unshare_flags) CHECK(raw(SYS_unshare, p->unshare_flags), kStepUnshare, nullptr);
  if (p->flags & kPlanWaitIdMaps) WaitIdMaps(p);
}

void SetOomScoreAdj(const ChildPlan *p) {
  static const char kPath[] = "/proc/self/oom_score_adj";
  long fd = raw(SYS_openat, AT_FDCWD, L(kPath), O_WRONLY | O_CLOEXEC, 0);
  if (fd < 0) Fail(p, kStepOomScoreAdj, fd, p->oom_score_adj);
  long r = raw(SYS_write, fd, L(p->oom_score_adj), Slen(p->oom_score_adj));
  if (r < 0 && (r == -EACCES || r == -EPERM) && p->oom_score_adj[0] == '-') {
    // Lowering oom_score_adj needs CAP_SYS_RESOURCE. Like containerd's
    // restrict_oom_score_adj: clamp to 0 and tell the parent, rather than fail.
    SendFrame(p, kFrameWarning, kStepOomScoreAdj, r, p->oom_score_adj, 0);
    raw(SYS_write, fd, L("0"), 1);
    r = 0;
  }
  raw(SYS_close, fd);
  if (r < 0) Fail(p, kStepOomScoreAdj, r, p->oom_score_adj);
}

// Kernel struct open_how for openat2.
struct OpenHow {
  uint64_t flags, mode, resolve;
};
constexpr uint64_t kResolveNoMagiclinks = 0x02;
constexpr uint64_t kResolveInRoot = 0x10;

// openat2(rootfd, rel, O_PATH) with symlinks resolved as if rootfd were "/": an image's
// symlinks can never lead us out of its rootfs.
long OpenInRoot(int rootfd, const char *rel) {
  OpenHow how;
  how.flags = O_PATH | O_CLOEXEC;
  how.mode = 0;
  how.resolve = kResolveInRoot | kResolveNoMagiclinks;
  return raw(SYS_openat2, rootfd, L(rel), L(&how), sizeof how);
}

// "/proc/self/fd/<fd>": mount(2) follows it to exactly the inode we resolved.
void FdPath(char out[32], long fd) {
  const char prefix[] = "/proc/self/fd/";
  size_t k = 0;
  for (size_t i = 0; prefix[i]; i++) out[k++] = prefix[i];
  char digits[12];
  int n = 0;
  do {
    digits[n++] = (char)('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  while (n > 0) out[k++] = digits[--n];
  out[k] = '\0';
}

enum Create { kNoCreate, kCreateDir, kCreateFile };

// Opens `rel` inside the rootfs (O_PATH), creating missing components (directories, and
// the last one as `last`) relative to already-resolved parents, never through a path walk
// that could follow a symlink outside.
long ResolveInRoot(const ChildPlan *p, int rootfd, const char *rel, Create last, uint32_t step, const char *report,
                     int depth = 0) {
  long fd = OpenInRoot(rootfd, rel);
  if (fd != -ENOENT || last == kNoCreate) {
    if (fd < 0) Fail(p, step, fd, report);
    return fd;
  }
  if (depth > 8) Fail(p, step, -ELOOP, report);  // bounded: each level holds a 4 KiB path buffer on the stack
  char buf[4096];
  size_t n = Slen(rel);
  if (n >= sizeof buf) Fail(p, step, -ENAMETOOLONG, report);
  for (size_t i = 0; i <= n; i++) buf[i] = rel[i];
  size_t name_start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    bool is_last = i == n;
    buf[i] = '\0';
    if (i > name_start) {
      long cur = OpenInRoot(rootfd, buf);
      if (cur == -ENOENT) {
        long parent;
        if (name_start == 0) {
          parent = raw(SYS_fcntl, rootfd, F_DUPFD_CLOEXEC, 3);
        } else {
          buf[name_start - 1] = '\0';
          parent = OpenInRoot(rootfd, buf);
          buf[name_start - 1] = '/';
        }
        if (parent < 0) Fail(p, step, parent, report);
        const char *name = buf + name_start;
        long r;
        if (is_last && last == kCreateFile) {
          r = raw(SYS_openat, parent, L(name), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
          if (r >= 0) raw(SYS_close, r);
        } else {
          r = raw(SYS_mkdirat, parent, L(name), 0755);
        }
        if (r == -EEXIST && OpenInRoot(rootfd, buf) == -ENOENT) {
          // A dangling symlink (an image's /dev -> /somewhere): follow it inside the root,
          // i.e. continue with <prefix>/<link target>/<rest of rel>.
          char next[4096];
          long len = raw(SYS_readlinkat, parent, L(name), L(next), sizeof next - 1);
          raw(SYS_close, parent);
          if (len < 0) Fail(p, step, len, report);
          next[len] = '\0';
          char joined[4096];
          size_t k = 0;
          if (next[0] != '/')
            for (size_t j = 0; j < name_start; j++) joined[k++] = buf[j];
          for (long j = 0; j < len && k < sizeof joined - 1; j++) joined[k++] = next[j];
          if (!is_last)
            for (size_t j = i; j < n && k < sizeof joined - 1; j++) joined[k++] = rel[j];
          if (k >= sizeof joined - 1) Fail(p, step, -ENAMETOOLONG, report);
          joined[k] = '\0';
          const char *rest = joined;
          while (*rest == '/') rest++;
          return ResolveInRoot(p, rootfd, *rest ? rest : ".", last, step, report, depth + 1);
        }
        raw(SYS_close, parent);
        if (r < 0 && r != -EEXIST) Fail(p, step, r, report);
        cur = OpenInRoot(rootfd, buf);
      }
      if (cur < 0) Fail(p, step, cur, report);
      if (is_last) return cur;
      raw(SYS_close, cur);
    }
    if (!is_last) buf[i] = '/';
    name_start = i + 1;
  }
  Fail(p, step, -ENOENT, report);
}

// Splits rel into its parent (resolved and created in root) and its last component.
long ParentInRoot(const ChildPlan *p, int rootfd, const char *rel, const char **name, uint32_t step, const char *report) {
  char buf[4096];
  size_t n = Slen(rel);
  if (n >= sizeof buf) Fail(p, step, -ENAMETOOLONG, report);
  size_t slash = n;
  for (size_t i = 0; i < n; i++)
    if (rel[i] == '/') slash = i;
  if (slash == n) {
    *name = rel;
    long fd = raw(SYS_fcntl, rootfd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) Fail(p, step, fd, report);
    return fd;
  }
  for (size_t i = 0; i < slash; i++) buf[i] = rel[i];
  buf[slash] = '\0';
  *name = rel + slash + 1;
  return ResolveInRoot(p, rootfd, buf, kCreateDir, step, report);
}

// Kernel struct mount_attr for mount_setattr.
struct MountAttr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

// Sets the MS_* flags of a bind (ro, nosuid, nodev, noexec, atime) on the mount `mfd`
// itself, top mount only (what a MS_REMOUNT|MS_BIND pass did), as crun's
// get_mount_attr_flags/do_mount_setattr. Only sets: flags the mount already has (locked
// ones in a user namespace) stay.
long SetMountFlags(long mfd, uint64_t ms) {
  MountAttr a{};
  if (ms & MS_RDONLY) a.attr_set |= MOUNT_ATTR_RDONLY;
  if (ms & MS_NOSUID) a.attr_set |= MOUNT_ATTR_NOSUID;
  if (ms & MS_NODEV) a.attr_set |= MOUNT_ATTR_NODEV;
  if (ms & MS_NOEXEC) a.attr_set |= MOUNT_ATTR_NOEXEC;
  if (ms & MS_NODIRATIME) a.attr_set |= MOUNT_ATTR_NODIRATIME;
  uint64_t atime = ms & MS_NOATIME ? MOUNT_ATTR_NOATIME : ms & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME : ms & MS_RELATIME ? MOUNT_ATTR_RELATIME : ~0ULL;
  if (atime != ~0ULL) {
    a.attr_clr |= MOUNT_ATTR__ATIME;  // the atime mode is one value: replace it
    a.attr_set |= atime;
  }
  if (a.attr_set == 0 && a.attr_clr == 0) return 0;
  return raw(SYS_mount_setattr, mfd, L(""), AT_EMPTY_PATH, L(&a), sizeof a);
}

// MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (|MS_REC) on the mount `mfd` itself.
long SetMountPropagation(long mfd, uint64_t propagation) {
  MountAttr a{};
  a.propagation = propagation & (MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE);
  return raw(SYS_mount_setattr, mfd, L(""), AT_EMPTY_PATH | ((propagation & MS_REC) ? AT_RECURSIVE : 0), L(&a), sizeof a);
}

// A bind mount made on the mount itself, never on a path twice (crun's get_bind_mount and
// fs_move_mount_to): clone the source tree detached (open_tree), set its flags on the
// clone, attach it onto the already-resolved target fd (move_mount), then set the
// propagation through the same mount fd. A path component swapped after the target was
// resolved (a shared volume) cannot redirect any of it.
void BindOnFd(const ChildPlan *p, const PlanMount &m, long target) {
  unsigned tree_flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((m.flags & MS_REC) ? AT_RECURSIVE : 0);
  long tree = raw(SYS_open_tree, AT_FDCWD, L(m.source), tree_flags);
  if (tree < 0) Fail(p, kStepMount, tree, m.target);
  if (m.remount) {
    long r = SetMountFlags(tree, m.remount);
    if (r < 0) Fail(p, kStepMountRemount, r, m.target);
  }
  long r = raw(SYS_move_mount, tree, L(""), target, L(""), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  if (r < 0) Fail(p, kStepMount, r, m.target);
  if (m.propagation) {
    r = SetMountPropagation(tree, m.propagation);
    if (r < 0) Fail(p, kStepMountPropagation, r, m.target);
  }
  raw(SYS_close, tree);
}

void BuildRootfs(const ChildPlan *p) {
  const char *root = p->rootfs;
  CHECK(raw(SYS_mount, 0, L("/"), 0, p->root_propagation, 0), kStepRootPropagation, root);
  // pivot_root refuses a new root, or a parent of it, that is shared. With a shared root
  // propagation (bidirectional mounts), keep the rootfs mount itself private (a rootfs that
  // is not a mount point has nothing to change: EINVAL); the mounts made inside it keep
  // their own propagation, which is what carries mounts between host and container.
  if (p->root_propagation & MS_SHARED) {
    long r = raw(SYS_mount, 0, L(root), 0, MS_PRIVATE, 0);
    if (r < 0 && r != -EINVAL) Fail(p, kStepRootPropagation, r, root);
  }
  // pivot_root needs the new root to be a mount point.
  CHECK(raw(SYS_mount, L(root), L(root), 0, MS_BIND | MS_REC, 0), kStepRootBind, root);
  long rootfd = raw(SYS_openat, AT_FDCWD, L(root), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (rootfd < 0) Fail(p, kStepRootBind, rootfd, root);
  char where[32];

  for (int i = 0; i < p->n_mounts; i++) {
    const PlanMount &m = p->mounts[i];
    long fd = ResolveInRoot(p, rootfd, m.rel, m.target_is_dir ? kCreateDir : kCreateFile, kStepMountPoint, m.target);
    if (m.flags & MS_BIND) {
      BindOnFd(p, m, fd);
      raw(SYS_close, fd);
      continue;
    }
    FdPath(where, fd);
    long r = raw(SYS_mount, L(m.source), L(where), L(m.fstype), m.flags, L(m.data));
    raw(SYS_close, fd);
    if (r < 0) Fail(p, kStepMount, r, m.target);
    if (m.remount || m.propagation) {
      // A filesystem (not a bind) with a propagation: only binds carry flags or a
      // propagation in our specs; for others re-resolve (the old fd names the directory
      // under the new mount, not the mount).
      fd = ResolveInRoot(p, rootfd, m.rel, kNoCreate, kStepMountRemount, m.target);
      FdPath(where, fd);
      if (m.remount) {
        uint64_t f = MS_REMOUNT | MS_BIND | m.remount | KeptFlags(where);
        r = raw(SYS_mount, 0, L(where), 0, f, 0);
        if (r < 0) Fail(p, kStepMountRemount, r, m.target);
      }
      if (m.propagation) {
        r = raw(SYS_mount, 0, L(where), 0, m.propagation, 0);
        if (r < 0) Fail(p, kStepMountPropagation, r, m.target);
      }
      raw(SYS_close, fd);
    }
  }

  for (int i = 0; i < p->n_devices; i++) {
    const PlanDevice &d = p->devices[i];
    const char *name;
    long dir = ParentInRoot(p, rootfd, d.rel, &name, kStepDevice, d.target);
    // Replace whatever is there (an image's file or symlink: unlinkat does not follow).
    raw(SYS_unlinkat, dir, L(name), 0);
    long r = raw(SYS_mknodat, dir, L(name), d.mode, d.dev);
    if (r == -EPERM && d.host_path) {
      // In a user namespace mknod is refused: bind the host's node onto an empty file.
      long f = raw(SYS_openat, dir, L(name), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
      if (f < 0) Fail(p, kStepDevice, f, d.target);
      raw(SYS_close, f);
      long fd = ResolveInRoot(p, rootfd, d.rel, kNoCreate, kStepDevice, d.target);
      FdPath(where, fd);
      r = raw(SYS_mount, L(d.host_path), L(where), 0, MS_BIND, 0);
      raw(SYS_close, fd);
    } else if (r == 0) {
      r = raw(SYS_fchownat, dir, L(name), d.uid, d.gid, AT_SYMLINK_NOFOLLOW);
    }
    raw(SYS_close, dir);
    if (r < 0) Fail(p, kStepDevice, r, d.target);
  }

  for (int i = 0; i < p->n_symlinks; i++) {
    const char *name;
    long dir = ParentInRoot(p, rootfd, p->symlinks[i].rel, &name, kStepSymlink, p->symlinks[i].linkpath);
    long r = raw(SYS_symlinkat, L(p->symlinks[i].target), dir, L(name));
    raw(SYS_close, dir);
    if (r < 0 && r != -EEXIST) Fail(p, kStepSymlink, r, p->symlinks[i].linkpath);
  }
  raw(SYS_close, rootfd);

  // The mask source: a detached clone of the /dev/null mount of the namespace we started
  // in (the runtime's, before pivot_root takes it away), put at the fd number the parent
  // reserved. A clone must be made in our own mount namespace (the parent's fd is of its
  // namespace, which open_tree refuses), and detached it survives the old root's detach.
  if (p->devnull_fd >= 0) {
    long tree = raw(SYS_open_tree, p->devnull_fd, L(""), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree == -EINVAL) tree = raw(SYS_open_tree, AT_FDCWD, L("/dev/null"), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) Fail(p, kStepMaskSource, tree, nullptr);
    CHECK(raw(SYS_dup3, tree, p->devnull_fd, O_CLOEXEC), kStepMaskSource, nullptr);
    raw(SYS_close, tree);
  }
}

void Pivot(const ChildPlan *p) {
  bool shared = (p->root_propagation & MS_SHARED) != 0;
  CHECK(raw(SYS_chdir, L(p->rootfs)), kStepPivotRoot, p->rootfs);
  // The current root's mount must not be shared either (it is the old root's parent).
  if (shared) CHECK(raw(SYS_mount, 0, L("/"), 0, MS_PRIVATE, 0), kStepRootPropagation, "/");
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it then
  // removes it without needing a put_old directory inside the rootfs. It is held by fd
  // first: after the pivot "." may name either (runc's pivotRoot fchdirs to it likewise).
  long oldroot = raw(SYS_openat, AT_FDCWD, L("/"), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (oldroot < 0) Fail(p, kStepPivotRoot, oldroot, "/");
  CHECK(raw(SYS_pivot_root, L("."), L(".")), kStepPivotRoot, p->rootfs);
  CHECK(raw(SYS_fchdir, oldroot), kStepPivotRoot, "/");
  raw(SYS_close, oldroot);
  // The old root still holds copies of the host's mounts, in the host's peer groups
  // wherever the host's are shared: detaching it as is would propagate the umount and take
  // host mounts away (kubelet's secret tmpfs, other rootfs, our own pins). Make it a slave
  // first (runc's pivotRoot: rslave rather than rprivate), so nothing we do to it reaches
  // the host.
  CHECK(raw(SYS_mount, 0, L("."), 0, MS_SLAVE | MS_REC, 0), kStepDetachOldRoot, p->rootfs);
  CHECK(raw(SYS_umount2, L("."), MNT_DETACH), kStepDetachOldRoot, p->rootfs);
  CHECK(raw(SYS_chdir, L("/")), kStepPivotRoot, p->rootfs);
  // Now the container's root can be shared as asked.
  if (shared) CHECK(raw(SYS_mount, 0, L("/"), 0, MS_SHARED, 0), kStepRootPropagation, "/");
}

void MaskAndProtect(const ChildPlan *p) {
  // Files are masked with the runtime's /dev/null (never the container's, which an image,
  // a volume or a device entry may have made something else): the detached clone made
  // before pivot_root goes onto the first masked file, and each further one gets a clone
  // of that (now attached) mount; all through fds, resolving each path once.
  long null_mount = p->devnull_fd;
  bool null_attached = false;
  for (int i = 0; i < p->n_masked; i++) {
    const char *path = p->masked_paths[i];
    long fd = raw(SYS_openat, AT_FDCWD, L(path), O_PATH | O_CLOEXEC, 0);
    if (fd == -ENOENT) continue;
    if (fd < 0) Fail(p, kStepMaskPath, fd, path);
    struct stat st;
    long r = raw(SYS_newfstatat, fd, L(""), L(&st), AT_EMPTY_PATH);
    if (r < 0) Fail(p, kStepMaskPath, r, path);
    if (S_ISDIR(st.st_mode)) {
      char where[32];
      FdPath(where, fd);
      r = raw(SYS_mount, L("tmpfs"), L(where), L("tmpfs"), MS_RDONLY, 0);
    } else if (null_mount < 0) {
      r = raw(SYS_mount, L("/dev/null"), L(path), 0, MS_BIND, 0);  // no rootfs of ours: cannot happen
    } else {
      long src = null_mount;
      if (null_attached) {
        src = raw(SYS_open_tree, null_mount, L(""), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (src < 0) Fail(p, kStepMaskPath, src, path);
      }
      r = raw(SYS_move_mount, src, L(""), fd, L(""), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
      if (src != null_mount) raw(SYS_close, src);
      null_attached = true;
    }
    raw(SYS_close, fd);
    if (r < 0) Fail(p, kStepMaskPath, r, path);
  }
  if (null_mount >= 0) raw(SYS_close, null_mount);
  for (int i = 0; i < p->n_readonly; i++) {
    // Resolved once: a read-only clone of the tree there goes on top of that same place.
    const char *path = p->readonly_paths[i];
    long fd = raw(SYS_openat, AT_FDCWD, L(path), O_PATH | O_CLOEXEC, 0);
    if (fd == -ENOENT) continue;
    if (fd < 0) Fail(p, kStepReadonlyPath, fd, path);
    long tree = raw(SYS_open_tree, fd, L(""), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0) Fail(p, kStepReadonlyPath, tree, path);
    CHECK(SetMountFlags(tree, MS_RDONLY), kStepReadonlyPath, path);
    CHECK(raw(SYS_move_mount, tree, L(""), fd, L(""), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), kStepReadonlyPath, path);
    raw(SYS_close, tree);
    raw(SYS_close, fd);
  }
  if (p->flags & kPlanRootReadonly) {
    uint64_t f = MS_BIND | MS_REMOUNT | MS_RDONLY | KeptFlags("/");
    CHECK(raw(SYS_mount, 0, L("/"), 0, f, 0), kStepReadonlyRoot, p->rootfs);
  }
}

struct CapHeader {
  uint32_t version;
  int pid;
};
struct CapData {
  uint32_t effective, permitted, inheritable;
};

void ApplySeccomp(const ChildPlan *p) {
  sock_fprog prog;
  prog.len = p->seccomp_len;
  prog.filter = const_cast<sock_filter *>(p->seccomp_filter);
  CHECK(raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, L(&prog)), kStepSeccomp, nullptr);
}

// Whether the effective set still holds CAP_SYS_ADMIN after SetIdentity: with a
// capability spec, as asked; without one, the kernel keeps them only for uid 0.
bool KeepsSysAdmin(const ChildPlan *p) {
  if (p->flags & kPlanHasCaps) return (p->cap_effective & (1ULL << CAP_SYS_ADMIN)) != 0;
  return p->uid == 0;
}

// Identity and capabilities (runc's order): drop the bounding set while we still hold
// CAP_SETPCAP, keep permitted caps across the uid change, then set the exact sets and the
// ambient set. Without a capability spec the kernel rules apply unchanged.
void SetIdentity(const ChildPlan *p) {
  bool caps = (p->flags & kPlanHasCaps) != 0;
  if (caps) {
    for (int c = 0; c <= p->cap_last_cap; c++) {
      if (p->cap_bounding & (1ULL << c)) continue;
      long r = raw(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
      if (r < 0 && r != -EINVAL) Fail(p, kStepBoundingSet, r, nullptr);
    }
    CHECK(raw(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0), kStepKeepCaps, nullptr);
  }
  // The terminal is the process's own (runc's fixStdioPermissions): chown it while we
  // still may.
  if (p->flags & kPlanTerminal) CHECK(raw(SYS_fchown, 0, p->uid, p->gid), kStepConsole, nullptr);
  // (uid_t)-1 means "leave unchanged" to setres[ug]id: the process would stay root.
  if (p->gid == 0xFFFFFFFFu) Fail(p, kStepSetgid, -EINVAL, nullptr);
  if (p->uid == 0xFFFFFFFFu) Fail(p, kStepSetuid, -EINVAL, nullptr);
  CHECK(raw(SYS_setgroups, p->n_groups, L(p->groups)), kStepSetgroups, nullptr);
  CHECK(raw(SYS_setresgid, p->gid, p->gid, p->gid), kStepSetgid, nullptr);
  CHECK(raw(SYS_setresuid, p->uid, p->uid, p->uid), kStepSetuid, nullptr);
  if (caps) {
    CHECK(raw(SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0), kStepKeepCaps, nullptr);
    CapHeader h;
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = 0;
    CapData d[2];
    d[0].effective = (uint32_t)p->cap_effective;
    d[1].effective = (uint32_t)(p->cap_effective >> 32);
    d[0].permitted = (uint32_t)p->cap_permitted;
    d[1].permitted = (uint32_t)(p->cap_permitted >> 32);
    d[0].inheritable = (uint32_t)p->cap_inheritable;
    d[1].inheritable = (uint32_t)(p->cap_inheritable >> 32);
    CHECK(raw(SYS_capset, L(&h), L(d)), kStepCapset, nullptr);
    raw(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int c = 0; c <= p->cap_last_cap; c++) {
      if (!(p->cap_ambient & (1ULL << c))) continue;
      CHECK(raw(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0), kStepAmbientCaps, nullptr);
    }
  }
}

bool IsExecutable(const char *path, long *err) {
  struct stat st;
  long r = raw(SYS_newfstatat, AT_FDCWD, L(path), L(&st), 0);
  if (r == 0 && !S_ISREG(st.st_mode)) r = -EACCES;
  if (r == 0) r = raw(SYS_faccessat, AT_FDCWD, L(path), X_OK, 0);
  *err = r;
  return r == 0;
}

// execvp's search, without allocation: fills `out` with the path to exec and returns 0, or
// returns the -errno that execvp would fail with (ENOENT, EACCES, ENAMETOOLONG).
long ResolveExec(const ChildPlan *p, char *out, size_t cap) {
  const char *name = p->exec_name;
  size_t nlen = Slen(name);
  long err = -ENOENT;
  if (nlen == 0) return -ENOENT;
  if (HasSlash(name)) {
    if (nlen >= cap) return -ENAMETOOLONG;
    for (size_t i = 0; i <= nlen; i++) out[i] = name[i];
    return IsExecutable(out, &err) ? 0 : err;
  }
  long last = -ENOENT;
  for (int d = 0; d < p->n_exec_dirs; d++) {
    const char *dir = p->exec_dirs[d];
    size_t dlen = Slen(dir);
    if (dlen + 1 + nlen >= cap) continue;
    size_t k = 0;
    for (size_t i = 0; i < dlen; i++) out[k++] = dir[i];
    if (k == 0 || out[k - 1] != '/') out[k++] = '/';
    for (size_t i = 0; i <= nlen; i++) out[k++] = name[i];
    if (IsExecutable(out, &err)) return 0;
    if (err == -EACCES) last = err;  // like execvp: remember a permission problem
  }
  return last;
}

[[noreturn]] void Run(const ChildPlan *p, bool joined) {
  raw(SYS_umask, 0);  // device nodes and mount points get exactly the modes we ask for
  SetupStdio(p);
  if (!joined) Join(p);

  // Host /proc is still visible: per-namespace sysctls and our oom_score_adj go through it.
  for (int i = 0; i < p->n_sysctls; i++)
    WriteFile(p, p->sysctls[i].path, p->sysctls[i].value, p->sysctls[i].value_len, kStepSysctl);
  if (p->flags & kPlanHasOom) SetOomScoreAdj(p);

  if (p->rootfs) {
    BuildRootfs(p);
    Pivot(p);
    MaskAndProtect(p);
  }
  if (p->flags & kPlanTerminal) OpenConsole(p);
  if (p->hostname) CHECK(raw(SYS_sethostname, L(p->hostname), Slen(p->hostname)), kStepHostname, p->hostname);
  if (p->domainname)
    CHECK(raw(SYS_setdomainname, L(p->domainname), Slen(p->domainname)), kStepDomainname, p->domainname);

  for (int i = 0; i < p->n_rlimits; i++) {
    uint64_t lim[2] = {p->rlimits[i].soft, p->rlimits[i].hard};
    CHECK(raw(SYS_prlimit64, 0, p->rlimits[i].resource, L(lim), 0), kStepRlimit, nullptr);
  }

  bool nnp = (p->flags & kPlanNoNewPrivs) != 0;
  // Seccomp goes last, right before execve, so that the profile only has to allow what the
  // container's own program does (runc's standard_init_linux.go: "as close to execve as
  // possible"). Loading a filter needs no_new_privs or CAP_SYS_ADMIN in the effective set.
  // Without no_new_privs and without CAP_SYS_ADMIN once the identity is set, it must be
  // loaded while we still hold it, before the identity change: then, as with runc, the
  // profile must also allow the identity steps and the handshake that follow.
  bool late_seccomp = p->seccomp_filter && (nnp || KeepsSysAdmin(p));
  if (p->seccomp_filter && !late_seccomp) ApplySeccomp(p);
  SetIdentity(p);
  if (nnp) CHECK(raw(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), kStepNoNewPrivs, nullptr);

  if (p->cwd) CHECK(raw(SYS_chdir, L(p->cwd)), kStepChdirCwd, p->cwd);
  char exe[4096];
  long exe_err = ResolveExec(p, exe, sizeof exe);

  SendFrame(p, kFrameReady, kStepReady, 0, nullptr, 0);
  char c = 0;
  long r = raw(SYS_recvfrom, p->sync_fd, L(&c), 1, 0, 0, 0);
  if (r == 0) Die(0);  // released without start (the parent aborted or died)
  if (r < 0 || c != kMsgStart) Fail(p, kStepWaitStart, r < 0 ? r : -EPROTO, nullptr);
  // A program that cannot be exec'd fails the start, not the setup: with containerd, runc's
  // lookup runs when StartContainer creates the task, so kubelet sees a StartError (exit
  // code 128) and backs off restarting it, rather than a CreateContainer error. The
  // lookup at setup may be older than the program (put there between create and start,
  // as runc, which looks it up at start, would find it): it is tried once more first.
  if (exe_err != 0) exe_err = ResolveExec(p, exe, sizeof exe);
  if (exe_err != 0) Fail(p, kStepResolveExec, exe_err, p->exec_name);

  raw(SYS_umask, p->umask);
  // Everything but stdio was opened O_CLOEXEC; make sure of it for anything inherited.
  raw(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  // A failure here still reaches the parent: the filter is not loaded when it fails, and
  // the start path reads the sync socket until EOF (a frame now fails StartContainer).
  if (late_seccomp) ApplySeccomp(p);
  r = raw(SYS_execve, L(exe), L(p->argv), L(p->envp));
  Fail(p, kStepExec, r, p->exec_name);
}

int InnerMain(void *arg) {
  // The real child of a double clone: the intermediate already joined and unshared. Speak
  // only once the parent holds our pidfd (its kMsgPidHeld byte, sent after it received the
  // intermediate's PID frame): our frames then follow that frame, and we never run a step
  // the parent could not kill us for or reap us after. EOF means the parent gave up.
  const ChildPlan *p = static_cast<const ChildPlan *>(arg);
  char c = 0;
  long r;
  while ((r = raw(SYS_recvfrom, p->sync_fd, L(&c), 1, 0, 0, 0)) == -EINTR) {
  }
  if (r == 0) Die(1);
  if (r < 0 || c != kMsgPidHeld) Fail(p, kStepWaitPidHeld, r < 0 ? r : -EPROTO, nullptr);
  Run(p, true);
}

}  // namespace

extern "C" int ncri_child_main(void *arg) {
  const ChildPlan *p = static_cast<const ChildPlan *>(arg);
  ResetSignals();
  CloseOthers(p);
  Run(p, false);
}

extern "C" int ncri_intermediate_main(void *arg) {
  const ChildPlan *p = static_cast<const ChildPlan *>(arg);
  ResetSignals();
  CloseOthers(p);
  Join(p);
  // The real child is the parent's child (CLONE_PARENT: its exit status goes to the parent,
  // which needs no subreaper), and its pidfd comes from the clone itself (CLONE_PIDFD): no
  // pid is ever looked up, so none can have been reused. runc's nsexec clones its stage 2
  // with CLONE_PARENT for the same reason and sends its pid; we send the pidfd, and the
  // child waits (InnerMain) until the parent says it holds it, so that the PID frame is
  // on the sync socket before any frame of the child's (one writer at a time). The one
  // window left: a SIGKILL of this process between the clone and the sendmsg (host root,
  // or the OOM killer or a kill of the container's cgroup, which we joined) leaves the
  // child ours but unknown to us. The parent watches our pidfd until the PID frame, fails
  // the spawn when we die without it, and the child exits at the sync socket's EOF: a
  // zombie nobody watches, in the container's PID namespace, which the stop of that
  // namespace's init reaps (reapStrays). runc has the same window (its shim, a subreaper,
  // reaps such strays).
  constexpr size_t kStack = 256 * 1024;
  long stack = raw(SYS_mmap, 0, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack < 0 && stack > -4096) Fail(p, kStepInnerClone, stack, nullptr);
  // No CLONE_VM: the real child gets a copy of this small process, plan included.
  int pidfd = -1;
  clone_args a;
  a.flags = CLONE_PARENT | CLONE_PIDFD | p->inner_clone_flags;
  a.pidfd = (uint64_t)(uintptr_t)&pidfd;
  a.child_tid = 0;
  a.parent_tid = 0;
  a.exit_signal = 0;  // CLONE_PARENT: the kernel uses our own exit signal (SIGCHLD)
  a.stack = (uint64_t)stack;
  a.stack_size = kStack;
  a.tls = 0;
  a.set_tid = 0;
  a.set_tid_size = 0;
  a.cgroup = 0;
  long pid = (p->flags & kPlanCloneFallback) ? -ENOSYS : ncri_clone3_run(&a, sizeof a, InnerMain, arg);
  if (pid == -ENOSYS) pid = ncri_clone_run(a.flags, (char *)stack + kStack, &pidfd, InnerMain, arg);
  if (pid < 0) Fail(p, kStepInnerClone, pid, nullptr);
  if (p->flags & kPlanTestKillIntermediate) raw(SYS_kill, raw(SYS_getpid), SIGKILL);
  // (Tests: a frame that names another pid, or that carries the pidfd twice.)
  ChildFrame f = ncri_make_frame(kFramePid, kStepInnerClone, 0, 0, (p->flags & kPlanTestPidFrameWrongPid) ? pid + 1 : pid);
  if (SendFrameWithFds(p, f, pidfd, (p->flags & kPlanTestPidFrameTwoFds) ? 2 : 1) != (long)sizeof f) {
    // The parent is gone or gave up: the child must not run unknown to it.
    raw(SYS_pidfd_send_signal, pidfd, SIGKILL, 0, 0);
    Die(1);
  }
  Die(0);
}
