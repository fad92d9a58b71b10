// Host probe: kernel identity and the facilities the runtime depends on, read once at
// start-up (never inside a request).
#include "probe.h"
#include "raw_syscall.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

int ncri_uname(ncri_uname_result *out, ncri_error *err) {
  struct utsname u;
  if (uname(&u) != 0) return ncri_fail_errno(err, "uname", "read kernel identity", nullptr);
  snprintf(out->sysname, sizeof out->sysname, "%s", u.sysname);
  snprintf(out->release, sizeof out->release, "%s", u.release);
  snprintf(out->machine, sizeof out->machine, "%s", u.machine);
  snprintf(out->nodename, sizeof out->nodename, "%s", u.nodename);
  return 0;
}

namespace {

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
constexpr unsigned kCloseRangeCloexec = 1U << 2;

// The result of a raw syscall as 0 or an errno (never touches a returned fd: callers close).
int Try(long r) { return r < 0 ? errno : 0; }

}  // namespace

int ncri_probe_syscalls(ncri_syscall_probe *out, int cap) {
  int n = 0;
  auto add = [&](const char *name, const char *since, int err, bool unknown_flag_is_einval) {
    if (n >= cap) return;
    bool missing = err == ENOSYS || (unknown_flag_is_einval && err == EINVAL);
    out[n++] = ncri_syscall_probe{name, since, !missing, err};
  };
  // An fd range that holds nothing: closes (or marks) nothing.
  add("close_range", "5.9", Try(syscall(SYS_close_range, ~0U, ~0U, 0)), false);
  add("close_range(CLOSE_RANGE_CLOEXEC)", "5.11", Try(syscall(SYS_close_range, ~0U, ~0U, kCloseRangeCloexec)), true);
  {
    struct {
      uint64_t flags, mode, resolve;
    } how = {O_PATH | O_CLOEXEC, 0, 0x10 /* RESOLVE_IN_ROOT */ | 0x02 /* RESOLVE_NO_MAGICLINKS */};
    long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    int err = Try(fd);
    if (fd >= 0) close((int)fd);
    add("openat2(RESOLVE_IN_ROOT)", "5.6", err, true);
  }
  // clone3 with a size below the first version: EINVAL when it exists, creates nothing.
  add("clone3", "5.3", Try(syscall(SYS_clone3, nullptr, 0)), false);
  {
    long fd = syscall(SYS_pidfd_open, getpid(), 0);
    int err = Try(fd);
    add("pidfd_open", "5.3", err, false);
    if (fd >= 0) {
      add("pidfd_send_signal", "5.1", Try(syscall(SYS_pidfd_send_signal, fd, 0, nullptr, 0)), false);
      // We are not our own child: ECHILD when P_PIDFD is known, EINVAL when not.
      siginfo_t si;
      add("waitid(P_PIDFD)", "5.4", Try(waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG)), true);
      close((int)fd);
    }
  }
  // Bad fds: EBADF when the call exists.
  add("open_tree", "5.2", Try(syscall(SYS_open_tree, -1, "", 0)), false);
  add("move_mount", "5.2", Try(syscall(SYS_move_mount, -1, "", -1, "", 0)), false);
  add("mount_setattr", "5.12", Try(syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0)), false);
  return n;
}
