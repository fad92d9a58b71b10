// nodecri-keeper: the one process per node that outlives a crashed daemon, so that what a
// container leaves while no daemon runs (its exit status, its last output) is kept.
//
// `nodecri daemon` execs it in place (same pid, so systemd's main pid and whoever started
// the daemon see no change); it runs the real daemon (the worker) as its child and:
//   - is the child subreaper above it: when the worker dies, its containers are re-parented
//     here. A child the worker registered (a watch frame: pid and start time, sent when a
//     container starts and again on restore) is peeked at with waitid(WNOWAIT), its status
//     written to <exits>/<pid>-<starttime> (atomically, before the reap: once the pid is
//     gone from /proc the record exists), then reaped, and the current worker is told, even
//     when the record could not be written. Every other child (a pause process, an orphan
//     of a container's own children under hostPID) is reaped without a word, at most
//     kReapsPerRound per round of the loop, so that a fork storm cannot starve the rest;
//   - holds the read end of each container's stdout/stderr FIFO that the worker sends it
//     (SCM_RIGHTS), never reading: the pipe and its buffer live on while no worker holds it,
//     and a new worker reopens the FIFO path and reads on;
//   - restarts a worker that dies by a signal or a non-zero exit (once one has been ready:
//     a start-up failure is passed on as the keeper's own exit), backing off after quick
//     crashes and giving up after several; exits 0 when the worker does (a graceful stop);
//   - blocks every catchable signal and reads them from a signalfd: SIGTERM and SIGINT are
//     passed on at once (a stop); SIGHUP, SIGUSR2, SIGUSR1 and SIGQUIT are passed on to a
//     ready worker, and kept until the next one is ready when none is; the rest are
//     ignored, so no stray signal kills the keeper (and, by PDEATHSIG, the worker). SIGKILL
//     of the keeper takes the worker with it (PR_SET_PDEATHSIG), as a kill -9 of the daemon
//     always did.
//
// Usage: nodecri-keeper <exits-dir> <worker-path> <worker-argv0> [worker-args...]
// The worker gets NODECRI_KEEPER_FD=<its socket end>. The socket is SOCK_SEQPACKET: each
// message is one frame (u32 type, u32 payload length, payload) with the fd it carries, if
// any, attached to it, so a lost or extra fd cannot shift onto another frame; see
// src/linux/keeper.ts for the worker's side. Log lines on stderr are JSON, like the
// daemon's.
#include <errno.h>
#include <dirent.h>
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

#include <deque>
#include <map>
#include <string>
#include <vector>

namespace {

// Frame types. Worker to keeper:
constexpr uint32_t kHold = 1;        // payload: key "<container id>/<stream>"; one fd attached
constexpr uint32_t kDrop = 2;        // payload: container id: close every fd held for it
constexpr uint32_t kSyncBegin = 3;   // a (re)started worker begins re-sending what it holds
constexpr uint32_t kSyncEnd = 4;     // ...and is done: what it did not re-send is closed
constexpr uint32_t kReady = 5;       // the worker serves: from now on a crash is restarted
constexpr uint32_t kWatch = 6;       // payload: "<pid> <start time>": record this process's exit
constexpr uint32_t kUnwatch = 7;     // payload: "<pid> <start time>": the worker has its exit
// Keeper to worker:
constexpr uint32_t kExit = 101;      // payload: i32 pid, i32 exited(1)/signaled(2), i32 code or signal, u32 0, u64 start time

constexpr size_t kMaxPayload = 4096;
// Orphans reaped per round of the loop, before signals and the worker's frames are looked at.
constexpr int kReapsPerRound = 64;
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
int g_stop_signal = 0;    // ...which one
bool g_worker_ready = false;  // this worker sent kReady: it has its signal handlers
sigset_t g_deferred;          // signals for a worker that is not ready yet
bool g_more_children = false;  // the last reap round stopped at its limit
int g_spare_fd = -1;           // closed to make room when an open fails with EMFILE
int g_quick_crashes = 0;
int64_t g_restart_at_ms = -1;

// Frames for the worker that the socket did not take yet (one message each). Only notes
// of watched processes are queued, so their number is bounded by the worker's containers.
std::deque<std::string> g_outq;

// Processes whose exit the worker wants recorded: pid -> start time (and whether a
// restarted worker has registered it again since kSyncBegin).
struct Watched {
  std::string start;
  bool stale;
};
std::map<pid_t, Watched> g_watched;

struct Held {
  std::string key;
  int fd;
  bool stale;
};
std::vector<Held> g_held;

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void JsonEscape(std::string &out, const char *s) {
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
void Logf(const char *level, const std::string &extra, const char *fmt, ...) {
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
  JsonEscape(line, msg);
  line += "\"}\n";
  ssize_t off = 0;
  while (off < (ssize_t)line.size()) {
    ssize_t n = write(2, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += n;
  }
}

// open(), but at EMFILE the spare fd is given up for it (and taken again after): the
// keeper holds two FIFO fds per container, and running out must not cost an exit record.
int OpenSpared(const char *path, int flags, mode_t mode = 0) {
  int fd = open(path, flags, mode);
  if (fd < 0 && errno == EMFILE && g_spare_fd >= 0) {
    close(g_spare_fd);
    g_spare_fd = -1;
    fd = open(path, flags, mode);
    int saved = errno;
    g_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    errno = saved;
  }
  return fd;
}

// Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid it names one process.
// A zombie's stat is still readable; "" when it cannot be read.
std::string StartTimeOf(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = OpenSpared(path, O_RDONLY | O_CLOEXEC);
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

bool WriteAll(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= (size_t)n;
  }
  return true;
}

// <exits>/<pid>-<start>, written to a temporary name, then renamed: a reader sees the whole
// record or none. Not synced: the run root is a tmpfs (and were it not, a power cut ends
// the containers too, so no record of that boot would be read).
bool WriteExitRecord(pid_t pid, const std::string &start, bool exited, int value) {
  std::string name = std::to_string(pid) + "-" + start;
  std::string final_path = std::string(g_exits_dir) + "/" + name;
  std::string tmp_path = std::string(g_exits_dir) + "/." + name + ".tmp";
  std::string body = "{\"pid\":" + std::to_string(pid) + ",\"startTime\":\"" + start + "\",\"exitCode\":" +
                     (exited ? std::to_string(value) : "null") + ",\"signal\":" + (exited ? "null" : std::to_string(value)) +
                     "}\n";
  int fd = OpenSpared(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT) {
    mkdir(g_exits_dir, 0700);
    fd = OpenSpared(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  if (fd < 0) return false;
  bool ok = WriteAll(fd, body.data(), body.size());
  int saved = errno;
  close(fd);
  if (ok && rename(tmp_path.c_str(), final_path.c_str()) == 0) return true;
  saved = errno;
  unlink(tmp_path.c_str());
  errno = saved;
  return false;
}

// Records left half-written by a keeper or worker that died mid-write: at the keeper's
// start no writer runs, so every temporary name is stale.
void RemoveStaleTemporaries() {
  DIR *d = opendir(g_exits_dir);
  if (!d) return;
  while (struct dirent *e = readdir(d)) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.' && len > 5 && strcmp(e->d_name + len - 4, ".tmp") == 0) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

void FlushOut() {
  while (g_sock >= 0 && !g_outq.empty()) {
    const std::string &m = g_outq.front();
    ssize_t n = send(g_sock, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN) g_outq.clear();  // the worker is gone; its successor reads the files
      return;
    }
    g_outq.pop_front();
  }
}

void QueueFrame(uint32_t type, const void *payload, uint32_t len) {
  if (g_sock < 0) return;
  std::string m;
  m.append((const char *)&type, 4);
  m.append((const char *)&len, 4);
  m.append((const char *)payload, len);
  g_outq.push_back(std::move(m));
  FlushOut();
}

// "<pid> <start time>" (both decimal) of a watch frame.
bool ParseWatch(const std::string &payload, pid_t *pid, std::string *start) {
  size_t sp = payload.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= payload.size()) return false;
  for (size_t i = 0; i < payload.size(); i++)
    if (i != sp && (payload[i] < '0' || payload[i] > '9')) return false;
  long v = strtol(payload.c_str(), nullptr, 10);
  if (v <= 0 || v > INT32_MAX) return false;
  *pid = (pid_t)v;
  *start = payload.substr(sp + 1);
  return true;
}

void DeliverDeferred() {
  if (g_worker <= 0) return;
  for (int s = 1; s < NSIG; s++) {
    if (sigismember(&g_deferred, s) == 1) kill(g_worker, s);
  }
  sigemptyset(&g_deferred);
}

void CloseHeldIf(bool (*pred)(const Held &, const std::string &), const std::string &arg) {
  for (size_t i = 0; i < g_held.size();) {
    if (pred(g_held[i], arg)) {
      close(g_held[i].fd);
      g_held.erase(g_held.begin() + (long)i);
    } else {
      i++;
    }
  }
}

// One frame, with the fds that came attached to its message (closed here unless held).
void OnFrame(uint32_t type, const std::string &payload, std::vector<int> &fds) {
  switch (type) {
    case kHold: {
      if (fds.empty()) {
        Logf("warn", "", "hold frame without an fd (lost at the fd limit?), ignored");
        return;
      }
      int fd = fds.front();
      fds.erase(fds.begin());
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
      CloseHeldIf([](const Held &h, const std::string &id) { return h.key.compare(0, id.size() + 1, id + "/") == 0; }, payload);
      return;
    case kSyncBegin:
      for (auto &h : g_held) h.stale = true;
      for (auto &w : g_watched) w.second.stale = true;
      return;
    case kSyncEnd:
      CloseHeldIf([](const Held &h, const std::string &) { return h.stale; }, "");
      for (auto it = g_watched.begin(); it != g_watched.end();) it = it->second.stale ? g_watched.erase(it) : std::next(it);
      return;
    case kReady:
      g_ever_ready = true;
      g_worker_ready = true;
      DeliverDeferred();
      return;
    case kWatch:
    case kUnwatch: {
      pid_t pid;
      std::string start;
      if (!ParseWatch(payload, &pid, &start)) {
        Logf("warn", "", "bad watch frame from the worker, ignored");
        return;
      }
      if (type == kWatch) {
        g_watched[pid] = {start, false};
      } else {
        auto it = g_watched.find(pid);
        if (it != g_watched.end() && it->second.start == start) g_watched.erase(it);
      }
      return;
    }
    default:
      Logf("warn", ",\"type\":" + std::to_string(type), "unknown frame from the worker, ignored");
  }
}

// Reads what the worker sent, one message (one frame) at a time; returns false at EOF or on
// an error (the worker is gone). A malformed frame is logged and skipped: the socket stays.
bool ReadWorker() {
  for (;;) {
    char buf[8 + kMaxPayload + 1];
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 8)];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(g_sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN;
    std::vector<int> fds;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int *p = (const int *)CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) fds.push_back(p[i]);
    }
    if (mh.msg_flags & MSG_CTRUNC) Logf("warn", "", "an fd from the worker was cut off (at the fd limit?)");
    if (n == 0 && fds.empty()) return false;
    uint32_t type = 0, len = 0;
    if (n >= 8) {
      memcpy(&type, buf, 4);
      memcpy(&len, buf + 4, 4);
    }
    if (n < 8 || (mh.msg_flags & MSG_TRUNC) || len > kMaxPayload || (size_t)n != 8 + (size_t)len) {
      Logf("error", ",\"length\":" + std::to_string(n), "malformed frame from the worker, ignored");
    } else {
      OnFrame(type, std::string(buf + 8, len), fds);
    }
    // Whatever came attached and was not held: one extra fd never shifts onto another frame.
    for (int fd : fds) close(fd);
  }
}

void CloseWorkerSocket() {
  if (g_sock < 0) return;
  ReadWorker();  // what it sent before dying (fds to hold) still counts
  close(g_sock);
  g_sock = -1;
  g_outq.clear();
}

void StartWorker() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    Logf("fatal", "", "socketpair: %s", strerror(errno));
    exit(1);
  }
  // The worker's env names its end; set here, before the fork, as the child only execs.
  setenv("NODECRI_KEEPER_FD", std::to_string(sv[1]).c_str(), 1);
  pid_t pid = fork();
  if (pid < 0) {
    Logf("fatal", "", "fork: %s", strerror(errno));
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
    // The keeper blocks every signal (and ignores none): the worker starts with none blocked.
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
  g_worker_ready = false;
  g_worker_started_ms = NowMs();
  Logf("info", ",\"worker\":" + std::to_string(pid), "keeper started the daemon worker %d", (int)pid);
}

void OnWorkerExit(const siginfo_t &si) {
  pid_t pid = g_worker;
  g_worker = 0;
  CloseWorkerSocket();
  bool exited = si.si_code == CLD_EXITED;
  int code = exited ? si.si_status : 128 + si.si_status;
  std::string extra = ",\"worker\":" + std::to_string(pid) + (exited ? ",\"exitCode\":" + std::to_string(si.si_status)
                                                                     : ",\"signal\":" + std::to_string(si.si_status));
  // A stop signal that landed before the worker's handler was in place killed it: still the
  // stop that was asked for.
  if ((exited && si.si_status == 0) || (g_stopping && si.si_code == CLD_KILLED && si.si_status == g_stop_signal)) {
    Logf("info", extra, "the daemon worker stopped; keeper exiting");
    exit(0);
  }
  if (g_stopping || !g_ever_ready) {
    Logf("error", extra, "the daemon worker failed %s; keeper exiting", g_stopping ? "while stopping" : "before it was ready");
    exit(code);
  }
  int64_t lived = NowMs() - g_worker_started_ms;
  g_quick_crashes = lived < kQuickCrashMs ? g_quick_crashes + 1 : 0;
  if (g_quick_crashes > kMaxQuickCrashes) {
    Logf("fatal", extra, "the daemon worker crashed %d times in a row within %lld ms of its start; giving up", g_quick_crashes,
         (long long)kQuickCrashMs);
    exit(1);
  }
  int64_t delay = g_quick_crashes <= 1 ? 0 : 100LL << (g_quick_crashes - 2);
  if (delay > 5000) delay = 5000;
  Logf("error", extra + ",\"restartInMs\":" + std::to_string(delay), "the daemon worker %d died; starting a new one", (int)pid);
  g_restart_at_ms = NowMs() + delay;
}

// Children that exited: the worker, or processes re-parented here (a container, a pause
// process, an exec session's leftover). A watched one's status is written down before it is
// reaped; at most kReapsPerRound orphans per call (g_more_children says more are waiting).
void ReapChildren() {
  g_more_children = false;
  for (int reaped = 0;; reaped++) {
    if (reaped == kReapsPerRound) {
      g_more_children = true;
      return;
    }
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
      OnWorkerExit(done);
      continue;
    }
    auto watched = g_watched.find(pid);
    std::string start;
    if (watched != g_watched.end()) {
      // The registered start time names it; what /proc says (when it can be read) must agree,
      // or this is another process under a reused pid.
      std::string now = StartTimeOf(pid);
      if (now.empty() || now == watched->second.start) start = watched->second.start;
      g_watched.erase(watched);
    }
    bool exited = si.si_code == CLD_EXITED;
    if (!start.empty() && !WriteExitRecord(pid, start, exited, si.si_status)) {
      Logf("error", ",\"child\":" + std::to_string(pid), "cannot record the exit of %d: %s", (int)pid, strerror(errno));
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
    QueueFrame(kExit, &note, sizeof note);
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
    Logf("fatal", "", "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    return 1;
  }
  mkdir(g_exits_dir, 0700);
  RemoveStaleTemporaries();
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
      if (write(fd, "-999", 4) < 0) Logf("info", "", "oom_score_adj -999 not set: %s", strerror(errno));
      close(fd);
    }
  }
  g_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  // Every catchable signal but the ones a fault raises, read from the signalfd below; none
  // is set to SIG_IGN (that would pass through the worker's exec), blocking is enough.
  sigset_t mask;
  sigfillset(&mask);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) sigdelset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  sigemptyset(&g_deferred);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    Logf("fatal", "", "signalfd: %s", strerror(errno));
    return 1;
  }
  StartWorker();
  for (;;) {
    struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {g_sock, (short)(POLLIN | (g_outq.empty() ? 0 : POLLOUT)), 0}};
    int timeout = g_more_children ? 0 : -1;
    if (g_worker == 0 && g_restart_at_ms >= 0) {
      int64_t left = g_restart_at_ms - NowMs();
      if (left < 0) left = 0;
      if (timeout < 0 || left < timeout) timeout = (int)left;
    }
    int n = poll(pfd, g_sock >= 0 ? 2 : 1, timeout);
    if (n < 0 && errno != EINTR) {
      Logf("fatal", "", "poll: %s", strerror(errno));
      return 1;
    }
    if (n > 0 && (pfd[0].revents & POLLIN)) {
      struct signalfd_siginfo ssi;
      while (read(sfd, &ssi, sizeof ssi) == (ssize_t)sizeof ssi) {
        int sig = (int)ssi.ssi_signo;
        if (sig == SIGCHLD) continue;  // reaped below, every time round
        if (sig == SIGTERM || sig == SIGINT) {
          g_stopping = true;
          g_stop_signal = sig;
          if (g_worker > 0) {
            kill(g_worker, sig);
            continue;
          }
          Logf("info", "", "stop signal with no worker running; keeper exiting");
          return 0;
        }
        if (sig == SIGHUP || sig == SIGUSR2 || sig == SIGUSR1 || sig == SIGQUIT) {
          // Before its kReady the worker may have no handler yet (HUP's default kills it):
          // kept until it is ready, or until the next worker is.
          if (g_worker > 0 && g_worker_ready) kill(g_worker, sig);
          else sigaddset(&g_deferred, sig);
          continue;
        }
        // (Not logged for SIGPIPE: a log line to a closed stderr raises the next one.)
        if (sig != SIGPIPE) Logf("info", ",\"signal\":" + std::to_string(sig), "signal ignored");
      }
    }
    if (n > 0 && g_sock >= 0 && pfd[1].revents) {
      if (pfd[1].revents & POLLOUT) FlushOut();
      if ((pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) && !ReadWorker()) {
        // The worker closed its end (or died): its exit comes as SIGCHLD.
        CloseWorkerSocket();
      }
    }
    ReapChildren();
    if (g_worker == 0 && g_restart_at_ms >= 0 && NowMs() >= g_restart_at_ms) {
      g_restart_at_ms = -1;
      StartWorker();
    }
  }
}
