// Parent side of the container clone.
//
// Where the clone runs: on a libuv pool thread (the N-API layer calls ncri_spawn_begin from
// an AsyncWorker), because creating namespaces (a network namespace especially) can take
// milliseconds, which must not stall the event loop when many containers start at once.
// The thread blocks all signals around the clone so that the child is born with every
// signal blocked and no parent handler can run in it before it resets dispositions; the
// thread's mask is restored right after. The wait for READY holds no thread: SpawnSetup is
// driven from the event loop, one non-blocking Step per readable sync socket (Rule 7).
//
// How: clone3 with CLONE_PIDFD|CLONE_VM|CLONE_VFORK and the new namespaces as clone flags.
// CLONE_VM|CLONE_VFORK is the pair glibc's posix_spawn clones with (the pidfd and the
// namespaces are ours): sharing the mm avoids copying the page tables of a large Node heap.
// The child shares our memory only until it has exec'd nodecri-init (native/child/
// exec_init.cc), which CLONE_VFORK makes this thread wait for; the init then works on its
// own copy of the plan, a block we lay out here with offsets for pointers (PlanBlock) and
// hand over in a memfd. So nothing a container can see ever shares the daemon's memory,
// and an oom_score_adj, setresuid or dumpable change in the child stays in the child.
// clone(2) is used only when clone3 is ENOSYS.
//
// Three stages, one function each: PlanSpawn resolves everything the child will do into
// the plan block and the fds it keeps (parent, before the clone), CloneStage0 clones (the
// child runs stage 0 on memory PlanSpawn prepared), and the handshake, SpawnSetup, reads
// the child's frames up to READY (parent, from the loop).
//
// Joining a PID namespace only affects children, so in that case (exec sessions, shared
// pod PID namespaces) the init is an intermediate that joins and unshares, clones the real
// child (a fork of the small init, never of us) with CLONE_PARENT|CLONE_PIDFD so that it
// is our child, passes us the clone's pidfd with its PID frame and exits; the real child
// waits until we say we hold that pidfd (kMsgPidHeld), so the frames on the sync socket are
// ordered and no step of the child runs before we can kill and reap it.
#include "spawn.h"

#include "process.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

namespace ncri {
namespace {

constexpr unsigned kMfdExec = 0x0010U;  // MFD_EXEC, Linux 6.3
constexpr int kSealExec = 0x0020;       // F_SEAL_EXEC, Linux 6.3
constexpr size_t kStage0StackSize = 64 * 1024;  // lazily committed: stage 0 touches one page
constexpr size_t kGuard = 4096;

// Same layout as the kernel's struct clone_args (linux/sched.h clashes with <sched.h>).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};


void *MapStack(size_t size) {
  void *p = mmap(nullptr, size + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mprotect(p, kGuard, PROT_NONE);  // overflow faults instead of scribbling over the heap
  return static_cast<char *>(p) + kGuard;
}

int WriteAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    data += n;
    size -= (size_t)n;
  }
  return 0;
}

// nodecri-init, copied once into a sealed memfd that every container clone execs: the
// program a container could reach through /proc/<pid>/exe is then a copy nobody can write
// (F_SEAL_WRITE), never a file on the host (runc's answer to CVE-2019-5736 is the same
// kind of sealed copy, libcontainer/exeseal). The binary sits beside the addon.
int InitBinaryFd(ncri_error *err) {
  static std::mutex lock;
  static int fd = -1;
  std::lock_guard<std::mutex> guard(lock);
  if (fd >= 0) return fd;
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void *>(&InitBinaryFd), &info) || !info.dli_fname)
    return ncri_fail(err, ENOENT, "dladdr", "find nodecri-init", "the addon's own path");
  std::string path = info.dli_fname;
  path = path.substr(0, path.rfind('/') + 1) + "nodecri-init";
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return ncri_fail_errno(err, "open", "find nodecri-init", path.c_str());
  // MFD_EXEC: with vm.memfd_noexec=1 (Linux 6.3+) a memfd is otherwise made unexecutable;
  // older kernels refuse the flag (EINVAL), and their memfds are executable anyway.
  int mfd = (int)syscall(SYS_memfd_create, "nodecri-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec);
  if (mfd < 0 && errno == EINVAL) mfd = (int)syscall(SYS_memfd_create, "nodecri-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) {
    int saved = errno;
    close(src);
    return ncri_fail(err, saved, "memfd_create", "copy nodecri-init", path.c_str());
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(src, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (n > 0 && WriteAll(mfd, buf, (size_t)n) < 0)) {
      int saved = errno;
      close(src);
      close(mfd);
      return ncri_fail(err, saved, n < 0 ? "read" : "write", "copy nodecri-init", path.c_str());
    }
    if (n == 0) break;
  }
  close(src);
  fcntl(mfd, F_ADD_SEALS, kSealExec);  // best effort: nobody may chmod it either (6.3+)
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
    int saved = errno;
    close(mfd);
    return ncri_fail(err, saved, "fcntl", "seal nodecri-init", path.c_str());
  }
  fd = mfd;
  return fd;
}

int PidfdSendSignal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0); }

int CapLastCap() {
  static int cached = -1;
  if (cached >= 0) return cached;
  int v = 40;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = 40;
    fclose(f);
  }
  cached = v;
  return v;
}

// "/dev/pts/" → "dev/pts"; "/" → "." (relative to the rootfs, for openat2).
std::string RelPath(const std::string &dest) {
  size_t i = 0;
  while (i < dest.size() && dest[i] == '/') i++;
  std::string rel = dest.substr(i);
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  return rel.empty() ? "." : rel;
}

std::string JoinPath(const std::string &root, const std::string &dest) {
  size_t i = 0;
  while (i < dest.size() && dest[i] == '/') i++;
  std::string out = root;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  out += '/';
  out += dest.substr(i);
  return out;
}

int WriteWhole(const std::string &path, const std::string &text, ncri_error *err, const char *step) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ncri_fail_errno(err, "open", step, path.c_str());
  ssize_t n = write(fd, text.data(), text.size());
  int saved = errno;
  close(fd);
  if (n != (ssize_t)text.size()) return ncri_fail(err, n < 0 ? saved : EIO, "write", step, path.c_str());
  return 0;
}

std::string MapText(const std::vector<SpawnRequest::IdMap> &maps) {
  std::string s;
  for (const auto &m : maps)
    s += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
  return s;
}

struct NsName {
  const char *name;
  int type;
};
// Join order: user first (it grants the capabilities for the rest), mnt last (paths of the
// other steps are host paths).
const NsName kNsOrder[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},
                           {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"cgroup", CLONE_NEWCGROUP},
                           {"mnt", CLONE_NEWNS}};

int NsRank(int type) {
  for (size_t i = 0; i < sizeof kNsOrder / sizeof kNsOrder[0]; i++)
    if (kNsOrder[i].type == type) return (int)i;
  return 100;
}

}  // namespace

PlanBlock::PlanBlock() : bytes_(sizeof(ChildPlan), 0) {}

uintptr_t PlanBlock::append(const void *data, size_t size) {
  size_t off = (bytes_.size() + 7) & ~(size_t)7;
  bytes_.resize(off + size);
  memcpy(bytes_.data() + off, data, size);
  return off;
}

const char *PlanBlock::str(const std::string &s) {
  uintptr_t off = append(s.c_str(), s.size() + 1);
  texts_.emplace(off, s);
  return reinterpret_cast<const char *>(off);
}

const char *const *PlanBlock::strings(const std::vector<const char *> &offsets, bool terminate) {
  std::vector<const char *> v = offsets;
  if (terminate) v.push_back(nullptr);
  return put(v);
}

const char *PlanBlock::text(uint64_t offset) const {
  auto it = texts_.find(offset);
  return it == texts_.end() ? nullptr : it->second.c_str();
}

int ncri_spawn_prepare(ncri_error *err) { return InitBinaryFd(err); }

void ncri_frame_error(const ChildFrame &f, const SpawnMemory *mem, ncri_error *err) {
  const char *path = mem && f.path ? mem->block.text(f.path) : nullptr;
  ncri_fail(err, f.err > 0 ? f.err : EPROTO, ncri_step_syscall(f.step), ncri_step_name(f.step), path);
}

namespace {

// A spawn planned and not yet cloned: the plan block (in memory, and in the memfd the init
// reads), the fds the child needs (closed in the parent right after the clone) and the
// parent's ends of them, and what stage 0 reads from our memory.
struct SpawnPlan {
  std::unique_ptr<SpawnMemory> memory = std::make_unique<SpawnMemory>();
  std::vector<Fd> child_fds;  // every fd the child keeps, the plan's memfd last
  Fd sync;                    // our end of the sync socket
  Fd stdio[3];                // our ends of stdio pipes
  uint64_t clone_namespaces = 0;  // CLONE_NEW* the clone itself creates
  bool intermediate = false;      // the init is the intermediate of a double clone
  bool force_clone_fallback = false;
  // Stage 0's arguments (ExecInitArgs points into these).
  int init_fd = -1;
  int child_sync = -1;
  std::vector<int32_t> exec_keep;
  std::string plan_fd_text;
};

// An fd the child keeps; returns it (or the -1 of a failed open, not kept).
int ChildKeeps(SpawnPlan *s, int fd) {
  if (fd >= 0) s->child_fds.emplace_back(fd);
  return fd;
}

// Stage 1: everything the child will do, resolved here (the child runs only async-signal-
// safe code on what this prepares): the flat ChildPlan, the fds it uses, the memfd with the
// block. Runs in the parent, before the clone; on failure every fd it opened is closed.
int PlanSpawn(SpawnRequest &r, SpawnPlan *s, ncri_error *err) {
  PlanBlock &b = s->memory->block;
  // Built here and copied to the block's offset 0 once complete (put() may move the block).
  ChildPlan p{};

  if (r.args.empty()) return ncri_fail(err, EINVAL, "execve", "check process args", "args is empty");
  if (!r.rootfs.empty() && !(r.new_namespaces & CLONE_NEWNS))
    return ncri_fail(err, EINVAL, "pivot_root", "check rootfs", "a rootfs needs a new mount namespace");
  s->init_fd = InitBinaryFd(err);
  if (s->init_fd < 0) return s->init_fd;

  if (r.has_seccomp) {
    std::vector<sock_filter> filter;
    uint32_t flags = 0;
    if (ncri_seccomp_compile(r.seccomp, &filter, &flags, err) < 0) return -err->err;
    p.seccomp_filter = b.put(filter);
    p.seccomp_len = (uint16_t)filter.size();
    p.seccomp_flags = flags;
  }

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ncri_fail_errno(err, "socketpair", "create sync socket", nullptr);
  s->sync.reset(sv[0]);
  s->child_sync = ChildKeeps(s, sv[1]);
  p.sync_fd = sv[1];

  // stdio, and the runtime's own /dev/null for masks (the container's /dev/null may be
  // anything by then): the child turns this fd into a detached clone of its mount.
  p.devnull_fd = -1;
  if (!r.rootfs.empty()) {
    p.devnull_fd = ChildKeeps(s, open("/dev/null", O_PATH | O_CLOEXEC));
    if (p.devnull_fd < 0) return ncri_fail_errno(err, "open", "open mask source", "/dev/null");
  }
  if (r.terminal) {
    // The pty is the container's own: the child opens /dev/ptmx in its devpts once it is
    // inside (runc's setupConsole, crun's terminal.c) and sends the master back before
    // READY (kFrameTerminal). Until then its stdio is /dev/null.
    int devnull = ChildKeeps(s, open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0) return ncri_fail_errno(err, "open", "open stdio", "/dev/null");
    for (int i = 0; i < 3; i++) p.stdio[i] = devnull;
  } else {
    int devnull = -1;
    for (int i = 0; i < 3; i++) {
      int mode = r.stdio[i];
      if (mode >= 0) {
        p.stdio[i] = mode;  // caller-owned
      } else if (mode == kStdioNull) {
        if (devnull < 0) devnull = ChildKeeps(s, open("/dev/null", O_RDWR | O_CLOEXEC));
        if (devnull < 0) return ncri_fail_errno(err, "open", "open stdio", "/dev/null");
        p.stdio[i] = devnull;
      } else {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) return ncri_fail_errno(err, "pipe2", "create stdio pipe", nullptr);
        // stdin: the child reads fds[0]; stdout/stderr: the child writes fds[1].
        int child_end = i == 0 ? fds[0] : fds[1];
        s->stdio[i].reset(i == 0 ? fds[1] : fds[0]);
        p.stdio[i] = ChildKeeps(s, child_end);
      }
    }
  }

  // cgroups: opened here, joined by the child writing "0" (works for v1 and v2).
  // TODO(cgroup v2): when the only paths are v2, pass the dir fd as CLONE_INTO_CGROUP.
  std::vector<int32_t> cgroup_fds;
  std::vector<const char *> cgroup_paths;
  for (const auto &path : r.cgroup_procs) {
    int fd = ChildKeeps(s, open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd < 0) return ncri_fail_errno(err, "open", "open cgroup.procs", path.c_str());
    cgroup_fds.push_back(fd);
    cgroup_paths.push_back(b.str(path));
  }
  p.cgroup_fds = b.put(cgroup_fds);
  p.cgroup_paths = b.strings(cgroup_paths, false);
  p.n_cgroup_fds = (int32_t)cgroup_fds.size();

  // Namespaces to join: the request's paths, or the exec target's namespaces that differ
  // from ours (entering our own user namespace again is EINVAL).
  std::vector<SpawnRequest::Join> joins = r.join_namespaces;
  if (r.target_pid > 0) {
    for (const auto &ns : kNsOrder) {
      std::string mine = std::string("/proc/self/ns/") + ns.name;
      std::string theirs = "/proc/" + std::to_string(r.target_pid) + "/ns/" + ns.name;
      struct stat sa, sb;
      if (stat(theirs.c_str(), &sb) < 0) return ncri_fail_errno(err, "stat", "inspect target namespaces", theirs.c_str());
      if (stat(mine.c_str(), &sa) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev) continue;
      joins.push_back({theirs, ns.type});
    }
  }
  std::stable_sort(joins.begin(), joins.end(),
                   [](const SpawnRequest::Join &x, const SpawnRequest::Join &y) { return NsRank(x.nstype) < NsRank(y.nstype); });
  bool joins_user = false, joins_pid = false;
  std::vector<PlanNamespace> join_ns;
  for (const auto &j : joins) {
    int fd = ChildKeeps(s, open(j.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd < 0) return ncri_fail_errno(err, "open", "open namespace", j.path.c_str());
    join_ns.push_back(PlanNamespace{fd, j.nstype, b.str(j.path)});
    if (j.nstype == CLONE_NEWUSER) joins_user = true;
    if (j.nstype == CLONE_NEWPID) joins_pid = true;
  }
  if (r.target_pid > 0 && r.target_pidfd >= 0 && PidfdSendSignal(r.target_pidfd, 0) < 0)
    // The target died (and its pid may be reused) after we opened its namespaces.
    return ncri_fail_errno(err, "pidfd_send_signal", "check exec target", std::to_string(r.target_pid).c_str());
  p.join_ns = b.put(join_ns);
  p.n_join_ns = (int32_t)join_ns.size();

  if ((r.new_namespaces & CLONE_NEWUSER) && !joins.empty() && (joins_user || joins_pid))
    return ncri_fail(err, EINVAL, "clone3", "plan namespaces", "creating a user namespace while joining a user or pid namespace");
  // Joining a PID namespace affects only children: the init joins, then clones the real
  // child into it (an intermediate). A new PID namespace is made by the clone itself: it
  // is empty until the init has exec'd, so no container process can see stage 0. A new
  // user namespace is made by the init (unshare), never by the clone: an exec in a user
  // namespace whose maps are not written yet would drop every capability.
  bool creates_user = (r.new_namespaces & CLONE_NEWUSER) != 0;
  bool &intermediate = s->intermediate;
  intermediate = joins_pid || ((joins_user || creates_user) && (r.new_namespaces & CLONE_NEWPID));
  uint64_t &clone_ns = s->clone_namespaces;
  if (intermediate) {
    p.unshare_flags = r.new_namespaces & ~(uint64_t)CLONE_NEWPID;
    p.inner_clone_flags = r.new_namespaces & CLONE_NEWPID;
  } else if (joins_user || creates_user) {
    p.unshare_flags = r.new_namespaces;  // owned by the joined or new user namespace
  } else {
    // A new cgroup namespace is rooted at the cgroup current at its creation: unshare it
    // in the child after the cgroup join.
    clone_ns = r.new_namespaces & ~(uint64_t)CLONE_NEWCGROUP;
    p.unshare_flags = r.new_namespaces & CLONE_NEWCGROUP;
  }

  // Rootfs
  if (!r.rootfs.empty()) {
    p.rootfs = b.str(r.rootfs);
    p.root_propagation = r.root_propagation ? r.root_propagation : (MS_PRIVATE | MS_REC);
    if (r.root_readonly) p.flags |= kPlanRootReadonly;
    std::vector<PlanMount> mounts;
    for (const auto &m : r.mounts) {
      PlanMount pm{};
      pm.target = b.str(JoinPath(r.rootfs, m.destination));
      pm.rel = b.str(RelPath(m.destination));
      pm.source = m.source.empty() ? nullptr : b.str(m.source);
      pm.fstype = m.has_type && !m.bind ? b.str(m.type) : nullptr;
      pm.data = m.has_data && !m.data.empty() ? b.str(m.data) : nullptr;
      pm.flags = m.flags;
      pm.remount = m.remount;
      pm.propagation = m.propagation;
      pm.target_is_dir = 1;
      if (m.bind) {
        struct stat st;
        if (stat(m.source.c_str(), &st) < 0) return ncri_fail_errno(err, "stat", "check bind mount source", m.source.c_str());
        pm.target_is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
      }
      mounts.push_back(pm);
    }
    std::vector<PlanDevice> devices;
    for (const auto &d : r.devices) {
      PlanDevice pd{};
      pd.target = b.str(JoinPath(r.rootfs, d.path));
      pd.rel = b.str(RelPath(d.path));
      pd.host_path = d.host_path.empty() ? nullptr : b.str(d.host_path);
      pd.mode = d.mode;
      pd.uid = d.uid;
      pd.gid = d.gid;
      pd.dev = d.dev;
      devices.push_back(pd);
    }
    std::vector<PlanSymlink> symlinks;
    for (const auto &sl : r.symlinks)
      symlinks.push_back(PlanSymlink{b.str(sl.target), b.str(JoinPath(r.rootfs, sl.path)), b.str(RelPath(sl.path))});
    std::vector<const char *> masked, readonly;
    for (const auto &m : r.masked_paths) masked.push_back(b.str(m));
    for (const auto &m : r.readonly_paths) readonly.push_back(b.str(m));
    p.mounts = b.put(mounts);
    p.n_mounts = (int32_t)mounts.size();
    p.devices = b.put(devices);
    p.n_devices = (int32_t)devices.size();
    p.symlinks = b.put(symlinks);
    p.n_symlinks = (int32_t)symlinks.size();
    p.masked_paths = b.strings(masked, false);
    p.n_masked = (int32_t)masked.size();
    p.readonly_paths = b.strings(readonly, false);
    p.n_readonly = (int32_t)readonly.size();
  }

  std::vector<PlanSysctl> sysctls;
  for (const auto &sc : r.sysctls) {
    std::string path = "/proc/sys/" + sc.first;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    sysctls.push_back(PlanSysctl{b.str(path), b.str(sc.second), sc.second.size()});
  }
  p.sysctls = b.put(sysctls);
  p.n_sysctls = (int32_t)sysctls.size();

  if (r.has_hostname) p.hostname = b.str(r.hostname);
  if (r.has_domainname) p.domainname = b.str(r.domainname);
  if (r.has_oom) {
    p.oom_score_adj = b.str(std::to_string(r.oom_score_adj));
    p.flags |= kPlanHasOom;
  }
  p.rlimits = b.put(r.rlimits);
  p.n_rlimits = (int32_t)r.rlimits.size();

  p.uid = r.uid;
  p.gid = r.gid;
  p.groups = b.put(r.additional_gids);
  p.n_groups = (int32_t)r.additional_gids.size();
  p.umask = r.has_umask ? r.umask : 022;
  if (r.has_caps) {
    p.flags |= kPlanHasCaps;
    p.cap_bounding = r.cap_bounding;
    p.cap_effective = r.cap_effective;
    p.cap_permitted = r.cap_permitted;
    p.cap_inheritable = r.cap_inheritable;
    p.cap_ambient = r.cap_ambient;
  }
  p.cap_last_cap = CapLastCap();
  if (r.no_new_privileges) p.flags |= kPlanNoNewPrivs;
  if (r.terminal) p.flags |= kPlanTerminal;

  // exec
  p.cwd = r.cwd.empty() ? nullptr : b.str(r.cwd);
  p.exec_name = b.str(r.args[0]);
  std::vector<const char *> argv, envp, exec_dirs;
  for (const auto &a : r.args) argv.push_back(b.str(a));
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto &e : r.env) {
    envp.push_back(b.str(e));
    if (e.rfind("PATH=", 0) == 0) path_var = e.substr(5);
  }
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    exec_dirs.push_back(b.str(dir.empty() ? "." : dir));
    start = end + 1;
  }
  p.argv = b.strings(argv, true);
  p.envp = b.strings(envp, true);
  p.exec_dirs = b.strings(exec_dirs, false);
  p.n_exec_dirs = (int32_t)exec_dirs.size();

  if (intermediate) p.flags |= kPlanIntermediate;
  if (r.new_namespaces & CLONE_NEWUSER) p.flags |= kPlanWaitIdMaps;
  // NODECRI_TEST_CLONE_FALLBACK=1 (read once) exercises the clone(2) paths in tests.
  static const bool force_fallback = getenv("NODECRI_TEST_CLONE_FALLBACK") != nullptr;
  s->force_clone_fallback = force_fallback;
  if (force_fallback) p.flags |= kPlanCloneFallback;
  // NODECRI_TEST_KILL_INTERMEDIATE=1 (read once): the intermediate dies between its clone
  // and its PID frame in exec sessions, as a kill of the container's cgroup or the OOM
  // killer may have it.
  // NODECRI_TEST_PID_FRAME=wrong-pid|two-fds: its PID frame is one the parent must reject.
  static const bool kill_intermediate = getenv("NODECRI_TEST_KILL_INTERMEDIATE") != nullptr;
  static const std::string bad_pid_frame = getenv("NODECRI_TEST_PID_FRAME") ? getenv("NODECRI_TEST_PID_FRAME") : "";
  if (intermediate && r.target_pid != 0) {
    if (kill_intermediate) p.flags |= kPlanTestKillIntermediate;
    if (bad_pid_frame == "wrong-pid") p.flags |= kPlanTestPidFrameWrongPid;
    if (bad_pid_frame == "two-fds") p.flags |= kPlanTestPidFrameTwoFds;
  }

  // The fds the child needs; it closes everything else on entry.
  std::vector<int32_t> keep_fds;
  for (const Fd &fd : s->child_fds) keep_fds.push_back(fd.get());
  for (int i = 0; i < 3; i++)
    if (p.stdio[i] >= 3) keep_fds.push_back(p.stdio[i]);
  std::sort(keep_fds.begin(), keep_fds.end());
  keep_fds.erase(std::unique(keep_fds.begin(), keep_fds.end()), keep_fds.end());
  p.keep_fds = b.put(keep_fds);
  p.n_keep_fds = (int32_t)keep_fds.size();

  // The block goes to the init in a memfd, kept open across its exec (stage 0 clears its
  // close-on-exec flag) and closed by the init once mapped.
  b.plan() = p;
  b.finish();
  int plan_fd = ChildKeeps(s, (int)syscall(SYS_memfd_create, "nodecri-plan", MFD_CLOEXEC));
  if (plan_fd < 0) return ncri_fail_errno(err, "memfd_create", "write the process plan", nullptr);
  if (WriteAll(plan_fd, b.bytes().data(), b.bytes().size()) < 0)
    return ncri_fail_errno(err, "write", "write the process plan", nullptr);
  s->exec_keep = keep_fds;
  s->exec_keep.push_back(plan_fd);
  s->plan_fd_text = std::to_string(plan_fd);
  return 0;
}

// Stage 2: the clone. Stage 0 runs in our memory (CLONE_VM) and reads what this frame holds
// and what `s` holds: stage0, its argv, exec_keep, the stack. The clone returns only once
// stage 0 has exec'd or died (CLONE_VFORK), on every path: nothing it may read is freed
// under it. The init then reads only its own copy of the plan (the memfd). Blocks this
// (pool) thread for that long.
int CloneStage0(const SpawnPlan &s, pid_t *pid_out, int *pidfd_out, ncri_error *err) {
  const char *init_argv[] = {"nodecri-init", s.plan_fd_text.c_str(), nullptr};
  const char *init_envp[] = {nullptr};
  ExecInitArgs stage0{s.init_fd, s.child_sync, s.exec_keep.data(), (int32_t)s.exec_keep.size(), init_argv, init_envp};

  struct Stack {
    void *base = nullptr;
    ~Stack() {
      if (base) munmap(static_cast<char *>(base) - kGuard, kStage0StackSize + kGuard);
    }
  } stack;
  stack.base = MapStack(kStage0StackSize);
  if (!stack.base) return ncri_fail_errno(err, "mmap", "allocate child stack", nullptr);

  int pidfd = -1;
  CloneArgs args{};
  args.flags = s.clone_namespaces | CLONE_PIDFD | CLONE_VM | CLONE_VFORK;
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  args.exit_signal = SIGCHLD;
  args.stack = (uint64_t)(uintptr_t)stack.base;
  args.stack_size = kStage0StackSize;

  // Every signal, glibc's internal ones too (pthread_sigmask leaves SIGCANCEL and SIGSETXID
  // open), as glibc's posix_spawn does: stage 0 must never run a handler in our memory.
  uint64_t all = ~0ULL, old = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
  long pid = s.force_clone_fallback ? -ENOSYS : ncri_clone3_run(&args, sizeof args, ncri_exec_init_main, &stage0);
  if (pid == -ENOSYS)
    pid = ncri_clone_run(args.flags | SIGCHLD, static_cast<char *>(stack.base) + kStage0StackSize, &pidfd,
                         ncri_exec_init_main, &stage0);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof old);
  if (pid < 0) return ncri_fail(err, (int)-pid, "clone3", "clone container process", nullptr);
  *pid_out = (pid_t)pid;
  *pidfd_out = pidfd;
  return 0;
}

}  // namespace

// Stage 3, the handshake, is SpawnSetup's: it takes our ends of the spawn's fds and the
// child, and is driven from the event loop (Step) up to READY.
int ncri_spawn_begin(SpawnRequest &&request, std::unique_ptr<SpawnSetup> *out, ncri_error *err) {
  SpawnRequest r = std::move(request);
  SpawnPlan plan;
  if (PlanSpawn(r, &plan, err) < 0) return -err->err;
  pid_t pid = -1;
  int pidfd = -1;
  if (CloneStage0(plan, &pid, &pidfd, err) < 0) return -err->err;
  plan.child_fds.clear();  // the child has its own copies now (or died: its EOF tells)

  std::unique_ptr<SpawnSetup> s(new SpawnSetup());
  s->pid_ = pid;
  s->pidfd_.reset(pidfd);
  s->awaiting_pid_ = plan.intermediate;
  s->wants_terminal_ = r.terminal;
  s->sync_ = std::move(plan.sync);
  for (int i = 0; i < 3; i++) s->stdio_[i] = std::move(plan.stdio[i]);
  if (r.new_namespaces & CLONE_NEWUSER) {
    s->uid_map_ = MapText(r.uid_mappings);
    s->gid_map_ = MapText(r.gid_mappings);
  }
  s->memory_ = std::move(plan.memory);
  *out = std::move(s);
  return 0;
}


namespace {
// The pid a pidfd refers to (its fdinfo's Pid: line): > 0, -1 once reaped, or 0 when the
// fd is not a pidfd at all.
int PidfdPid(int fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  char line[256];
  int pid = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "Pid:", 4) == 0) {
      pid = atoi(line + 4);
      if (pid == 0) pid = -1;
      break;
    }
  }
  fclose(f);
  return pid;
}
}  // namespace

void SpawnSetup::Reject(int fd) {
  if (fd < 0) return;
  if (PidfdPid(fd) != 0) rejected_pidfds_.emplace_back(fd);
  else close(fd);
}

void SpawnSetup::TryReapIntermediate() {
  if (intermediate_pidfd_.get() < 0) return;
  siginfo_t si{};
  int rc;
  while ((rc = waitid((idtype_t)P_PIDFD, (id_t)intermediate_pidfd_.get(), &si, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
  }
  if (rc == 0 && si.si_pid == 0) return;  // still exiting
  intermediate_pidfd_.reset();
}

int SpawnSetup::TakeIntermediate() {
  TryReapIntermediate();
  return intermediate_pidfd_.release();
}

std::vector<int> SpawnSetup::Abort() {
  std::vector<int> left;
  for (Fd *fd : {&pidfd_, &intermediate_pidfd_}) {
    if (fd->get() < 0) continue;
    PidfdSendSignal(fd->get(), SIGKILL);
    left.push_back(fd->release());
  }
  for (Fd &fd : rejected_pidfds_) {
    PidfdSendSignal(fd.get(), SIGKILL);
    left.push_back(fd.release());
  }
  rejected_pidfds_.clear();
  // The sync socket goes now: a child still waiting for a byte sees EOF and exits.
  sync_.reset();
  return left;
}

void SpawnSetup::Finish(SpawnResult *out) {
  out->pid = pid_;
  out->pidfd = pidfd_.release();
  out->sync_fd = sync_.release();
  for (int i = 0; i < 3; i++) out->stdio[i] = stdio_[i].release();
  out->terminal = terminal_.release();
  out->warnings = std::move(warnings_);
  out->memory = std::move(memory_);
}

int SpawnSetup::Step(ncri_error *err) {
  for (;;) {
    TryReapIntermediate();
    ChildFrame f;
    // A frame carries at most one fd (the pty master, a pidfd): receive it close-on-exec.
    // Room for more, so that extra fds are seen (and rejected) rather than cut off: the
    // kernel packs two ints into CMSG_SPACE(sizeof(int)) on 64-bit.
    constexpr size_t kMaxFds = 8;
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(int) * kMaxFds)];
    } control;
    struct iovec iov = {&f, sizeof f};
    struct msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t got = recvmsg(sync_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (got < 0) return ncri_fail_errno(err, "recv", "wait for container setup", nullptr);
    // Every fd of every SCM_RIGHTS header: none may leak, whatever the child sent.
    int fds[kMaxFds * 2];
    size_t n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n && n_fds < sizeof fds / sizeof fds[0]; i++)
        memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    const char *bad = nullptr;
    if (msg.msg_flags & MSG_CTRUNC) bad = "more fds from the child than a frame carries";
    else if (msg.msg_flags & MSG_TRUNC) bad = "a frame longer than a ChildFrame";
    else if (n_fds > 1) bad = "more than one fd with a frame";
    else if (got != 0 && got != (ssize_t)sizeof f) bad = "a short frame";
    if (bad) {
      for (size_t i = 0; i < n_fds; i++) Reject(fds[i]);
      return ncri_fail(err, EPROTO, "recvmsg", "wait for container setup", bad);
    }
    int passed = n_fds == 1 ? fds[0] : -1;
    if (got == 0) {
      Reject(passed);
      // Every holder of the child end is gone: the child died without a word (a signal, a
      // crash). Say how if it is a zombie already (EOF comes as its fds close, a moment
      // before it is one): never wait here.
      char what[64];
      ncri_describe_exit(pidfd_.get(), "before reporting", what, sizeof what);
      return ncri_fail(err, ECHILD, "recv", "child died during container setup", what);
    }
    int rc = HandleFrame(f, passed, err);
    if (rc != 0) return rc;
  }
}

// One whole frame; `passed` is the fd it carried (-1: none). Takes the fd: it becomes the
// terminal or the child's pidfd, or is rejected (Reject: a pidfd is kept for Abort).
int SpawnSetup::HandleFrame(const ChildFrame &f, int passed, ncri_error *err) {
  struct Passed {
    SpawnSetup *self;
    int fd;
    ~Passed() { self->Reject(fd); }
    int take() {
      int v = fd;
      fd = -1;
      return v;
    }
  } fd{this, passed};
  if (awaiting_pid_ && f.kind != kFramePid && f.kind != kFrameError && f.kind != kFrameIdMaps)
    return ncri_fail(err, EPROTO, "recv", "wait for container setup", "a frame before the intermediate's pid");
  switch (f.kind) {
    case kFrameReady:
      if (wants_terminal_ && terminal_.get() < 0)
        return ncri_fail(err, EPROTO, "recvmsg", "receive the container's pty", "no pty before ready");
      return 1;
    case kFrameIdMaps: {
      // The init (or the intermediate: still pid_) has made its user namespace. Two short
      // procfs writes.
      std::string base = "/proc/" + std::to_string(pid_);
      if (WriteWhole(base + "/uid_map", uid_map_, err, "write uid mappings") < 0 ||
          WriteWhole(base + "/gid_map", gid_map_, err, "write gid mappings") < 0)
        return -err->err;
      char c = kMsgIdMapsWritten;
      if (send(sync_.get(), &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
        return ncri_fail_errno(err, "send", "release child after id mappings", nullptr);
      return 0;
    }
    case kFrameError:
      ncri_frame_error(f, memory_.get(), err);
      return -err->err;
    case kFrameWarning: {
      ncri_error w{};
      ncri_frame_error(f, memory_.get(), &w);
      warnings_.push_back(std::string(w.step) + " " + w.path + ": " + strerrorname_np(w.err) + ", clamped to 0");
      return 0;
    }
    case kFrameTerminal:
      if (!wants_terminal_ || terminal_.get() >= 0 || fd.fd < 0)
        return ncri_fail(err, EPROTO, "recvmsg", "receive the container's pty", nullptr);
      terminal_.reset(fd.take());
      return 0;
    case kFramePid: {
      // The intermediate cloned the real child with CLONE_PARENT|CLONE_PIDFD: our child,
      // and this pidfd is the one the clone made. From now on we watch it; the intermediate
      // exits (reaped when it has: TryReapIntermediate).
      if (!awaiting_pid_ || f.value <= 0 || fd.fd < 0)
        return ncri_fail(err, EPROTO, "recv", "wait for container setup", "an unexpected pid frame");
      // The pid we report is the pidfd's own (never the frame's word alone); they must agree.
      int actual = PidfdPid(fd.fd);
      if (actual == 0) return ncri_fail(err, EPROTO, "recv", "wait for container setup", "a pid frame without a pidfd");
      if (actual < 0) return ncri_fail(err, ECHILD, "recv", "child died during container setup", "before its pid arrived");
      if (actual != (int)f.value)
        return ncri_fail(err, EPROTO, "recv", "wait for container setup", "a pid frame whose pidfd names another pid");
      awaiting_pid_ = false;
      intermediate_pidfd_ = std::move(pidfd_);
      pidfd_.reset(fd.take());
      pid_ = (pid_t)actual;
      // Only now may the child speak (InnerMain): we hold what kills and reaps it.
      char c = kMsgPidHeld;
      if (send(sync_.get(), &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
        return ncri_fail_errno(err, "send", "release the container process", nullptr);
      return 0;
    }
    default:
      return ncri_fail(err, EPROTO, "recv", "wait for container setup", "an unknown frame");
  }
}

}  // namespace ncri
