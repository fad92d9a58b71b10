#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "ncri_proc.h"

namespace ncri {

int ncri_pidfd_open(pid_t pid, ncri_error *err) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);  // always O_CLOEXEC
  if (fd < 0) return ncri_fail_errno(err, "pidfd_open", "open pidfd", std::to_string(pid).c_str());
  return fd;
}

int ncri_pidfd_pid(int pidfd, ncri_error *err) {
  std::string path = "/proc/self/fdinfo/" + std::to_string(pidfd);
  FILE *f = fopen(path.c_str(), "re");
  if (!f) return ncri_fail_errno(err, "open", "read pidfd info", path.c_str());
  char line[256];
  int pid = 0;
  bool found = false;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "Pid:", 4) == 0) {
      pid = atoi(line + 4);
      found = true;
      break;
    }
  }
  fclose(f);
  if (!found) return ncri_fail(err, EBADF, "open", "read pidfd info: not a pidfd", path.c_str());
  if (pid <= 0) return ncri_fail(err, ESRCH, "open", "read pidfd info: process is gone", path.c_str());
  return pid;
}

int ncri_pidfd_signal(int pidfd, int sig, ncri_error *err) {
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0)
    return ncri_fail_errno(err, "pidfd_send_signal", "signal process", nullptr);
  return 0;
}

int ncri_fd_keep_across_exec(const std::vector<int> &fds, bool keep, ncri_error *err) {
  for (int fd : fds) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return ncri_fail_errno(err, "fcntl", "read fd flags", std::to_string(fd).c_str());
    flags = keep ? (flags & ~FD_CLOEXEC) : (flags | FD_CLOEXEC);
    if (fcntl(fd, F_SETFD, flags) < 0)
      return ncri_fail_errno(err, "fcntl", "set fd flags", std::to_string(fd).c_str());
  }
  return 0;
}

int ncri_fd_dup(int fd, ncri_error *err) {
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (n < 0) return ncri_fail_errno(err, "fcntl", "duplicate fd", std::to_string(fd).c_str());
  return n;
}

int ncri_send_with_fd(int sock, const void *data, size_t len, int fd, ncri_error *err) {
  struct iovec iov = {const_cast<void *>(data), len};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ncri_fail_errno(err, "sendmsg", "send to the keeper", nullptr);
  // A small frame goes in one piece or not at all (EAGAIN); a short write would break the
  // framing, so it is an error too.
  if ((size_t)n != len) return ncri_fail(err, EMSGSIZE, "sendmsg", "send to the keeper", "short write");
  return 0;
}

int ncri_set_child_subreaper(bool on, ncri_error *err) {
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) < 0)
    return ncri_fail_errno(err, "prctl", "set child subreaper", nullptr);
  return 0;
}

// Which zombies are orphans we may reap. waitpid(-1) would steal the children of libuv
// (child_process), which then reports exit status 0 for them (libuv treats ECHILD as
// "someone stole it"). A peek with waitid(P_ALL, WNOWAIT) cannot get past the first zombie
// when that one is not ours to reap. So we list our zombie children in /proc and reap one
// by one (waitid(P_PID, WNOHANG) on a pid we just saw as a zombie does not block), skipping:
//   - `known` pids: the containers we watch by pidfd (their watcher reaps them) and any
//     child_process pids the daemon tracks;
//   - zombies in the daemon's own session: child_process children that were not detached.
// A container process always runs setsid, so its descendants are never in our session. A
// detached child_process child (its own session) must be listed in `known`.
int ncri_reap_orphans(const std::vector<pid_t> &known, std::vector<ReapedOrphan> *out, ncri_error *err) {
  pid_t self = getpid();
  pid_t sid = getsid(0);
  DIR *d = opendir("/proc");
  if (!d) return ncri_fail_errno(err, "opendir", "list processes", "/proc");
  std::vector<pid_t> zombies;
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::string path = std::string("/proc/") + e->d_name + "/stat";
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    char *close_paren = strrchr(buf, ')');
    if (!close_paren) continue;
    char state;
    int ppid, pgrp, session;
    if (sscanf(close_paren + 2, "%c %d %d %d", &state, &ppid, &pgrp, &session) != 4) continue;
    if (ppid != self || state != 'Z' || session == sid) continue;
    pid_t pid = atoi(e->d_name);
    if (std::find(known.begin(), known.end(), pid) != known.end()) continue;
    zombies.push_back(pid);
  }
  closedir(d);
  for (pid_t pid : zombies) {
    siginfo_t si{};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == pid)
      out->push_back(ReapedOrphan{pid, si.si_code, si.si_status});
  }
  return 0;
}

int ncri_pty_resize(int fd, unsigned cols, unsigned rows, ncri_error *err) {
  struct winsize ws = {};
  ws.ws_col = (unsigned short)cols;
  ws.ws_row = (unsigned short)rows;
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return ncri_fail_errno(err, "ioctl", "resize terminal", nullptr);
  return 0;
}

}  // namespace ncri
