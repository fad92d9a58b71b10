// Parent side of the container clone: stage 2, the clone, and ncri_spawn_begin, which
// runs the stages (stages.h) in order.
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
// own copy of the plan, a block plan.cc lays out with offsets for pointers (PlanBlock) and
// hands over in a memfd. So nothing a container can see ever shares the daemon's memory,
// and an oom_score_adj, setresuid or dumpable change in the child stays in the child.
// clone(2) is used only when clone3 is ENOSYS.
//
// Three stages, one file each: PlanSpawn (plan.cc) resolves everything the child will do
// into the plan block and the fds it keeps (parent, before the clone), CloneStage0 (here)
// clones (the child runs stage 0 on memory PlanSpawn prepared), and the handshake,
// SpawnSetup (handshake.cc), reads the child's frames up to READY (parent, from the loop).
//
// Joining a PID namespace only affects children, so in that case (exec sessions, shared
// pod PID namespaces) the init is an intermediate that joins and unshares, clones the real
// child (a fork of the small init, never of us) with CLONE_PARENT|CLONE_PIDFD so that it
// is our child, passes us the clone's pidfd with its PID frame and exits; the real child
// waits until we say we hold that pidfd (kMsgPidHeld), so the frames on the sync socket are
// ordered and no step of the child runs before we can kill and reap it.
#include "stages.h"

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

}  // namespace

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

// Stage 2, the clone. Stage 0 runs in our memory (CLONE_VM) and reads what this frame holds
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


}  // namespace ncri

int ncri_spawn_prepare(ncri_error *err) { return ncri::InitBinaryFd(err); }

// The three stages in order: plan, clone, and the handshake, which SpawnSetup (handshake.cc)
// takes over with our ends of the spawn's fds and the child, driven from the event loop
// (Step) up to READY.
int ncri_spawn_begin(ncri::SpawnRequest &&request, std::unique_ptr<ncri::SpawnSetup> *out, ncri_error *err) {
  using namespace ncri;
  SpawnRequest r = std::move(request);
  SpawnPlan plan;
  int rc = PlanSpawn(r, &plan, err);
  if (rc < 0) return rc;
  pid_t pid = -1;
  int pidfd = -1;
  rc = CloneStage0(plan, &pid, &pidfd, err);
  if (rc < 0) return rc;
  plan.child_fds.clear();  // the child has its own copies now (or died: its EOF tells)

  std::unique_ptr<SpawnSetup> s(new SpawnSetup());
  s->pid_ = pid;
  s->pidfd_.reset(pidfd);
  s->awaiting_pid_ = plan.intermediate;
  s->wants_terminal_ = r.terminal;
  s->sync_ = std::move(plan.sync);
  for (int i = 0; i < 3; i++) s->stdio_[i] = std::move(plan.stdio[i]);
  s->uid_map_ = std::move(plan.uid_map_text);
  s->gid_map_ = std::move(plan.gid_map_text);
  s->memory_ = std::move(plan.memory);
  *out = std::move(s);
  return 0;
}
