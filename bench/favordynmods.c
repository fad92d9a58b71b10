/* The two sides of cgroup2's favordynmods, which keeps the kernel's global
 * cgroup_threadgroup_rwsem in its slow-reader mode:
 *   favordynmods fork N            N fork+_exit+waitpid; prints the median in nanoseconds
 *                                  (fork and exit take that lock for reading)
 *   favordynmods move N DIR_A DIR_B GAP_MS
 *                                  moves one sleeping child between two cgroups N times by
 *                                  cgroup.procs writes, GAP_MS apart; prints the median in
 *                                  nanoseconds (a move takes the lock for writing; moves in a
 *                                  tight loop share one grace period, as a container start's
 *                                  single move does not)
 * Built by bench/favordynmods.ts with cc at run time. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static int write_pid(const char *dir, pid_t pid) {
  char path[4096], buf[32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int n = snprintf(buf, sizeof buf, "%d", pid);
  int rc = write(fd, buf, n) == n ? 0 : -1;
  close(fd);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int n = atoi(argv[2]);
  long long *t = calloc(n, sizeof *t);
  if (!t) return 2;
  if (strcmp(argv[1], "fork") == 0) {
    for (int i = 0; i < n; i++) {
      long long t0 = now_ns();
      pid_t p = fork();
      if (p == 0) _exit(0);
      if (p < 0 || waitpid(p, NULL, 0) != p) return 3;
      t[i] = now_ns() - t0;
    }
  } else if (strcmp(argv[1], "move") == 0 && argc == 6) {
    pid_t p = fork();
    if (p == 0) {
      pause();
      _exit(0);
    }
    struct timespec gap = {atoi(argv[5]) / 1000, (long)(atoi(argv[5]) % 1000) * 1000000L};
    for (int i = 0; i < n; i++) {
      nanosleep(&gap, NULL);
      long long t0 = now_ns();
      if (write_pid(i % 2 ? argv[4] : argv[3], p) < 0) {
        perror("cgroup.procs");
        kill(p, SIGKILL);
        return 4;
      }
      t[i] = now_ns() - t0;
    }
    /* back to where it started, so that both cgroups can be removed */
    write_pid(argv[3], p);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
  } else {
    return 2;
  }
  qsort(t, n, sizeof *t, cmp);
  printf("%lld\n", t[n / 2]);
  return 0;
}
