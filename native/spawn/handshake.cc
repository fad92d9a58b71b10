// Stage 3 of a spawn, the handshake (stages.h): SpawnSetup reads the child's frames on the
// sync socket from the event loop, one non-blocking Step per readable socket, answers them
// (id maps, the pidfd held) and ends at READY, or kills and hands over what it made.
#include "stages.h"

#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace ncri {
namespace {

int WriteWhole(const std::string &path, const std::string &text, ncri_error *err, const char *step) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ncri_fail_errno(err, "open", step, path.c_str());
  ssize_t n = write(fd, text.data(), text.size());
  int saved = errno;
  close(fd);
  if (n != (ssize_t)text.size()) return ncri_fail(err, n < 0 ? saved : EIO, "write", step, path.c_str());
  return 0;
}

}  // namespace

namespace {
// The pid a pidfd refers to (its fdinfo's Pid: line): > 0, -1 once reaped, or 0 when the
// fd is not a pidfd at all.
int PidfdPid(int fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  char line[256];
  int pid = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "Pid:", 4) == 0) {
      pid = atoi(line + 4);
      if (pid == 0) pid = -1;
      break;
    }
  }
  fclose(f);
  return pid;
}
}  // namespace

void SpawnSetup::Reject(int fd) {
  if (fd < 0) return;
  if (PidfdPid(fd) != 0) rejected_pidfds_.emplace_back(fd);
  else close(fd);
}

void SpawnSetup::TryReapIntermediate() {
  if (intermediate_pidfd_.get() < 0) return;
  siginfo_t si{};
  int rc;
  while ((rc = waitid((idtype_t)P_PIDFD, (id_t)intermediate_pidfd_.get(), &si, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
  }
  if (rc == 0 && si.si_pid == 0) return;  // still exiting
  intermediate_pidfd_.reset();
}

int SpawnSetup::TakeIntermediate() {
  TryReapIntermediate();
  return intermediate_pidfd_.release();
}

std::vector<int> SpawnSetup::Abort() {
  std::vector<int> left;
  for (Fd *fd : {&pidfd_, &intermediate_pidfd_}) {
    if (fd->get() < 0) continue;
    PidfdSendSignal(fd->get(), SIGKILL);
    left.push_back(fd->release());
  }
  for (Fd &fd : rejected_pidfds_) {
    PidfdSendSignal(fd.get(), SIGKILL);
    left.push_back(fd.release());
  }
  rejected_pidfds_.clear();
  // The sync socket goes now: a child still waiting for a byte sees EOF and exits.
  sync_.reset();
  return left;
}

void SpawnSetup::Finish(SpawnResult *out) {
  out->pid = pid_;
  out->pidfd = pidfd_.release();
  out->sync_fd = sync_.release();
  for (int i = 0; i < 3; i++) out->stdio[i] = stdio_[i].release();
  out->terminal = terminal_.release();
  out->warnings = std::move(warnings_);
  out->memory = std::move(memory_);
}

int SpawnSetup::Step(ncri_error *err) {
  for (;;) {
    TryReapIntermediate();
    ChildFrame f;
    // A frame carries at most one fd (the pty master, a pidfd): receive it close-on-exec.
    // Room for more, so that extra fds are seen (and rejected) rather than cut off: the
    // kernel packs two ints into CMSG_SPACE(sizeof(int)) on 64-bit.
    constexpr size_t kMaxFds = 8;
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(int) * kMaxFds)];
    } control;
    struct iovec iov = {&f, sizeof f};
    struct msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t got = recvmsg(sync_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (got < 0) return ncri_fail_errno(err, "recv", "wait for container setup", nullptr);
    // Every fd of every SCM_RIGHTS header: none may leak, whatever the child sent.
    int fds[kMaxFds * 2];
    size_t n_fds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n && n_fds < sizeof fds / sizeof fds[0]; i++)
        memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    const char *bad = nullptr;
    if (msg.msg_flags & MSG_CTRUNC) bad = "more fds from the child than a frame carries";
    else if (msg.msg_flags & MSG_TRUNC) bad = "a frame longer than a ChildFrame";
    else if (n_fds > 1) bad = "more than one fd with a frame";
    else if (got != 0 && got != (ssize_t)sizeof f) bad = "a short frame";
    if (bad) {
      for (size_t i = 0; i < n_fds; i++) Reject(fds[i]);
      return ncri_fail(err, EPROTO, "recvmsg", "wait for container setup", bad);
    }
    int passed = n_fds == 1 ? fds[0] : -1;
    if (got == 0) {
      Reject(passed);
      // Every holder of the child end is gone: the child died without a word (a signal, a
      // crash). Say how if it is a zombie already (EOF comes as its fds close, a moment
      // before it is one): never wait here.
      char what[64];
      ncri_describe_exit(pidfd_.get(), "before reporting", what, sizeof what);
      return ncri_fail(err, ECHILD, "recv", "child died during container setup", what);
    }
    int rc = HandleFrame(f, passed, err);
    if (rc != 0) return rc;
  }
}

// One whole frame; `passed` is the fd it carried (-1: none). Takes the fd: it becomes the
// terminal or the child's pidfd, or is rejected (Reject: a pidfd is kept for Abort).
int SpawnSetup::HandleFrame(const ChildFrame &f, int passed, ncri_error *err) {
  struct Passed {
    SpawnSetup *self;
    int fd;
    ~Passed() { self->Reject(fd); }
    int take() {
      int v = fd;
      fd = -1;
      return v;
    }
  } fd{this, passed};
  if (awaiting_pid_ && f.kind != kFramePid && f.kind != kFrameError && f.kind != kFrameIdMaps)
    return ncri_fail(err, EPROTO, "recv", "wait for container setup", "a frame before the intermediate's pid");
  switch (f.kind) {
    case kFrameReady:
      if (wants_terminal_ && terminal_.get() < 0)
        return ncri_fail(err, EPROTO, "recvmsg", "receive the container's pty", "no pty before ready");
      return 1;
    case kFrameIdMaps: {
      // The init (or the intermediate: still pid_) has made its user namespace. Two short
      // procfs writes.
      std::string base = "/proc/" + std::to_string(pid_);
      if (WriteWhole(base + "/uid_map", uid_map_, err, "write uid mappings") < 0 ||
          WriteWhole(base + "/gid_map", gid_map_, err, "write gid mappings") < 0)
        return -err->err;
      char c = kMsgIdMapsWritten;
      if (send(sync_.get(), &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
        return ncri_fail_errno(err, "send", "release child after id mappings", nullptr);
      return 0;
    }
    case kFrameError:
      ncri_frame_error(f, memory_.get(), err);
      return -err->err;
    case kFrameWarning: {
      ncri_error w{};
      ncri_frame_error(f, memory_.get(), &w);
      warnings_.push_back(std::string(w.step) + " " + w.path + ": " + strerrorname_np(w.err) + ", clamped to 0");
      return 0;
    }
    case kFrameTerminal:
      if (!wants_terminal_ || terminal_.get() >= 0 || fd.fd < 0)
        return ncri_fail(err, EPROTO, "recvmsg", "receive the container's pty", nullptr);
      terminal_.reset(fd.take());
      return 0;
    case kFramePid: {
      // The intermediate cloned the real child with CLONE_PARENT|CLONE_PIDFD: our child,
      // and this pidfd is the one the clone made. From now on we watch it; the intermediate
      // exits (reaped when it has: TryReapIntermediate).
      if (!awaiting_pid_ || f.value <= 0 || fd.fd < 0)
        return ncri_fail(err, EPROTO, "recv", "wait for container setup", "an unexpected pid frame");
      // The pid we report is the pidfd's own (never the frame's word alone); they must agree.
      int actual = PidfdPid(fd.fd);
      if (actual == 0) return ncri_fail(err, EPROTO, "recv", "wait for container setup", "a pid frame without a pidfd");
      if (actual < 0) return ncri_fail(err, ECHILD, "recv", "child died during container setup", "before its pid arrived");
      if (actual != (int)f.value)
        return ncri_fail(err, EPROTO, "recv", "wait for container setup", "a pid frame whose pidfd names another pid");
      awaiting_pid_ = false;
      intermediate_pidfd_ = std::move(pidfd_);
      pidfd_.reset(fd.take());
      pid_ = (pid_t)actual;
      // Only now may the child speak (InnerMain): we hold what kills and reaps it.
      char c = kMsgPidHeld;
      if (send(sync_.get(), &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
        return ncri_fail_errno(err, "send", "release the container process", nullptr);
      return 0;
    }
    default:
      return ncri_fail(err, EPROTO, "recv", "wait for container setup", "an unknown frame");
  }
}

}  // namespace ncri
