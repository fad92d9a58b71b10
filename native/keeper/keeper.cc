// nodecri-keeper: the one process per node that outlives a crashed daemon, so that what a
// container leaves while no daemon runs (its exit status, its last output) is kept.
//
// `nodecri daemon` execs it in place (same pid, so systemd's main pid and whoever started
// the daemon see no change); it runs the real daemon (the worker) as its child and:
//   - is the child subreaper above it: when the worker dies, its containers are re-parented
//     here. Each child that is not the worker is peeked at with waitid(WNOWAIT) (its
//     /proc/<pid>/stat start time still readable), its status written to
//     <exits>/<pid>-<starttime> (atomically, before the reap: once the pid is gone from
//     /proc the record exists), then reaped, and the current worker is told;
//   - holds the read end of each container's stdout/stderr FIFO that the worker sends it
//     (SCM_RIGHTS), never reading: the pipe and its buffer live on while no worker holds it,
//     and a new worker reopens the FIFO path and reads on;
//   - restarts a worker that dies by a signal or a non-zero exit (once one has been ready:
//     a start-up failure is passed on as the keeper's own exit), backing off after quick
//     crashes and giving up after several; exits 0 when the worker does (a graceful stop);
//   - passes SIGTERM, SIGINT, SIGHUP and SIGUSR2 on to the worker. SIGKILL of the keeper
//     takes the worker with it (PR_SET_PDEATHSIG), as a kill -9 of the daemon always did.
//
// Usage: nodecri-keeper <exits-dir> <worker-path> <worker-argv0> [worker-args...]
// The worker gets NODECRI_KEEPER_FD=<its socket end>. Messages on the socket (SOCK_STREAM,
// one writer per direction) are frames: u32 type, u32 payload length, payload; see
// src/linux/keeper.ts for the worker's side. Log lines on stderr are JSON, like the
// daemon's.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// Frame types. Worker to keeper:
constexpr uint32_t kHold = 1;        // payload: key "<container id>/<stream>"; one fd attached
constexpr uint32_t kDrop = 2;        // payload: container id: close every fd held for it
constexpr uint32_t kSyncBegin = 3;   // a (re)started worker begins re-sending what it holds
constexpr uint32_t kSyncEnd = 4;     // ...and is done: what it did not re-send is closed
constexpr uint32_t kReady = 5;       // the worker serves: from now on a crash is restarted
// Keeper to worker:
constexpr uint32_t kExit = 101;      // payload: i32 pid, i32 exited(1)/signaled(2), i32 code or signal, u32 0, u64 start time

constexpr size_t kMaxPayload = 4096;
constexpr size_t kMaxOutbuf = 4 << 20;
constexpr int kMaxQuickCrashes = 5;
constexpr int64_t kQuickCrashMs = 10000;

const char *g_exits_dir;
const char *g_worker_path;
char **g_worker_argv;
pid_t g_self;
std::string g_oom_before;

pid_t g_worker = 0;
int g_sock = -1;  // our end, while a worker runs
int64_t g_worker_started_ms = 0;
bool g_ever_ready = false;
bool g_stopping = false;  // a stop signal was passed on: do not restart
int g_quick_crashes = 0;
int64_t g_restart_at_ms = -1;

std::string g_inbuf;
std::vector<int> g_infds;  // fds received, taken in order by kHold frames
std::string g_outbuf;

struct Held {
  std::string key;
  int fd;
  bool stale;
};
std::vector<Held> g_held;

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void json_escape(std::string &out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += (char)c;
    } else if (c < 0x20) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += (char)c;
    }
  }
}

// One JSON line on stderr, shaped like the daemon's pino lines (level, time, pid, msg).
// `extra` is pre-rendered JSON members (",\"k\":v") or "".
void logf(const char *level, const std::string &extra, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[96];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  std::string line = "{\"level\":\"";
  line += level;
  line += "\",\"time\":\"";
  line += when;
  line += "\",\"pid\":" + std::to_string(g_self) + ",\"component\":\"keeper\"" + extra + ",\"msg\":\"";
  json_escape(line, msg);
  line += "\"}\n";
  ssize_t off = 0;
  while (off < (ssize_t)line.size()) {
    ssize_t n = write(2, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += n;
  }
}

// Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid it names one process.
// A zombie's stat is still readable; "" when it cannot be read.
std::string start_time_of(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return "";
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return "";
  p += 2;  // past ") ": field 3 (state) starts here
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return "";
    p++;
  }
  size_t len = strcspn(p, " ");
  return std::string(p, len);
}

bool write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

// <exits>/<pid>-<start>, written to a temporary name, synced, then renamed: a reader sees
// the whole record or none.
bool write_exit_record(pid_t pid, const std::string &start, bool exited, int value) {
  std::string name = std::to_string(pid) + "-" + start;
  std::string final_path = std::string(g_exits_dir) + "/" + name;
  std::string tmp_path = std::string(g_exits_dir) + "/." + name + ".tmp";
  std::string body = "{\"pid\":" + std::to_string(pid) + ",\"startTime\":\"" + start + "\",\"exitCode\":" +
                     (exited ? std::to_string(value) : "null") + ",\"signal\":" + (exited ? "null" : std::to_string(value)) +
                     "}\n";
  int fd = open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT) {
    mkdir(g_exits_dir, 0700);
  // Two FIFO fds per container: the soft fd limit (often 1024) would cap the node at ~500
  // containers. Raised to the hard limit, as Node does for itself.
  {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
    fd = open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  if (fd < 0) return false;
  bool ok = write_all(fd, body.data(), body.size()) && fsync(fd) == 0;
  close(fd);
  if (ok && rename(tmp_path.c_str(), final_path.c_str()) == 0) {
    int dfd = open(g_exits_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    return true;
  }
  unlink(tmp_path.c_str());
  return false;
}

void flush_out() {
  while (g_sock >= 0 && !g_outbuf.empty()) {
    ssize_t n = send(g_sock, g_outbuf.data(), g_outbuf.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN) g_outbuf.clear();  // the worker is gone; its successor reads the files
      return;
    }
    g_outbuf.erase(0, (size_t)n);
  }
}

void queue_frame(uint32_t type, const void *payload, uint32_t len) {
  if (g_sock < 0) return;
  if (g_outbuf.size() + 8 + len > kMaxOutbuf) {
    logf("warn", "", "the worker reads no exit notes: dropping one (its record file stays)");
    return;
  }
  g_outbuf.append((const char *)&type, 4);
  g_outbuf.append((const char *)&len, 4);
  g_outbuf.append((const char *)payload, len);
  flush_out();
}

void close_held_if(bool (*pred)(const Held &, const std::string &), const std::string &arg) {
  for (size_t i = 0; i < g_held.size();) {
    if (pred(g_held[i], arg)) {
      close(g_held[i].fd);
      g_held.erase(g_held.begin() + (long)i);
    } else {
      i++;
    }
  }
}

void on_frame(uint32_t type, const std::string &payload) {
  switch (type) {
    case kHold: {
      if (g_infds.empty()) {
        logf("warn", "", "hold frame without an fd, ignored");
        return;
      }
      int fd = g_infds.front();
      g_infds.erase(g_infds.begin());
      for (auto &h : g_held) {
        if (h.key == payload) {
          close(h.fd);
          h.fd = fd;
          h.stale = false;
          return;
        }
      }
      g_held.push_back({payload, fd, false});
      return;
    }
    case kDrop:
      close_held_if([](const Held &h, const std::string &id) { return h.key.compare(0, id.size() + 1, id + "/") == 0; }, payload);
      return;
    case kSyncBegin:
      for (auto &h : g_held) h.stale = true;
      return;
    case kSyncEnd:
      close_held_if([](const Held &h, const std::string &) { return h.stale; }, "");
      return;
    case kReady:
      g_ever_ready = true;
      return;
    default:
      logf("warn", ",\"type\":" + std::to_string(type), "unknown frame from the worker, ignored");
  }
}

// Reads what the worker sent; returns false at EOF or on an error (the worker is gone).
bool read_worker() {
  for (;;) {
    char buf[16384];
    char cbuf[CMSG_SPACE(sizeof(int) * 32)];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(g_sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int *fds = (const int *)CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) g_infds.push_back(fds[i]);
    }
    if (mh.msg_flags & MSG_CTRUNC) logf("warn", "", "fds from the worker were cut off (too many in one message)");
    if (n == 0) return false;
    g_inbuf.append(buf, (size_t)n);
    while (g_inbuf.size() >= 8) {
      uint32_t type, len;
      memcpy(&type, g_inbuf.data(), 4);
      memcpy(&len, g_inbuf.data() + 4, 4);
      if (len > kMaxPayload) {
        logf("error", ",\"length\":" + std::to_string(len), "oversized frame from the worker: closing its socket");
        return false;
      }
      if (g_inbuf.size() < 8 + (size_t)len) break;
      on_frame(type, g_inbuf.substr(8, len));
      g_inbuf.erase(0, 8 + (size_t)len);
    }
  }
}

void close_worker_socket() {
  if (g_sock < 0) return;
  read_worker();  // what it sent before dying (fds to hold) still counts
  close(g_sock);
  g_sock = -1;
  g_inbuf.clear();
  g_outbuf.clear();
  for (int fd : g_infds) close(fd);
  g_infds.clear();
}

void start_worker() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    logf("fatal", "", "socketpair: %s", strerror(errno));
    exit(1);
  }
  // The worker's env names its end; set here, before the fork, as the child only execs.
  setenv("NODECRI_KEEPER_FD", std::to_string(sv[1]).c_str(), 1);
  pid_t pid = fork();
  if (pid < 0) {
    logf("fatal", "", "fork: %s", strerror(errno));
    exit(1);
  }
  if (pid == 0) {
    // Killing the keeper kills the worker, as a kill -9 of the daemon always did.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != g_self) _exit(1);
    // Not the keeper's OOM protection: the daemon and what it starts keep their own score.
    if (!g_oom_before.empty()) {
      int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        (void)!write(fd, g_oom_before.data(), g_oom_before.size());
        close(fd);
      }
    }
    fcntl(sv[1], F_SETFD, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(g_worker_path, g_worker_argv);
    dprintf(2, "nodecri-keeper: exec %s: %s\n", g_worker_path, strerror(errno));
    _exit(127);
  }
  close(sv[1]);
  g_sock = sv[0];
  fcntl(g_sock, F_SETFL, fcntl(g_sock, F_GETFL) | O_NONBLOCK);
  g_worker = pid;
  g_worker_started_ms = now_ms();
  logf("info", ",\"worker\":" + std::to_string(pid), "keeper started the daemon worker %d", (int)pid);
}

void on_worker_exit(const siginfo_t &si) {
  pid_t pid = g_worker;
  g_worker = 0;
  close_worker_socket();
  bool exited = si.si_code == CLD_EXITED;
  int code = exited ? si.si_status : 128 + si.si_status;
  std::string extra = ",\"worker\":" + std::to_string(pid) + (exited ? ",\"exitCode\":" + std::to_string(si.si_status)
                                                                     : ",\"signal\":" + std::to_string(si.si_status));
  if (exited && si.si_status == 0) {
    logf("info", extra, "the daemon worker stopped; keeper exiting");
    exit(0);
  }
  if (g_stopping || !g_ever_ready) {
    logf("error", extra, "the daemon worker failed %s; keeper exiting", g_stopping ? "while stopping" : "before it was ready");
    exit(code);
  }
  int64_t lived = now_ms() - g_worker_started_ms;
  g_quick_crashes = lived < kQuickCrashMs ? g_quick_crashes + 1 : 0;
  if (g_quick_crashes > kMaxQuickCrashes) {
    logf("fatal", extra, "the daemon worker crashed %d times in a row within %lld ms of its start; giving up", g_quick_crashes,
         (long long)kQuickCrashMs);
    exit(1);
  }
  int64_t delay = g_quick_crashes <= 1 ? 0 : 100LL << (g_quick_crashes - 2);
  if (delay > 5000) delay = 5000;
  logf("error", extra + ",\"restartInMs\":" + std::to_string(delay), "the daemon worker %d died; starting a new one", (int)pid);
  g_restart_at_ms = now_ms() + delay;
}

// Every child that exited: the worker, or a process re-parented here (a container, a pause
// process, an exec session's leftover) whose status is written down before it is reaped.
void reap_children() {
  for (;;) {
    siginfo_t si = {};
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD
    }
    pid_t pid = si.si_pid;
    if (pid == 0) return;
    if (pid == g_worker) {
      siginfo_t done = {};
      while (waitid(P_PID, (id_t)pid, &done, WEXITED) < 0 && errno == EINTR) {
      }
      on_worker_exit(done);
      continue;
    }
    std::string start = start_time_of(pid);
    bool exited = si.si_code == CLD_EXITED;
    bool recorded = !start.empty() && write_exit_record(pid, start, exited, si.si_status);
    if (!recorded) {
      logf("error", ",\"child\":" + std::to_string(pid), "cannot record the exit of %d: %s", (int)pid,
           start.empty() ? "no start time" : strerror(errno));
    }
    siginfo_t done = {};
    while (waitid(P_PID, (id_t)pid, &done, WEXITED) < 0 && errno == EINTR) {
    }
    // Told even when the record could not be written: the worker waiting for it goes on.
    if (start.empty()) continue;
    struct {
      int32_t pid, kind, value;
      uint32_t pad;
      uint64_t start;
    } note = {pid, exited ? 1 : 2, si.si_status, 0, strtoull(start.c_str(), nullptr, 10)};
    queue_frame(kExit, &note, sizeof note);
  }
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: nodecri-keeper <exits-dir> <worker-path> <worker-argv0> [args...]\n");
    return 2;
  }
  g_self = getpid();
  g_exits_dir = argv[1];
  g_worker_path = argv[2];
  g_worker_argv = argv + 3;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    logf("fatal", "", "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    return 1;
  }
  mkdir(g_exits_dir, 0700);
  // Two FIFO fds per container: the soft fd limit (often 1024) would cap the node at ~500
  // containers. Raised to the hard limit, as Node does for itself.
  {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  // Out of the OOM killer's way (best effort: needs CAP_SYS_RESOURCE to go below 0): if the
  // keeper went, every exit and FIFO it holds would go with it.
  {
    int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      char b[16];
      ssize_t n = read(fd, b, sizeof b);
      if (n > 0) g_oom_before.assign(b, (size_t)n);
      if (write(fd, "-999", 4) < 0) logf("info", "", "oom_score_adj -999 not set: %s", strerror(errno));
      close(fd);
    }
  }
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);  // (reset to the default in the worker by its exec)
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    logf("fatal", "", "signalfd: %s", strerror(errno));
    return 1;
  }
  start_worker();
  for (;;) {
    struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {g_sock, (short)(POLLIN | (g_outbuf.empty() ? 0 : POLLOUT)), 0}};
    int timeout = -1;
    if (g_worker == 0 && g_restart_at_ms >= 0) {
      int64_t left = g_restart_at_ms - now_ms();
      timeout = left < 0 ? 0 : (int)left;
    }
    int n = poll(pfd, g_sock >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) {
      logf("fatal", "", "poll: %s", strerror(errno));
      return 1;
    }
    if (n > 0 && (pfd[0].revents & POLLIN)) {
      struct signalfd_siginfo ssi;
      while (read(sfd, &ssi, sizeof ssi) == (ssize_t)sizeof ssi) {
        int sig = (int)ssi.ssi_signo;
        if (sig == SIGCHLD) continue;  // reaped below, every time round
        if (sig == SIGTERM || sig == SIGINT) g_stopping = true;
        if (g_worker > 0) {
          kill(g_worker, sig);
        } else if (g_stopping) {
          logf("info", "", "stop signal with no worker running; keeper exiting");
          return 0;
        }
      }
    }
    if (n > 0 && g_sock >= 0 && pfd[1].revents) {
      if (pfd[1].revents & POLLOUT) flush_out();
      if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && !read_worker()) {
        // The worker closed its end (or died): its exit comes as SIGCHLD.
        close_worker_socket();
      }
    }
    reap_children();
    if (g_worker == 0 && g_restart_at_ms >= 0 && now_ms() >= g_restart_at_ms) {
      g_restart_at_ms = -1;
      start_worker();
    }
  }
}
