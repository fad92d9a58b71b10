/* The floor for "start a container running /bin/true and wait for it": the same kernel
 * work as the addon (clone into new mount/pid/ipc/uts/net namespaces, rprivate, bind the
 * rootfs, mount /proc, pivot_root, detach the old root, exec, wait) with nothing else.
 *   spawn-floor ROOTFS          one container, then exit (timed from outside as a whole process)
 *   spawn-floor ROOTFS loop N   N containers in-process; prints the median in microseconds
 * Built by bench/spawn.ts with cc at run time. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *rootfs;
static char proc_path[4096];

static int child(void *arg) {
  (void)arg;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(10);
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) _exit(11);
  if (mount("proc", proc_path, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0) _exit(12);
  if (chdir(rootfs) < 0) _exit(13);
  if (syscall(SYS_pivot_root, ".", ".") < 0) _exit(14);
  if (umount2(".", MNT_DETACH) < 0) _exit(15);
  if (chdir("/") < 0) _exit(16);
  char *argv[] = {"/bin/true", NULL};
  char *envp[] = {"PATH=/bin", NULL};
  execve("/bin/true", argv, envp);
  _exit(127);
}

static int once(void) {
  static char stack[64 * 1024] __attribute__((aligned(16)));
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD;
  pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
  if (pid < 0) {
    perror("clone");
    return 1;
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) return 1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child status %d\n", status);
    return 1;
  }
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  rootfs = argv[1];
  snprintf(proc_path, sizeof proc_path, "%s/proc", rootfs);
  if (argc == 4 && strcmp(argv[2], "loop") == 0) {
    int n = atoi(argv[3]);
    double *t = calloc(n, sizeof *t);
    for (int i = 0; i < n; i++) {
      struct timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      if (once()) return 1;
      clock_gettime(CLOCK_MONOTONIC, &b);
      t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(t, n, sizeof *t, cmp);
    printf("%.1f\n", t[n / 2]);
    return 0;
  }
  return once();
}
