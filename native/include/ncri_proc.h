// Process-level helpers that need no clone: pidfds, fd flags, keeper messages, pty size. Plain syscalls,
// no N-API.
#pragma once

#include <sys/types.h>

#include <vector>

#include "ncri_error.h"

int ncri_pidfd_open(pid_t pid, ncri_error *err);
// The pid a pidfd refers to (from /proc/self/fdinfo), or -errno (ESRCH once reaped).
int ncri_pidfd_pid(int pidfd, ncri_error *err);
int ncri_pidfd_signal(int pidfd, int sig, ncri_error *err);
// Clears (keep = true) or sets FD_CLOEXEC on each fd: the handoff across a daemon execve.
int ncri_fd_keep_across_exec(const std::vector<int> &fds, bool keep, ncri_error *err);
int ncri_fd_dup(int fd, ncri_error *err);
// One frame to the keeper (native/keeper/keeper.cc) on its non-blocking SOCK_SEQPACKET
// socket, with `fd` (if >= 0) attached by SCM_RIGHTS; the frame goes whole or fails (EAGAIN).
int ncri_send_with_fd(int sock, const void *data, size_t len, int fd, ncri_error *err);
// One message from a non-blocking socket (EINTR retried): its length, 0 at EOF or on an
// error (the peer is gone either way), -EAGAIN when none is queued.
ssize_t ncri_recv_message(int sock, void *buf, size_t size);

// TIOCSWINSZ with each size clamped to 1..65535.
int ncri_pty_resize(int fd, int64_t cols, int64_t rows, ncri_error *err);

// F_DUPFD_CLOEXEC, then O_NONBLOCK on the open file (which the dup shares with `fd`): a
// pty master written from the loop must never block it, and libuv leaves a master's
// writes blocking (it cannot reopen a master as it reopens a slave).
int ncri_fd_dup_nonblocking(int fd, ncri_error *err);
// What a non-blocking fd takes now: the bytes written, 0 when it takes none (EAGAIN), or
// -errno. A pty master whose slave side is closed everywhere fails no write: it takes
// what fits in its buffer (~14 KB), then EAGAIN for good (ncri_fd_hung_up tells).
ssize_t ncri_fd_write_some(int fd, const void *buf, size_t len, ncri_error *err);
// Whether poll(2) reports POLLHUP on the fd now (a pty master once no fd of its slave
// side is open); never blocks.
bool ncri_fd_hung_up(int fd);
