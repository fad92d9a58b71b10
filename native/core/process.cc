// A container process after its clone: seeds, reaps and strays (process.h).
#include "process.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ncri_proc.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace ncri {

int Seed::Start(ncri_error *err) {
  char c = kMsgStart;
  // EPIPE means the child is already gone; its EOF settles the seed either way.
  if (send(sync_.get(), &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE && errno != ECONNRESET)
    return ncri_fail_errno(err, "send", "start process", nullptr);
  return 0;
}

void Seed::Release() { shutdown(sync_.get(), SHUT_WR); }

bool Seed::Drain() {
  for (;;) {
    ChildFrame f;
    ssize_t n = recv(sync_.get(), &f, sizeof f, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) return true;
    if (n == (ssize_t)sizeof f && f.kind == kFrameError && !has_error_) {
      has_error_ = true;
      error_ = f;
    }
  }
}

}  // namespace ncri

bool ncri_exit_collect(int pidfd, bool watch_failed, ncri::ExitStatus *out) {
  siginfo_t si{};
  int rc;
  while ((rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
  }
  *out = ncri::ExitStatus{};
  if (rc < 0) return true;  // ECHILD: not ours to reap
  if (si.si_pid == 0) {
    // Still running: a spurious readiness, unless the watch itself failed (then a
    // zombie-to-be nobody watches now; the stop of its PID namespace's init reaps it,
    // ncri_reap_strays).
    return watch_failed;
  }
  out->known = true;
  out->exited = si.si_code == CLD_EXITED;
  out->status = si.si_status;
  return true;
}

void ncri_describe_exit(int pidfd, const char *alive, char *out, size_t size) {
  siginfo_t si{};
  waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOWAIT | WNOHANG);
  if (si.si_pid == 0) snprintf(out, size, "%s", alive);
  else snprintf(out, size, si.si_code == CLD_EXITED ? "exit status %d" : "signal %d", si.si_status);
}

namespace {

std::string ReadLinkText(const std::string &path) {
  char buf[128];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, (size_t)n);
}

// Our children, from every thread's /proc/self/task/*/children.
std::vector<pid_t> OwnChildren() {
  std::vector<pid_t> children;
  DIR *tasks = opendir("/proc/self/task");
  if (!tasks) return children;
  while (struct dirent *d = readdir(tasks)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    std::string path = std::string("/proc/self/task/") + d->d_name + "/children";
    FILE *f = fopen(path.c_str(), "re");
    if (!f) continue;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) children.push_back(pid);
    fclose(f);
  }
  closedir(tasks);
  return children;
}

bool IsZombie(const std::string &proc_dir) {
  FILE *f = fopen((proc_dir + "/stat").c_str(), "re");
  if (!f) return false;
  char stat[512];
  size_t n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = 0;
  const char *close_paren = strrchr(stat, ')');
  return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

}  // namespace

int ncri_reap_strays(int target_pidfd, const std::unordered_set<pid_t> &watched) {
  ncri_error ignored{};
  int target = ncri_pidfd_pid(target_pidfd, &ignored);
  if (target <= 0) return 0;
  std::string ns = ReadLinkText("/proc/" + std::to_string(target) + "/ns/pid");
  if (ns.empty() || ns == ReadLinkText("/proc/self/ns/pid")) return 0;
  int reaped = 0;
  for (pid_t pid : OwnChildren()) {
    if (watched.count(pid)) continue;
    std::string base = "/proc/" + std::to_string(pid);
    if (!IsZombie(base)) continue;
    if (ReadLinkText(base + "/ns/pid") != ns) continue;
    siginfo_t si{};
    int rc;
    while ((rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG)) < 0 && errno == EINTR) {
    }
    if (rc == 0 && si.si_pid == pid) reaped++;
  }
  return reaped;
}
