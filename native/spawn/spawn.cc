// Parent side of the container clone.
//
// Where the clone runs: on a libuv pool thread (the N-API layer calls ncri_spawn from an
// AsyncWorker), because creating namespaces (a network namespace especially) and waiting
// for the child's setup can take milliseconds, which must not stall the event loop when
// many containers start at once (style Rule 7). The thread blocks all signals around the
// clone so that the child is born with every signal blocked and no parent handler can run
// in it before it resets dispositions; the thread's mask is restored right after.
//
// How: clone3 with CLONE_PIDFD, the new namespaces as clone flags and, unless the child
// must join a user namespace (setns refuses a shared mm), CLONE_VM with a private stack, as
// posix_spawn does. Sharing the mm avoids copying the page tables of a large Node heap,
// and avoids the copy-on-write snapshot a fork-style child would pin for as long as it
// waits for start. The price is that the child must not write any memory but its stack:
// see native/child. clone(2) is used only when clone3 is ENOSYS.
//
// Joining a PID namespace only affects children, so in that case (exec sessions, shared
// pod PID namespaces) the clone runs an intermediate that joins and unshares, clones the
// real child with CLONE_PARENT (so that it is our child, watched by its own pidfd), reports
// its pid and exits.
#include "spawn.h"

#include <fcntl.h>
#include <poll.h>
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

constexpr size_t kStackSize = 256 * 1024;  // lazily committed: a child touches a few pages
constexpr size_t kGuard = 4096;
constexpr int kSetupTimeoutMs = 60000;

// Same layout as the kernel's struct clone_args (linux/sched.h clashes with <sched.h>).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

struct StepInfo {
  const char *syscall;
  const char *what;
};

const StepInfo kSteps[kStepCount] = {
    {"", "container setup"},
    {"rt_sigaction", "reset signals"},
    {"close_range", "close inherited fds"},
    {"setsid", "start a new session"},
    {"dup3", "set up stdio"},
    {"ioctl", "set controlling terminal"},
    {"write", "join cgroup"},
    {"recvfrom", "wait for id mappings"},
    {"setns", "join namespace"},
    {"unshare", "create namespaces"},
    {"clone3", "clone into the pid namespace"},
    {"mount", "set rootfs propagation"},
    {"mount", "bind rootfs"},
    {"mkdir", "create mount point"},
    {"mount", "mount"},
    {"mount", "remount bind mount"},
    {"mount", "set mount propagation"},
    {"mknod", "create device"},
    {"symlink", "create symlink"},
    {"write", "set sysctl"},
    {"sethostname", "set hostname"},
    {"setdomainname", "set domainname"},
    {"write", "set oom_score_adj"},
    {"pivot_root", "pivot to rootfs"},
    {"umount2", "detach old root"},
    {"mount", "mask path"},
    {"mount", "make path read-only"},
    {"mount", "make rootfs read-only"},
    {"prlimit64", "set rlimit"},
    {"prctl", "drop bounding capabilities"},
    {"prctl", "keep capabilities"},
    {"setgroups", "set additional groups"},
    {"setresgid", "set gid"},
    {"setresuid", "set uid"},
    {"capset", "set capabilities"},
    {"prctl", "raise ambient capabilities"},
    {"prctl", "set no_new_privs"},
    {"seccomp", "load seccomp filter"},
    {"chdir", "change to working directory"},
    {"execve", "find executable"},
    {"", "ready"},
    {"recvfrom", "wait for start"},
    {"execve", "exec process"},
    {"open", "open the container's pty"},
    {"sendmsg", "pass the pty master"},
    {"open_tree", "clone the runtime's /dev/null for masks"},
};

// Owns fds until released; closes what is left on scope exit.
class FdSet {
 public:
  ~FdSet() {
    for (int fd : fds_) close(fd);
  }
  int add(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  int release(int fd) {
    fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
    return fd;
  }
  void close_all() {
    for (int fd : fds_) close(fd);
    fds_.clear();
  }
  const std::vector<int> &fds() const { return fds_; }

 private:
  std::vector<int> fds_;
};

void *MapStack(size_t size) {
  void *p = mmap(nullptr, size + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mprotect(p, kGuard, PROT_NONE);  // overflow faults instead of scribbling over the heap
  return static_cast<char *>(p) + kGuard;
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

// Kill and reap a child that failed or that we gave up on. SIGKILL makes the wait short.
void KillAndReap(int pidfd) {
  if (pidfd < 0) return;
  PidfdSendSignal(pidfd, SIGKILL);
  siginfo_t si;
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {
  }
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

SpawnMemory::~SpawnMemory() {
  if (stack) munmap(static_cast<char *>(stack) - kGuard, stack_size + kGuard);
  if (inner_stack) munmap(static_cast<char *>(inner_stack) - kGuard, inner_stack_size + kGuard);
}

const char *ncri_step_name(uint32_t step) { return step < kStepCount ? kSteps[step].what : "container setup"; }

void ncri_frame_error(const ChildFrame &f, const SpawnMemory *mem, ncri_error *err) {
  const StepInfo &s = f.step < kStepCount ? kSteps[f.step] : kSteps[0];
  const char *path = nullptr;
  if (mem && f.path) {
    auto it = mem->paths.find(f.path);
    if (it != mem->paths.end()) path = it->second.c_str();
  }
  ncri_fail(err, f.err > 0 ? f.err : EPROTO, s.syscall, s.what, path);
}

int ncri_spawn(SpawnRequest &&request, SpawnResult *out, ncri_error *err) {
  auto mem = std::make_unique<SpawnMemory>();
  mem->req = std::move(request);
  SpawnRequest &r = mem->req;
  ChildPlan &p = mem->plan;
  auto reg = [&](const std::string &s) -> const char * {
    mem->paths[(uint64_t)(uintptr_t)s.c_str()] = s;
    return s.c_str();
  };
  auto own = [&](std::string s) -> const char * {
    mem->owned.push_back(std::move(s));
    return reg(mem->owned.back());
  };

  if (r.args.empty()) return ncri_fail(err, EINVAL, "execve", "check process args", "args is empty");
  if (!r.rootfs.empty() && !(r.new_namespaces & CLONE_NEWNS))
    return ncri_fail(err, EINVAL, "pivot_root", "check rootfs", "a rootfs needs a new mount namespace");

  if (r.has_seccomp) {
    uint32_t flags = 0;
    if (ncri_seccomp_compile(r.seccomp, &mem->seccomp_filter, &flags, err) < 0) return -err->err;
    p.seccomp_filter = mem->seccomp_filter.data();
    p.seccomp_len = (uint16_t)mem->seccomp_filter.size();
    p.seccomp_flags = flags;
  }

  FdSet child_fds;   // closed in the parent right after the clone
  FdSet parent_fds;  // returned on success
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ncri_fail_errno(err, "socketpair", "create sync socket", nullptr);
  parent_fds.add(sv[0]);
  child_fds.add(sv[1]);
  p.sync_fd = sv[1];

  // stdio, and the runtime's own /dev/null for masks (the container's /dev/null may be
  // anything by then): the child turns this fd into a detached clone of its mount.
  int parent_stdio[3] = {-1, -1, -1};
  int terminal = -1;
  p.devnull_fd = -1;
  if (!r.rootfs.empty()) {
    p.devnull_fd = child_fds.add(open("/dev/null", O_PATH | O_CLOEXEC));
    if (p.devnull_fd < 0) return ncri_fail_errno(err, "open", "open mask source", "/dev/null");
  }
  if (r.terminal) {
    // The pty is the container's own: the child opens /dev/ptmx in its devpts once it is
    // inside (runc's setupConsole, crun's terminal.c) and sends the master back before
    // READY (kFrameTerminal). Until then its stdio is /dev/null.
    int devnull = child_fds.add(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0) return ncri_fail_errno(err, "open", "open stdio", "/dev/null");
    for (int i = 0; i < 3; i++) p.stdio[i] = devnull;
  } else {
    int devnull = -1;
    for (int i = 0; i < 3; i++) {
      int mode = r.stdio[i];
      if (mode >= 0) {
        p.stdio[i] = mode;  // caller-owned
      } else if (mode == kStdioNull) {
        if (devnull < 0) devnull = child_fds.add(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (devnull < 0) return ncri_fail_errno(err, "open", "open stdio", "/dev/null");
        p.stdio[i] = devnull;
      } else {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) return ncri_fail_errno(err, "pipe2", "create stdio pipe", nullptr);
        // stdin: the child reads fds[0]; stdout/stderr: the child writes fds[1].
        int child_end = i == 0 ? fds[0] : fds[1];
        int parent_end = i == 0 ? fds[1] : fds[0];
        child_fds.add(child_end);
        parent_fds.add(parent_end);
        p.stdio[i] = child_end;
        parent_stdio[i] = parent_end;
      }
    }
  }

  // cgroups: opened here, joined by the child writing "0" (works for v1 and v2).
  // TODO(cgroup v2): when the only paths are v2, pass the dir fd as CLONE_INTO_CGROUP.
  for (const auto &path : r.cgroup_procs) {
    int fd = child_fds.add(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd < 0) return ncri_fail_errno(err, "open", "open cgroup.procs", path.c_str());
    mem->cgroup_fds.push_back(fd);
    mem->cgroup_paths.push_back(reg(path));
  }
  p.cgroup_fds = mem->cgroup_fds.data();
  p.cgroup_paths = mem->cgroup_paths.data();
  p.n_cgroup_fds = (int32_t)mem->cgroup_fds.size();

  // Namespaces to join: the request's paths, or the exec target's namespaces that differ
  // from ours (entering our own user namespace again is EINVAL).
  std::vector<SpawnRequest::Join> joins = r.join_namespaces;
  if (r.target_pid > 0) {
    for (const auto &ns : kNsOrder) {
      std::string mine = std::string("/proc/self/ns/") + ns.name;
      std::string theirs = "/proc/" + std::to_string(r.target_pid) + "/ns/" + ns.name;
      struct stat a, b;
      if (stat(theirs.c_str(), &b) < 0) return ncri_fail_errno(err, "stat", "inspect target namespaces", theirs.c_str());
      if (stat(mine.c_str(), &a) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
      joins.push_back({theirs, ns.type});
    }
  }
  std::stable_sort(joins.begin(), joins.end(),
                   [](const SpawnRequest::Join &a, const SpawnRequest::Join &b) { return NsRank(a.nstype) < NsRank(b.nstype); });
  bool joins_user = false, joins_pid = false;
  for (const auto &j : joins) {
    const char *path = own(j.path);
    int fd = child_fds.add(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) return ncri_fail_errno(err, "open", "open namespace", path);
    mem->join_ns.push_back(PlanNamespace{fd, j.nstype, path});
    if (j.nstype == CLONE_NEWUSER) joins_user = true;
    if (j.nstype == CLONE_NEWPID) joins_pid = true;
  }
  if (r.target_pid > 0 && r.target_pidfd >= 0 && PidfdSendSignal(r.target_pidfd, 0) < 0)
    // The target died (and its pid may be reused) after we opened its namespaces.
    return ncri_fail_errno(err, "pidfd_send_signal", "check exec target", std::to_string(r.target_pid).c_str());
  p.join_ns = mem->join_ns.data();
  p.n_join_ns = (int32_t)mem->join_ns.size();

  if ((r.new_namespaces & CLONE_NEWUSER) && !joins.empty() && (joins_user || joins_pid))
    return ncri_fail(err, EINVAL, "clone3", "plan namespaces", "creating a user namespace while joining a user or pid namespace");
  bool intermediate = joins_pid || (joins_user && (r.new_namespaces & CLONE_NEWPID));
  uint64_t clone_ns = 0;
  if (intermediate) {
    p.unshare_flags = r.new_namespaces & ~(uint64_t)CLONE_NEWPID;
    p.inner_clone_flags = r.new_namespaces & CLONE_NEWPID;
  } else if (joins_user) {
    p.unshare_flags = r.new_namespaces;  // owned by the joined user namespace
  } else {
    // A new cgroup namespace is rooted at the cgroup current at its creation: unshare it
    // in the child after the cgroup join.
    clone_ns = r.new_namespaces & ~(uint64_t)CLONE_NEWCGROUP;
    p.unshare_flags = r.new_namespaces & CLONE_NEWCGROUP;
  }

  // Rootfs
  if (!r.rootfs.empty()) {
    p.rootfs = reg(r.rootfs);
    p.root_propagation = r.root_propagation ? r.root_propagation : (MS_PRIVATE | MS_REC);
    if (r.root_readonly) p.flags |= kPlanRootReadonly;
    for (const auto &m : r.mounts) {
      PlanMount pm{};
      pm.target = own(JoinPath(r.rootfs, m.destination));
      pm.rel = own(RelPath(m.destination));
      pm.source = m.source.empty() ? nullptr : reg(m.source);
      pm.fstype = m.has_type && !m.bind ? reg(m.type) : nullptr;
      pm.data = m.has_data && !m.data.empty() ? reg(m.data) : nullptr;
      pm.flags = m.flags;
      pm.remount = m.remount;
      pm.propagation = m.propagation;
      pm.target_is_dir = 1;
      if (m.bind) {
        struct stat st;
        if (stat(m.source.c_str(), &st) < 0) return ncri_fail_errno(err, "stat", "check bind mount source", m.source.c_str());
        pm.target_is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
      }
      mem->mounts.push_back(pm);
    }
    for (const auto &d : r.devices) {
      PlanDevice pd{};
      pd.target = own(JoinPath(r.rootfs, d.path));
      pd.rel = own(RelPath(d.path));
      pd.host_path = d.host_path.empty() ? nullptr : reg(d.host_path);
      pd.mode = d.mode;
      pd.uid = d.uid;
      pd.gid = d.gid;
      pd.dev = d.dev;
      mem->devices.push_back(pd);
    }
    for (const auto &s : r.symlinks)
      mem->symlinks.push_back(PlanSymlink{reg(s.target), own(JoinPath(r.rootfs, s.path)), own(RelPath(s.path))});
    for (const auto &m : r.masked_paths) mem->masked.push_back(reg(m));
    for (const auto &m : r.readonly_paths) mem->readonly.push_back(reg(m));
  }
  p.mounts = mem->mounts.data();
  p.n_mounts = (int32_t)mem->mounts.size();
  p.devices = mem->devices.data();
  p.n_devices = (int32_t)mem->devices.size();
  p.symlinks = mem->symlinks.data();
  p.n_symlinks = (int32_t)mem->symlinks.size();
  p.masked_paths = mem->masked.data();
  p.n_masked = (int32_t)mem->masked.size();
  p.readonly_paths = mem->readonly.data();
  p.n_readonly = (int32_t)mem->readonly.size();

  for (const auto &s : r.sysctls) {
    std::string path = "/proc/sys/" + s.first;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    mem->sysctls.push_back(PlanSysctl{own(path), s.second.c_str(), s.second.size()});
  }
  p.sysctls = mem->sysctls.data();
  p.n_sysctls = (int32_t)mem->sysctls.size();

  if (r.has_hostname) p.hostname = reg(r.hostname);
  if (r.has_domainname) p.domainname = reg(r.domainname);
  if (r.has_oom) {
    mem->oom_text = std::to_string(r.oom_score_adj);
    p.oom_score_adj = reg(mem->oom_text);
    p.flags |= kPlanHasOom;
  }
  p.rlimits = r.rlimits.data();
  p.n_rlimits = (int32_t)r.rlimits.size();

  p.uid = r.uid;
  p.gid = r.gid;
  mem->groups = r.additional_gids;
  p.groups = mem->groups.data();
  p.n_groups = (int32_t)mem->groups.size();
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
  p.cwd = r.cwd.empty() ? nullptr : reg(r.cwd);
  p.exec_name = reg(r.args[0]);
  for (const auto &a : r.args) mem->argv.push_back(a.c_str());
  mem->argv.push_back(nullptr);
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto &e : r.env) {
    mem->envp.push_back(e.c_str());
    if (e.rfind("PATH=", 0) == 0) path_var = e.substr(5);
  }
  mem->envp.push_back(nullptr);
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    mem->exec_dirs.push_back(own(dir.empty() ? "." : dir));
    start = end + 1;
  }
  p.argv = mem->argv.data();
  p.envp = mem->envp.data();
  p.exec_dirs = mem->exec_dirs.data();
  p.n_exec_dirs = (int32_t)mem->exec_dirs.size();

  // The fds the child needs; it closes everything else on entry.
  for (int fd : child_fds.fds()) mem->keep_fds.push_back(fd);
  for (int i = 0; i < 3; i++)
    if (p.stdio[i] >= 3) mem->keep_fds.push_back(p.stdio[i]);
  std::sort(mem->keep_fds.begin(), mem->keep_fds.end());
  mem->keep_fds.erase(std::unique(mem->keep_fds.begin(), mem->keep_fds.end()), mem->keep_fds.end());
  p.keep_fds = mem->keep_fds.data();
  p.n_keep_fds = (int32_t)mem->keep_fds.size();

  bool share_vm = !joins_user;  // setns(CLONE_NEWUSER) refuses a shared mm
  mem->stack_size = kStackSize;
  mem->stack = MapStack(kStackSize);
  if (!mem->stack) return ncri_fail_errno(err, "mmap", "allocate child stack", nullptr);
  if (intermediate) {
    mem->inner_stack_size = kStackSize;
    mem->inner_stack = MapStack(kStackSize);
    if (!mem->inner_stack) return ncri_fail_errno(err, "mmap", "allocate child stack", nullptr);
    p.inner_stack = mem->inner_stack;
    p.inner_stack_size = mem->inner_stack_size;
    p.flags |= kPlanIntermediate | kPlanInnerShareVm;
  }
  if (r.new_namespaces & CLONE_NEWUSER) p.flags |= kPlanWaitIdMaps;

  int (*entry)(void *) = intermediate ? ncri_intermediate_main : ncri_child_main;
  int pidfd = -1;
  CloneArgs args{};
  args.flags = clone_ns | CLONE_PIDFD | (share_vm ? CLONE_VM : 0);
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  args.exit_signal = SIGCHLD;
  args.stack = (uint64_t)(uintptr_t)mem->stack;
  args.stack_size = mem->stack_size;

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // NODECRI_TEST_CLONE_FALLBACK=1 (read once) exercises the clone(2) path in tests.
  static const bool force_fallback = getenv("NODECRI_TEST_CLONE_FALLBACK") != nullptr;
  long pid = force_fallback ? -ENOSYS : ncri_clone3_run(&args, sizeof args, entry, &p);
  if (pid == -ENOSYS)
    pid = ncri_clone_run(args.flags | SIGCHLD, static_cast<char *>(mem->stack) + mem->stack_size, &pidfd, entry, &p);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return ncri_fail(err, (int)-pid, "clone3", "clone container process", nullptr);

  child_fds.close_all();
  int sync = sv[0];
  auto fail = [&](int rc) {
    KillAndReap(pidfd);
    if (pidfd >= 0) close(pidfd);
    return rc;
  };

  if (p.flags & kPlanWaitIdMaps) {
    std::string base = "/proc/" + std::to_string(pid);
    if (WriteWhole(base + "/uid_map", MapText(r.uid_mappings), err, "write uid mappings") < 0 ||
        WriteWhole(base + "/gid_map", MapText(r.gid_mappings), err, "write gid mappings") < 0)
      return fail(-err->err);
    char c = kMsgIdMapsWritten;
    if (send(sync, &c, 1, MSG_NOSIGNAL) != 1)
      return fail(ncri_fail_errno(err, "send", "release child after id mappings", nullptr));
  }

  for (;;) {
    struct pollfd pfd = {sync, POLLIN, 0};
    int n = poll(&pfd, 1, kSetupTimeoutMs);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(ncri_fail_errno(err, "poll", "wait for container setup", nullptr));
    if (n == 0) return fail(ncri_fail(err, ETIMEDOUT, "poll", "wait for container setup", nullptr));
    ChildFrame f;
    // A frame may carry one fd (the pty master): receive it close-on-exec.
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {&f, sizeof f};
    struct msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t got = recvmsg(sync, &msg, MSG_CMSG_CLOEXEC);
    if (got < 0 && errno == EINTR) continue;
    int passed = -1;
    if (got > 0) {
      struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
      if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&passed, CMSG_DATA(c), sizeof passed);
      if (passed >= 0) parent_fds.add(passed);  // closed unless it becomes the terminal
      if (msg.msg_flags & MSG_CTRUNC)
        return fail(ncri_fail(err, EPROTO, "recvmsg", "wait for container setup", "unexpected fds from the child"));
    }
    if (got < 0) return fail(ncri_fail_errno(err, "recv", "wait for container setup", nullptr));
    if (got == 0) {
      // The child died without a word (a signal, or a crash): report how.
      siginfo_t si{};
      waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOWAIT);
      char what[64];
      snprintf(what, sizeof what, si.si_code == CLD_EXITED ? "exit status %d" : "signal %d", si.si_status);
      return fail(ncri_fail(err, ECHILD, "recv", "child died during container setup", what));
    }
    if (got != (ssize_t)sizeof f) return fail(ncri_fail(err, EPROTO, "recv", "wait for container setup", nullptr));
    if (f.kind == kFrameReady) break;
    if (f.kind == kFrameError) {
      ncri_frame_error(f, mem.get(), err);
      return fail(-err->err);
    }
    if (f.kind == kFrameWarning) {
      ncri_error w{};
      ncri_frame_error(f, mem.get(), &w);
      std::string text = std::string(w.step) + " " + w.path + ": " + strerrorname_np(w.err) + ", clamped to 0";
      out->warnings.push_back(text);
      continue;
    }
    if (f.kind == kFrameTerminal) {
      if (!r.terminal || terminal >= 0 || passed < 0)
        return fail(ncri_fail(err, EPROTO, "recvmsg", "receive the container's pty", nullptr));
      terminal = passed;
      continue;
    }
    if (passed >= 0) parent_fds.release(passed), close(passed);  // an fd on any other frame
    if (f.kind == kFramePid) {
      // The intermediate is done: the real child is our child too (CLONE_PARENT).
      int inner = (int)syscall(SYS_pidfd_open, (pid_t)f.value, 0);
      int saved = errno;
      siginfo_t si;
      while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {
      }
      close(pidfd);
      pidfd = inner;
      pid = f.value;
      if (inner < 0) return fail(ncri_fail(err, saved, "pidfd_open", "watch container process", nullptr));
      continue;
    }
  }

  if (r.terminal && terminal < 0) return fail(ncri_fail(err, EPROTO, "recvmsg", "receive the container's pty", "no pty before ready"));
  out->pid = (pid_t)pid;
  out->pidfd = pidfd;
  out->sync_fd = parent_fds.release(sync);
  for (int i = 0; i < 3; i++) out->stdio[i] = parent_stdio[i] >= 0 ? parent_fds.release(parent_stdio[i]) : -1;
  out->terminal = terminal >= 0 ? parent_fds.release(terminal) : -1;
  out->memory = std::move(mem);
  return 0;
}

}  // namespace ncri
