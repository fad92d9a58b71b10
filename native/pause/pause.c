/* The pod's PID 1 when a pod shares one PID namespace: it reaps orphans and exits on
 * SIGTERM or SIGINT. Static, no libc beyond the basics, so it runs in any rootfs.
 * It runs as 65535 (src/linux/infra.ts) and makes itself non-dumpable, so that its
 * /proc/1/{mem,environ,...} belong to root and need CAP_SYS_PTRACE: not even a sibling
 * container running as 65535 opens them. */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static void on_chld(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return 1;
  struct sigaction term = {0}, chld = {0};
  term.sa_handler = on_term;
  chld.sa_handler = on_chld;
  chld.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGTERM, &term, NULL) < 0 || sigaction(SIGINT, &term, NULL) < 0 ||
      sigaction(SIGCHLD, &chld, NULL) < 0)
    return 1;
  for (;;) pause();
}
