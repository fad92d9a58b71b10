#include <fcntl.h>
#include <poll.h>
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

ssize_t ncri_recv_message(int sock, void *buf, size_t size) {
  for (;;) {
    ssize_t n = recv(sock, buf, size, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -EAGAIN;
    return n < 0 ? 0 : n;
  }
}

int ncri_pty_resize(int fd, int64_t cols, int64_t rows, ncri_error *err) {
  // A winsize field is 16 bits: 70000 must not wrap to 4464, and 0 (a client that knows
  // no size yet) is taken as 1.
  auto clamp = [](int64_t v) { return (unsigned short)std::min<int64_t>(std::max<int64_t>(v, 1), 65535); };
  struct winsize ws = {};
  ws.ws_col = clamp(cols);
  ws.ws_row = clamp(rows);
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return ncri_fail_errno(err, "ioctl", "resize terminal", nullptr);
  return 0;
}

int ncri_fd_dup_nonblocking(int fd, ncri_error *err) {
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (n < 0) return ncri_fail_errno(err, "fcntl", "duplicate fd", std::to_string(fd).c_str());
  int flags = fcntl(n, F_GETFL);
  if (flags < 0 || fcntl(n, F_SETFL, flags | O_NONBLOCK) < 0) {
    int e = errno;
    close(n);
    return ncri_fail(err, e, "fcntl", "make fd non-blocking", std::to_string(fd).c_str());
  }
  return n;
}

ssize_t ncri_fd_write_some(int fd, const void *buf, size_t len, ncri_error *err) {
  for (;;) {
    ssize_t n = write(fd, buf, len);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return ncri_fail_errno(err, "write", "write to terminal", std::to_string(fd).c_str());
  }
}

bool ncri_fd_hung_up(int fd) {
  struct pollfd p = {fd, POLLOUT, 0};
  int n;
  do n = poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  return n > 0 && (p.revents & POLLHUP) != 0;
}
