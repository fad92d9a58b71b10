#include "reexec.h"

#include <signal.h>
#include <unistd.h>

int ncri_reexec(const char *path, char *const argv[], char *const envp[], ncri_error *err) {
  // The new image starts with the signal mask and dispositions of this thread: give it
  // the defaults (Node ignores SIGPIPE; the mask may hold what libuv blocked).
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    signal(sig, SIG_DFL);
  }
  execve(path, argv, envp);
  return ncri_fail_errno(err, "execve", "re-exec the daemon", path);
}
