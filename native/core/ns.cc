// Pod namespaces: create in a cloned child, pin by bind mount, enter to bring `lo` up.
//
// The sequence for ncri_pin_namespaces (parent = the libuv pool thread running the work):
//
//   parent                                   child (cloned with its own stack)
//   mkdir -p DIR; create empty DIR/<ns>
//   block all signals; clone; restore mask   reset dispositions, unblock, PDEATHSIG,
//                                            close inherited fds but the sync socket
//                                            [user]  unshare(CLONE_NEWUSER) -> ID_MAPS
//   [user] write setgroups, gid_map, uid_map
//          -> ID_MAPS_WRITTEN                [user]  setresgid/setresuid(0) if 0 is mapped
//                                            unshare(net|ipc|uts|cgroup)
//                                            write /proc/sys/... (now inside the new ns)
//                                            -> READY, then wait
//   bind /proc/CHILD/ns/<ns> on DIR/<ns>
//   -> EXIT; waitpid(CHILD)                  _exit(0)
//
// The protocol is the container child's (ncri_plan.h): ChildFrames from the child (READY,
// ID_MAPS, ERROR with {step, -errno, the sysctl's index as value}), one-byte messages from
// the parent (kMsgIdMapsWritten, kMsgExit), and the steps' names from the one table
// (core/child_steps.cc). The parent turns an error frame into an ncri_error and undoes what
// it made (mounts, files, directories).
#include "ns.h"
#include "ncri_plan.h"
#include "unique_fd.h"
#include "raw_syscall.h"

#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vector>

namespace {

constexpr const char *kNsNames[NCRI_NS_KIND_COUNT] = {"net", "ipc", "uts", "user", "cgroup"};
constexpr int kNsCloneFlags[NCRI_NS_KIND_COUNT] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
                                                   CLONE_NEWUSER, CLONE_NEWCGROUP};

// How long the parent waits for any one message from the child. Creating a network
// namespace takes a global lock that netns teardown also takes, so it can be slow on a busy
// host; it should never take this long.
constexpr int kChildTimeoutMs = 30000;

// The kernel takes at most 340 lines in uid_map/gid_map (since 4.15).
constexpr size_t kMaxIdMapLines = 340;

// A sysctl value is one write(2) to a /proc/sys file; the kernel reads at most a page.
constexpr size_t kMaxSysctlValue = 4096;

using namespace ncri;  // Fd, and the child protocol: ChildFrame, kFrame*, kMsg*, kStepNs*

// Everything the child needs, resolved by the parent before the clone. The child only
// reads it (it may share this memory with the parent, see Child::start).
struct NsChildPlan {
  int sock = -1;  // the child's end of the sync socketpair
  pid_t parent_pid = 0;
  bool unshare_user = false;
  bool become_root = false;  // after the id maps: become uid/gid 0 of the user namespace
  int unshare_flags = 0;     // without CLONE_NEWUSER
  int setns_fd = -1;
  int setns_type = 0;
  size_t nsysctls = 0;
  const char *const *sysctl_paths = nullptr;
  const char *const *sysctl_values = nullptr;
  const size_t *sysctl_lens = nullptr;
  bool loopback_up = false;
  bool wait_for_exit = false;  // stay alive after READY until EXIT (or EOF)
};

// ---- runs after clone: raw syscalls only ----------------------------------------------------
//
// The child usually shares the parent's memory (CLONE_VM, see Child::start), including the
// TLS of the pool thread that cloned it, while that thread keeps running. So the child makes
// raw syscalls that return -errno and never write errno, calls no libc function that could
// touch TLS or take a lock (malloc, stdio, glibc's setxid broadcast), throws nothing, writes
// only to its own stack, and leaves with exit_group. That is stricter than async-signal-safe.

// The instruction itself is in raw_syscall.h, shared with the container child.
static inline long Raw6(long n, long a, long b, long c, long d, long e, long f) {
  return ncri_raw_syscall(n, a, b, c, d, e, f);
}

template <typename... A>
long Sys(long n, A... args) {
  long v[6] = {(long)args...};
  return Raw6(n, v[0], v[1], v[2], v[3], v[4], v[5]);
}

// Retries a raw syscall interrupted by a signal (no handlers are installed, so this is only
// for stop/continue, but it costs nothing).
template <typename... A>
long SysRetry(long n, A... args) {
  long r;
  do {
    r = Sys(n, args...);
  } while (r == -EINTR);
  return r;
}

[[noreturn]] void ChildExit(int code) {
  for (;;) Sys(SYS_exit_group, code);
}

// One frame to the parent; `r` is a failed syscall's -errno (0: none), `index` the sysctl's.
void ChildSend(int sock, uint32_t kind, uint32_t step, long r, int64_t index) {
  ChildFrame f = ncri_make_frame(kind, step, r, 0, index);
  SysRetry(SYS_sendto, sock, &f, sizeof f, MSG_NOSIGNAL, 0L, 0L);
}

// Reports {step, errno, index} and exits; `r` is the failed syscall's -errno.
[[noreturn]] void ChildFail(const NsChildPlan *p, ChildStep step, long r, int index = 0) {
  ChildSend(p->sock, kFrameError, step, r, index);
  ChildExit(1);
}

// Waits for one message byte from the parent; false on EOF, error or another byte (the
// parent is gone or gave up, so the child just exits).
bool ChildRecv(int sock, char expect) {
  char c = 0;
  long n = SysRetry(SYS_recvfrom, sock, &c, 1L, 0L, 0L, 0L);
  return n == 1 && c == expect;
}

// Closes every inherited fd except stdio and the two kept ones (-1: none). Other pool
// threads may be cloning at the same moment; without this, a sibling child would hold our
// socket ends open and hide an EOF. Best effort: an fd left open costs only a delayed EOF.
void ChildCloseFds(int a, int b) {
  if (a > b) {
    int t = a;
    a = b;
    b = t;
  }
  unsigned long lo = 3;
  for (int keep : {a, b}) {
    if (keep < 3) continue;
    if (static_cast<unsigned long>(keep) > lo) Sys(SYS_close_range, lo, keep - 1L, 0L);
    lo = static_cast<unsigned long>(keep) + 1;
  }
  Sys(SYS_close_range, lo, static_cast<long>(~0U), 0L);
}

int ChildMain(void *arg) {
  const NsChildPlan *p = static_cast<const NsChildPlan *>(arg);

  // Node's handlers (libuv's SIGCHLD, the inspector's SIGUSR1, ...) would run Node code in
  // here; reset every disposition (the table is the child's own copy: no CLONE_SIGHAND)
  // before unblocking what the parent blocked around the clone. An all-zero kernel
  // sigaction is SIG_DFL with no flags and an empty mask; KILL and STOP just fail.
  const unsigned long zero[8] = {};
  for (long sig = 1; sig <= 64; sig++) Sys(SYS_rt_sigaction, sig, zero, 0L, 8L);
  long r = Sys(SYS_rt_sigprocmask, SIG_SETMASK, zero, 0L, 8L);
  if (r < 0) ChildFail(p, kStepNsSignals, r);

  // If the parent dies before it tells us to exit, so do we; the check after closes the
  // race with a parent that died before the prctl.
  Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0L, 0L, 0L);
  if (Sys(SYS_getppid) != p->parent_pid) ChildExit(1);

  ChildCloseFds(p->sock, p->setns_fd);

  if (p->unshare_user) {
    r = Sys(SYS_unshare, CLONE_NEWUSER);
    if (r < 0) ChildFail(p, kStepNsUnshareUser, r);
    ChildSend(p->sock, kFrameIdMaps, kStepNone, 0, 0);
    if (!ChildRecv(p->sock, kMsgIdMapsWritten)) ChildExit(1);
    // Still host root (unmapped, so "nobody" inside) until here. The ipc and mqueue sysctls
    // of a namespace owned by this user namespace are writable only by its root uid, so
    // become it. (glibc's setresuid() would also signal every thread glibc believes this
    // process has; raw syscalls change just this task.)
    if (p->become_root) {
      if ((r = Sys(SYS_setresgid, 0L, 0L, 0L)) < 0) ChildFail(p, kStepNsSetresgid, r);
      if ((r = Sys(SYS_setresuid, 0L, 0L, 0L)) < 0) ChildFail(p, kStepNsSetresuid, r);
    }
  }
  if (p->unshare_flags != 0 && (r = Sys(SYS_unshare, p->unshare_flags)) < 0)
    ChildFail(p, kStepNsUnshare, r);
  if (p->setns_fd >= 0 && (r = Sys(SYS_setns, p->setns_fd, p->setns_type)) < 0)
    ChildFail(p, kStepNsSetns, r);

  // /proc/sys/net and the ipc sysctls resolve to the namespaces of the task that opens the
  // file, so these writes land in the namespaces just made.
  for (size_t i = 0; i < p->nsysctls; i++) {
    const int idx = static_cast<int>(i);
    long fd = SysRetry(SYS_openat, AT_FDCWD, p->sysctl_paths[i], O_WRONLY | O_CLOEXEC, 0L);
    if (fd < 0) ChildFail(p, kStepNsSysctlOpen, fd, idx);
    long n = SysRetry(SYS_write, fd, p->sysctl_values[i], p->sysctl_lens[i]);
    if (n < 0) ChildFail(p, kStepNsSysctlWrite, n, idx);
    // A sysctl value is taken in one write; a short one means it was cut.
    if (static_cast<size_t>(n) != p->sysctl_lens[i]) ChildFail(p, kStepNsSysctlWrite, -EIO, idx);
    Sys(SYS_close, fd);
  }

  if (p->loopback_up) {
    long s = Sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0L);
    if (s < 0) ChildFail(p, kStepNsLoopbackSocket, s);
    struct ifreq ifr;
    for (size_t i = 0; i < sizeof ifr; i++) reinterpret_cast<volatile char *>(&ifr)[i] = 0;
    ifr.ifr_name[0] = 'l';
    ifr.ifr_name[1] = 'o';
    if ((r = Sys(SYS_ioctl, s, SIOCGIFFLAGS, &ifr)) < 0) ChildFail(p, kStepNsLoopbackGetFlags, r);
    if ((ifr.ifr_flags & IFF_UP) == 0) {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      if ((r = Sys(SYS_ioctl, s, SIOCSIFFLAGS, &ifr)) < 0) ChildFail(p, kStepNsLoopbackSetFlags, r);
    }
    Sys(SYS_close, s);
  }

  ChildSend(p->sock, kFrameReady, kStepReady, 0, 0);
  if (p->wait_for_exit) ChildRecv(p->sock, kMsgExit);  // EXIT or EOF: either way, done
  ChildExit(0);
}

// ---- parent side ------------------------------------------------------------------------

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The cloned child: killed and reaped by its own pid when the guard goes out of scope, so
// no path leaves a zombie or a process holding namespaces (never waitpid(-1): that would
// steal Node's child_process children). It also owns the child's stack, which may be shared
// memory and so is unmapped only once the child is gone.
class Child {
 public:
  Child() = default;
  ~Child() {
    KillAndReap();
    if (stack_ != nullptr) munmap(stack_, stack_len_);
  }
  Child(const Child &) = delete;
  Child &operator=(const Child &) = delete;

  int Start(NsChildPlan *plan, ncri_error *err, const char *step);
  // One message byte (kMsgIdMapsWritten, kMsgExit) to the child.
  int Send(char msg, ncri_error *err, const char *step);
  // Waits for the next frame; turns ERROR frames and an early exit into ncri_error.
  int Recv(ChildFrame *f, const NsChildPlan *plan, ncri_error *err, const char *step);
  // Waits for the child to exit by itself (after EXIT); kills it if it takes too long.
  void Reap();
  void KillAndReap();
  pid_t pid() const { return pid_; }

 private:
  int WaitStatus();
  pid_t pid_ = -1;
  Fd pidfd_;
  Fd sock_;
  void *stack_ = nullptr;
  size_t stack_len_ = 0;
};

int Child::Start(NsChildPlan *plan, ncri_error *err, const char *step) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return ncri_fail_errno(err, "socketpair", step, nullptr);
  sock_.reset(sv[0]);
  Fd child_end(sv[1]);
  plan->sock = sv[1];
  plan->parent_pid = getpid();

  // The child's stack, with a guard page below it.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  stack_len_ = 64 * 1024 + page;
  void *stack = mmap(nullptr, stack_len_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return ncri_fail_errno(err, "mmap", step, nullptr);
  stack_ = stack;
  mprotect(stack, page, PROT_NONE);

  // Share the address space with the child (CLONE_VM, as glibc's posix_spawn does) unless it will
  // change its credentials. A fork-style copy of Node's address space costs more than the
  // namespaces themselves: the clone copies page tables under the mm lock and write-protects
  // every page, and every thread of Node, the event loop included, then takes a fault on
  // its next write to each one; 50 pins in parallel stalled the loop for 10-25 ms that way.
  // But a change of euid marks the mm non-dumpable, which on a shared mm would be Node's, so
  // a child that does setresuid (user namespace with id 0 mapped) gets its own copy.
  // Without CLONE_SIGHAND the child still has its own signal handler table, and without
  // CLONE_FILES its own fd table.
  const bool share_memory = NCRI_RAW_SYSCALLS && !plan->become_root;

  // Block every signal across the clone so that none is handled in the child before it has
  // reset the dispositions it inherited; the parent thread's mask is restored at once.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  // glibc's clone() runs ChildMain on the new stack and calls no atfork handlers (unlike
  // fork()), which is what we want: the child touches nothing they would protect.
  pid_t pid = clone(ChildMain, static_cast<char *>(stack) + stack_len_,
                    (share_memory ? CLONE_VM : 0) | CLONE_PIDFD | SIGCHLD, plan, &pidfd);
  int saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return ncri_fail(err, saved, "clone", step, nullptr);
  pid_ = pid;
  pidfd_.reset(pidfd);
  return 0;  // child_end closes here: the parent keeps only its own end
}

int Child::Send(char msg, ncri_error *err, const char *step) {
  ssize_t n;
  do {
    n = ::send(sock_.get(), &msg, 1, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ncri_fail_errno(err, "send", step, nullptr);
  return 0;
}

int Child::WaitStatus() {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    // ECHILD: someone else reaped it (a stray waitpid(-1) elsewhere in the process). The
    // pidfd still says whether it has exited, and it must have before its stack, which may
    // be shared memory, is unmapped.
    struct pollfd pfd = {pidfd_.get(), POLLIN, 0};
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  return r < 0 ? -1 : status;
}

void Child::KillAndReap() {
  if (pid_ <= 0) return;
  // pid_ is ours and not yet reaped, so it cannot have been reused; pidfd would do the same.
  kill(pid_, SIGKILL);
  WaitStatus();
}

void Child::Reap() {
  if (pid_ <= 0) return;
  struct pollfd pfd = {pidfd_.get(), POLLIN, 0};
  int r;
  do {
    r = poll(&pfd, 1, kChildTimeoutMs);
  } while (r < 0 && errno == EINTR);
  if (r <= 0) kill(pid_, SIGKILL);
  WaitStatus();
}

int Child::Recv(ChildFrame *f, const NsChildPlan *plan, ncri_error *err, const char *step) {
  const int64_t deadline = NowMs() + kChildTimeoutMs;
  for (;;) {
    // Poll the socket and the pidfd: a child that died without a frame (killed, or a
    // sibling clone still holds its socket end) is seen through the pidfd.
    struct pollfd pfds[2] = {{sock_.get(), POLLIN, 0}, {pidfd_.get(), POLLIN, 0}};
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      KillAndReap();
      return ncri_fail(err, ETIMEDOUT, "poll", step, nullptr);
    }
    int r = poll(pfds, 2, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ncri_fail_errno(err, "poll", step, nullptr);
    if (r == 0) continue;  // deadline check above
    ssize_t n;
    do {
      n = ::recv(sock_.get(), f, sizeof *f, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof *f)) {
      if (f->kind != kFrameError) return 0;
      const char *path = nullptr;
      if ((f->step == kStepNsSysctlOpen || f->step == kStepNsSysctlWrite) && f->value >= 0 &&
          static_cast<uint64_t>(f->value) < plan->nsysctls)
        path = plan->sysctl_paths[f->value];
      KillAndReap();
      return ncri_fail(err, f->err > 0 ? f->err : EIO, ncri_step_syscall(f->step), ncri_step_name(f->step), path);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !(pfds[1].revents & POLLIN))
      continue;
    if (n > 0) {
      KillAndReap();
      return ncri_fail(err, EPROTO, "recv", step, nullptr);
    }
    // EOF, or the child exited without a frame.
    int status = 0;
    if (pid_ > 0) {
      kill(pid_, SIGKILL);  // EOF while still alive can only mean it is about to die
      status = WaitStatus();
    }
    const char *what = (status >= 0 && WIFSIGNALED(status)) ? "namespace child was killed"
                                                            : "namespace child exited early";
    return ncri_fail(err, ECHILD, "waitpid", what, nullptr);
  }
}

int WriteFile(const char *path, const char *data, size_t len, ncri_error *err,
               const char *step) {
  int raw;
  do {
    raw = open(path, O_WRONLY | O_CLOEXEC);
  } while (raw < 0 && errno == EINTR);
  if (raw < 0) return ncri_fail_errno(err, "open", step, path);
  Fd fd(raw);
  ssize_t n;
  do {
    n = write(fd.get(), data, len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ncri_fail_errno(err, "write", step, path);
  if (static_cast<size_t>(n) != len) return ncri_fail(err, EIO, "write", step, path);
  return 0;
}

int WriteIdMap(pid_t pid, const char *file, const ncri_id_map *map, size_t n,
                 ncri_error *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", static_cast<int>(pid), file);
  // The kernel takes the whole map in one write.
  std::string data;
  for (size_t i = 0; i < n; i++) {
    char line[48];
    int len = snprintf(line, sizeof line, "%u %u %u\n", map[i].container_id, map[i].host_id,
                       map[i].size);
    data.append(line, static_cast<size_t>(len));
  }
  return WriteFile(path, data.data(), data.size(), err, "write user namespace id map");
}

bool MapsIdZero(const ncri_id_map *map, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (map[i].container_id == 0 && map[i].size > 0) return true;
  return false;
}

// The undo record of one pin attempt, run in reverse on failure.
struct PinRollback {
  std::vector<std::string> dirs;     // created by us, parents first
  std::vector<std::string> files;    // pin files we created
  std::vector<std::string> mounted;  // pin files with a namespace mounted on them
  bool committed = false;

  ~PinRollback() {
    if (committed) return;
    for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
    for (auto it = files.rbegin(); it != files.rend(); ++it) unlink(it->c_str());
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) rmdir(it->c_str());
  }
};

// mkdir -p, recording what it created so that a failed pin can remove it again.
int MakeDirs(const std::string &dir, std::vector<std::string> *created, ncri_error *err) {
  if (mkdir(dir.c_str(), 0755) == 0) {
    created->push_back(dir);
    return 0;
  }
  if (errno == ENOENT) {
    size_t slash = dir.find_last_of('/');
    if (slash == std::string::npos || slash == 0)
      return ncri_fail(err, ENOENT, "mkdir", "create pin directory", dir.c_str());
    int r = MakeDirs(dir.substr(0, slash), created, err);
    if (r < 0) return r;
    if (mkdir(dir.c_str(), 0755) == 0) {
      created->push_back(dir);
      return 0;
    }
  }
  if (errno != EEXIST) return ncri_fail_errno(err, "mkdir", "create pin directory", dir.c_str());
  struct stat st;
  if (stat(dir.c_str(), &st) != 0)
    return ncri_fail_errno(err, "stat", "create pin directory", dir.c_str());
  if (!S_ISDIR(st.st_mode)) return ncri_fail(err, ENOTDIR, "mkdir", "create pin directory", dir.c_str());
  return 0;
}

}  // namespace

const char *ncri_ns_name(int index) {
  return index >= 0 && index < NCRI_NS_KIND_COUNT ? kNsNames[index] : nullptr;
}

int ncri_sysctl_path(const std::string &key, std::string *out, ncri_error *err) {
  const char *step = "resolve sysctl";
  std::string path = "/proc/sys";
  size_t start = 0;
  if (key.empty() || key.size() > 256) return ncri_fail(err, EINVAL, "sysctl", step, key.c_str());
  for (;;) {
    size_t dot = key.find('.', start);
    std::string comp = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    for (char &c : comp) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == ':' || c == '/';
      if (!ok) return ncri_fail(err, EINVAL, "sysctl", step, key.c_str());
      if (c == '/') c = '.';  // sysctl(8): '/' stands for a '.' inside an interface name
    }
    if (comp.empty() || comp == "." || comp == "..")
      return ncri_fail(err, EINVAL, "sysctl", step, key.c_str());
    path += '/';
    path += comp;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  *out = std::move(path);
  return 0;
}

int ncri_pin_namespaces(const ncri_pin_request *req, ncri_pin_result *out, ncri_error *err) {
  const char *step = "pin namespaces";
  const unsigned all = (1u << NCRI_NS_KIND_COUNT) - 1;
  const bool user = (req->kinds & NCRI_NS_USER) != 0;
  if (req->kinds == 0 || (req->kinds & ~all) != 0 || req->dir.empty() || req->dir[0] != '/')
    return ncri_fail(err, EINVAL, "unshare", step, req->dir.c_str());
  if (user != (req->nuid_map > 0) || user != (req->ngid_map > 0) ||
      req->nuid_map > kMaxIdMapLines || req->ngid_map > kMaxIdMapLines)
    return ncri_fail(err, EINVAL, "unshare", "check user namespace id maps", req->dir.c_str());

  // Everything the child reads, resolved now: it must not allocate after the clone.
  std::vector<std::string> paths(req->nsysctls);
  std::vector<const char *> path_ptrs(req->nsysctls), value_ptrs(req->nsysctls);
  std::vector<size_t> value_lens(req->nsysctls);
  for (size_t i = 0; i < req->nsysctls; i++) {
    const ncri_sysctl &s = req->sysctls[i];
    int r = ncri_sysctl_path(s.key, &paths[i], err);
    if (r < 0) return r;
    if (s.value.size() > kMaxSysctlValue || s.value.find('\0') != std::string::npos)
      return ncri_fail(err, EINVAL, "write", "apply sysctl", paths[i].c_str());
    path_ptrs[i] = paths[i].c_str();
    value_ptrs[i] = s.value.c_str();
    value_lens[i] = s.value.size();
  }

  std::string dir = req->dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  PinRollback undo;
  int r = MakeDirs(dir, &undo.dirs, err);
  if (r < 0) return r;

  // The pin files exist before the child does, so a name clash (O_EXCL: we never mount over
  // a pin somebody else made) fails before any namespace is created.
  ncri_pin_result result;
  for (int i = 0; i < NCRI_NS_KIND_COUNT; i++) {
    if ((req->kinds & (1u << i)) == 0) continue;
    std::string pin = dir + "/" + kNsNames[i];
    int fd;
    do {
      fd = open(pin.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ncri_fail_errno(err, "open", "create pin file", pin.c_str());
    close(fd);
    undo.files.push_back(pin);
    result.paths[i] = std::move(pin);
  }

  NsChildPlan plan;
  plan.unshare_user = user;
  plan.become_root = user && MapsIdZero(req->uid_map, req->nuid_map) &&
                     MapsIdZero(req->gid_map, req->ngid_map);
  for (int i = 0; i < NCRI_NS_KIND_COUNT; i++)
    if ((req->kinds & (1u << i)) != 0 && kNsCloneFlags[i] != CLONE_NEWUSER)
      plan.unshare_flags |= kNsCloneFlags[i];
  plan.nsysctls = req->nsysctls;
  plan.sysctl_paths = path_ptrs.data();
  plan.sysctl_values = value_ptrs.data();
  plan.sysctl_lens = value_lens.data();
  plan.wait_for_exit = true;

  Child child;
  r = child.Start(&plan, err, "start namespace child");
  if (r < 0) return r;
  ChildFrame f{};
  if (user) {
    r = child.Recv(&f, &plan, err, "wait for user namespace");
    if (r < 0) return r;
    if (f.kind != kFrameIdMaps) return ncri_fail(err, EPROTO, "recv", "wait for user namespace", nullptr);
    // Maps are written from outside: only a process with CAP_SETUID/CAP_SETGID in the
    // parent user namespace may map arbitrary ids. setgroups must be settled before gid_map.
    if (req->deny_setgroups) {
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/setgroups", static_cast<int>(child.pid()));
      r = WriteFile(path, "deny", 4, err, "deny setgroups in user namespace");
      if (r < 0) return r;
    }
    r = WriteIdMap(child.pid(), "gid_map", req->gid_map, req->ngid_map, err);
    if (r < 0) return r;
    r = WriteIdMap(child.pid(), "uid_map", req->uid_map, req->nuid_map, err);
    if (r < 0) return r;
    r = child.Send(kMsgIdMapsWritten, err, "resume namespace child");
    if (r < 0) return r;
  }
  r = child.Recv(&f, &plan, err, "wait for namespaces");
  if (r < 0) return r;
  if (f.kind != kFrameReady) return ncri_fail(err, EPROTO, "recv", "wait for namespaces", nullptr);

  for (int i = 0; i < NCRI_NS_KIND_COUNT; i++) {
    if (result.paths[i].empty()) continue;
    char src[64];
    snprintf(src, sizeof src, "/proc/%d/ns/%s", static_cast<int>(child.pid()), kNsNames[i]);
    if (mount(src, result.paths[i].c_str(), nullptr, MS_BIND, nullptr) != 0)
      return ncri_fail_errno(err, "mount", "bind namespace onto pin file", result.paths[i].c_str());
    undo.mounted.push_back(result.paths[i]);
  }

  // The pins hold the namespaces now; the child's exit no longer matters to them.
  if (child.Send(kMsgExit, nullptr, nullptr) == 0) child.Reap();
  undo.committed = true;
  *out = std::move(result);
  return 0;
}

int ncri_unpin_namespace(const char *path, ncri_error *err) {
  const char *step = "unpin namespace";
  // Loop in case the same pin was mounted more than once; EINVAL means no mount is left.
  for (int i = 0; i < 16; i++) {
    if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;
    if (errno == EINTR) continue;
    return ncri_fail_errno(err, "umount2", step, path);
  }
  if (unlink(path) != 0 && errno != ENOENT) return ncri_fail_errno(err, "unlink", step, path);
  return 0;
}

int ncri_loopback_up(const char *netns_path, ncri_error *err) {
  const char *step = "bring up loopback";
  int raw;
  do {
    raw = open(netns_path, O_RDONLY | O_CLOEXEC);
  } while (raw < 0 && errno == EINTR);
  if (raw < 0) return ncri_fail_errno(err, "open", "open network namespace", netns_path);
  Fd ns(raw);

  NsChildPlan plan;
  plan.setns_fd = ns.get();
  plan.setns_type = CLONE_NEWNET;  // setns fails with EINVAL if the file is another kind
  plan.loopback_up = true;
  Child child;
  int r = child.Start(&plan, err, step);
  if (r < 0) return r;
  ChildFrame f{};
  r = child.Recv(&f, &plan, err, step);
  if (r < 0) {
    if (err && err->path[0] == '\0') ncri_fail(err, err->err, err->syscall, err->step, netns_path);
    return r;
  }
  child.Reap();
  return 0;
}

// ---- a socket in a network namespace ------------------------------------------------------

namespace {

struct NetnsSocketJob {
  int netns_fd;
  int domain;
  int type;
  int fd = -1;
  ncri_error err{};
};

// The thread's own: setns(2) changes only this thread's network namespace, and the thread
// ends right after, so no thread of the process (least of all a pool thread that would run
// other work) stays in the pod's namespace.
void *NetnsSocketThread(void *arg) {
  auto *job = static_cast<NetnsSocketJob *>(arg);
  if (setns(job->netns_fd, CLONE_NEWNET) < 0) {
    ncri_fail_errno(&job->err, "setns", "enter network namespace", nullptr);
    return nullptr;
  }
  job->fd = socket(job->domain, job->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (job->fd < 0) ncri_fail_errno(&job->err, "socket", "create socket in network namespace", nullptr);
  return nullptr;
}

}  // namespace

int ncri_socket_in_netns(const char *netns_path, int domain, int type, ncri_error *err) {
  int raw;
  do {
    // The pin is a bind-mounted nsfs file: a symlink there is not ours to follow, and a
    // FIFO put in its place must not block the thread in open.
    raw = open(netns_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  } while (raw < 0 && errno == EINTR);
  if (raw < 0) return ncri_fail_errno(err, "open", "open network namespace", netns_path);
  Fd ns(raw);
  NetnsSocketJob job{ns.get(), domain, type};
  pthread_t thread;
  // Signals stay blocked in the thread (it inherits the mask): none is ever delivered there.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&thread, nullptr, NetnsSocketThread, &job);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) return ncri_fail(err, rc, "pthread_create", "create socket in network namespace", netns_path);
  pthread_join(thread, nullptr);
  if (job.fd < 0) {
    if (err) *err = job.err;
    if (err && err->path[0] == '\0') ncri_fail(err, job.err.err, job.err.syscall, job.err.step, netns_path);
    return -job.err.err;
  }
  return job.fd;
}
