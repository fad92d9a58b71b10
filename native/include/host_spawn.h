// Host helper programs (CNI plugins): a host binary exec'd with its argv and env and three
// pipes, in plain syscalls (no N-API). Not for containers: no namespaces, no plan, no
// nodecri-init; the child is glibc's posix_spawn child. napi/host_spawn.cc watches the
// pipes and the pidfd on the loop.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "ncri_error.h"
#include "unique_fd.h"

namespace ncri {

struct HostSpawnRequest {
  std::string path;
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "KEY=value", the child's whole environment
};

// A started host program: our child, the leader of its own process group (pgid = pid).
// The daemon's ends of its pipes are close-on-exec and non-blocking.
struct HostChild {
  pid_t pid = -1;
  Fd pidfd;
  Fd stdin_fd;   // write end
  Fd stdout_fd;  // read end
  Fd stderr_fd;  // read end
};

}  // namespace ncri

// posix_spawn of req.path with stdin/stdout/stderr on fresh pipes, every other fd closed,
// the signal mask emptied and every disposition reset, in a new process group; then its
// pidfd. On failure no fd is left; if the program was spawned but its pidfd could not be
// opened (EMFILE, ENOMEM), its group is SIGKILLed and *unreaped is its pid, for the caller
// to reap without blocking (ncri_host_reap), else *unreaped is -1.
int ncri_host_spawn(const ncri::HostSpawnRequest &req, ncri::HostChild *out, pid_t *unreaped, ncri_error *err);

// SIGKILL to the program (by its pidfd when >= 0) and to its process group (what it started
// without leaving the group). Safe against pid reuse: the group id is the pid of our child,
// taken while it is unreaped and, after, while any member of the group lives.
void ncri_host_kill(pid_t pid, int pidfd);

// waitpid(pid, WNOHANG) of our child: true once it is reaped (or not ours: ECHILD), false
// while it runs.
bool ncri_host_reap(pid_t pid);
