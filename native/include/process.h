// A container process after its clone, in plain syscalls (no N-API): the created child's
// sync socket until it has exec'd (a seed), the non-blocking reap of a child behind its
// pidfd, and the sweep of stray zombies. napi/process.cc drives these from the event loop
// (each call here returns at once; the waits are the loop's, on the fds).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <unordered_set>

#include "ncri_error.h"
#include "ncri_plan.h"
#include "unique_fd.h"

namespace ncri {

// A created child that has not exec'd yet: it waits on its sync socket for the start byte
// (kMsgStart) or EOF (released: it exits 0 without exec), then sends an error frame if its
// exec failed. The socket's EOF (close-on-exec, or its death) ends the seed.
class Seed {
 public:
  explicit Seed(int sync_fd) : sync_(sync_fd) {}
  int sync_fd() const { return sync_.get(); }
  // Sends the start byte. A child already gone (EPIPE) is not an error: its EOF tells.
  int Start(ncri_error *err);
  // Releases the child without starting it (it sees EOF).
  void Release();
  // Reads every frame queued on the socket, never blocking: true at EOF (the seed is over;
  // error() then says whether the exec failed), false while more may come.
  bool Drain();
  // The first error frame the child sent, or nullptr.
  const ChildFrame *error() const { return has_error_ ? &error_ : nullptr; }

 private:
  Fd sync_;
  bool has_error_ = false;
  ChildFrame error_{};
};

// How a child of ours ended, as waitid saw it; known = false when it was not ours to reap
// (ECHILD: another waiter got it) or its watch failed while it still ran.
struct ExitStatus {
  bool known = false;
  bool exited = false;  // exit(status) rather than a signal
  int status = 0;       // the exit code or the signal number
};

}  // namespace ncri

// Once the pidfd of our child is readable (or its watch failed: watch_failed), reaps it
// with waitid(P_PIDFD, WNOHANG): false = it still runs (a spurious readiness; keep
// watching), true = over, with *out saying how.
bool ncri_exit_collect(int pidfd, bool watch_failed, ncri::ExitStatus *out);

// "exit status N" or "signal N" of our child behind `pidfd` if it is a zombie already
// (waitid WNOWAIT: not reaped), else `alive`; for error messages.
void ncri_describe_exit(int pidfd, const char *alive, char *out, size_t size);

// Reaps each zombie child of ours that is not in `watched` and that is in the PID namespace
// of the process behind `target_pidfd` (when that namespace is not ours); returns how many.
// Such a stray (an exec child whose intermediate died before passing it, one whose pidfd
// was rejected or lost across a re-exec) holds that namespace's init from finishing its
// exit: the kernel waits until every process of the namespace is reaped. Safe against
// reuse: an unreaped zombie's pid cannot be reused, only we reap our children, and our
// other children (child_process) never live in a container's PID namespace.
int ncri_reap_strays(int target_pidfd, const std::unordered_set<pid_t> &watched);
