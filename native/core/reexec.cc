#include "reexec.h"

#include <fcntl.h>
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
  // Node marks stdin, stdout and stderr close-on-exec at start-up: without this the new
  // image would find them closed (and Node would put /dev/null there: its logs lost).
  for (int fd = 0; fd <= 2; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  execve(path, argv, envp);
  return ncri_fail_errno(err, "execve", "re-exec the daemon", path);
}
