// Host helper programs through glibc's posix_spawn (host_spawn.h).
//
// Why posix_spawn and not a clone of our own: glibc's (2.36 here) already does what such a
// clone would, and is kept right across releases: clone(CLONE_VM|CLONE_VFORK) on a stack of
// its own (no copy of the daemon's page tables, whatever its heap; the parent waits only
// until the exec), all signals blocked around the clone so that no handler of ours runs in
// the child sharing our memory, exec failures reported back to the caller as the errno of
// posix_spawn, and the file actions (dup2 onto 0-2, closefrom) done in the child with raw
// syscalls. We run nothing in the child ourselves, so there is no async-signal-safety to
// keep by hand. libuv's spawn (child_process) forks instead, copying the page tables of a
// daemon-sized heap on every plugin call.
#include "host_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ncri_proc.h"

namespace ncri {
namespace {

// posix_spawn's two option objects, destroyed on every path.
struct SpawnOptions {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  bool have_actions = false, have_attr = false;
  ~SpawnOptions() {
    if (have_actions) posix_spawn_file_actions_destroy(&actions);
    if (have_attr) posix_spawnattr_destroy(&attr);
  }
};

// A pipe, both ends close-on-exec. The child's end is moved above 2 so that the dup2s onto
// 0, 1 and 2 cannot overwrite one another's source (a daemon started with 0-2 closed would
// get pipe fds there); the daemon's end is made non-blocking (the loop reads and writes it).
int MakePipe(bool child_reads, Fd *daemon_end, Fd *child_end, ncri_error *err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return ncri_fail_errno(err, "pipe2", "make host program pipe", nullptr);
  Fd rd(p[0]), wr(p[1]);
  Fd &mine = child_reads ? wr : rd;
  Fd &theirs = child_reads ? rd : wr;
  if (theirs.get() < 3) {
    int moved = fcntl(theirs.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return ncri_fail_errno(err, "fcntl", "make host program pipe", nullptr);
    theirs.reset(moved);
  }
  int fl = fcntl(mine.get(), F_GETFL);
  if (fl < 0 || fcntl(mine.get(), F_SETFL, fl | O_NONBLOCK) < 0) return ncri_fail_errno(err, "fcntl", "make host program pipe", nullptr);
  *daemon_end = std::move(mine);
  *child_end = std::move(theirs);
  return 0;
}

int SpawnFailed(int rc, const char *what, const char *path, ncri_error *err) {
  return ncri_fail(err, rc, what, "spawn host program", path);
}

}  // namespace
}  // namespace ncri

int ncri_host_spawn(const ncri::HostSpawnRequest &req, ncri::HostChild *out, pid_t *unreaped, ncri_error *err) {
  using ncri::Fd;
  *unreaped = -1;
  const char *path = req.path.c_str();
  if (req.argv.empty()) return ncri_fail(err, EINVAL, "posix_spawn", "spawn host program (no argv)", path);
  std::vector<char *> argv, envp;
  for (const std::string &a : req.argv) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string &e : req.env) envp.push_back(const_cast<char *>(e.c_str()));
  envp.push_back(nullptr);

  Fd in_daemon, in_child, out_daemon, out_child, err_daemon, err_child;
  int rc;
  if ((rc = ncri::MakePipe(true, &in_daemon, &in_child, err)) < 0) return rc;
  if ((rc = ncri::MakePipe(false, &out_daemon, &out_child, err)) < 0) return rc;
  if ((rc = ncri::MakePipe(false, &err_daemon, &err_child, err)) < 0) return rc;

  ncri::SpawnOptions o;
  if ((rc = posix_spawn_file_actions_init(&o.actions)) != 0) return ncri::SpawnFailed(rc, "posix_spawn_file_actions_init", path, err);
  o.have_actions = true;
  // dup2 clears close-on-exec on 0-2; closefrom then closes whatever else the daemon has
  // open without it (fds kept across a re-exec, ones a library opened carelessly).
  if ((rc = posix_spawn_file_actions_adddup2(&o.actions, in_child.get(), 0)) != 0 ||
      (rc = posix_spawn_file_actions_adddup2(&o.actions, out_child.get(), 1)) != 0 ||
      (rc = posix_spawn_file_actions_adddup2(&o.actions, err_child.get(), 2)) != 0 ||
      (rc = posix_spawn_file_actions_addclosefrom_np(&o.actions, 3)) != 0)
    return ncri::SpawnFailed(rc, "posix_spawn_file_actions", path, err);
  if ((rc = posix_spawnattr_init(&o.attr)) != 0) return ncri::SpawnFailed(rc, "posix_spawnattr_init", path, err);
  o.have_attr = true;
  // Node ignores SIGPIPE and may block signals on its threads: the program starts with
  // the defaults, as from a shell. Its own process group lets a timeout kill what it
  // started too (a plugin script's children).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if ((rc = posix_spawnattr_setflags(&o.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)) != 0 ||
      (rc = posix_spawnattr_setsigmask(&o.attr, &none)) != 0 || (rc = posix_spawnattr_setsigdefault(&o.attr, &all)) != 0 ||
      (rc = posix_spawnattr_setpgroup(&o.attr, 0)) != 0)
    return ncri::SpawnFailed(rc, "posix_spawnattr", path, err);

  pid_t pid = -1;
  // Exec failures (ENOENT, EACCES, ENOEXEC) come back here as rc: glibc's child reports
  // them through the memory it shares with us before it exits.
  if ((rc = posix_spawn(&pid, path, &o.actions, &o.attr, argv.data(), envp.data())) != 0) return ncri::SpawnFailed(rc, "posix_spawn", path, err);

  // It runs: the child's ends are its own now (closed here when this returns).
  int pidfd = ncri_pidfd_open(pid, err);
  if (pidfd < 0) {
    // Not watchable from the loop: kill it before it does anything; the caller reaps it.
    ncri_host_kill(pid, -1);
    *unreaped = pid;
    return ncri_fail(err, err->err, "pidfd_open", "watch host program", path);
  }
  out->pid = pid;
  out->pidfd.reset(pidfd);
  out->stdin_fd = std::move(in_daemon);
  out->stdout_fd = std::move(out_daemon);
  out->stderr_fd = std::move(err_daemon);
  return 0;
}

void ncri_host_kill(pid_t pid, int pidfd) {
  // The leader by its pidfd (it may have left its group), then the group.
  if (pidfd >= 0) ncri_pidfd_signal(pidfd, SIGKILL, nullptr);
  if (pid > 0) kill(-pid, SIGKILL);
}

bool ncri_host_reap(pid_t pid) {
  int rc;
  while ((rc = waitpid(pid, nullptr, WNOHANG)) < 0 && errno == EINTR) {
  }
  return rc != 0;
}
