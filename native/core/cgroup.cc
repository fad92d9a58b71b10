// cgroupfs access for both hierarchies (see cgroup.h for the contract). Plain syscalls, no
// N-API: this runs on libuv pool threads.
//
// Paths are opened once and everything below is reached relative to a directory fd with
// O_NOFOLLOW, and every directory handed in from outside is checked to be on a cgroup
// filesystem first: a wrong path from a caller then fails instead of writing into /etc.
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include "unique_fd.h"

namespace {

using ncri::Fd;

// TEMP_FAILURE_RETRY: cgroupfs operations can sleep interruptibly (cgroup_mutex, freezer),
// so a signal delivered to this pool thread must not turn into a spurious failure.
template <typename F>
auto RetryEintr(F f) -> decltype(f()) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(int ms) {
  struct timespec req = {ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  struct timespec rem;
  while (nanosleep(&req, &rem) < 0 && errno == EINTR) req = rem;
}

std::string Join(const std::string &dir, const std::string &name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// A control file name must be a single component: no traversal out of the cgroup dir.
bool ValidName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

bool IsCgroupFs(int fd) {
  struct statfs st;
  if (RetryEintr([&] { return fstatfs(fd, &st); }) < 0) return false;
  return st.f_type == CGROUP_SUPER_MAGIC || st.f_type == CGROUP2_SUPER_MAGIC;
}

// Opens a directory given by absolute path and checks that it is on cgroupfs. `flags` is
// O_PATH (enough for *at() calls) or O_RDONLY (to list it). Returns the fd or -errno;
// EINVAL (with the fstatfs syscall named) when it is not a cgroup filesystem.
int OpenCgroupDir(const std::string &path, int flags, const char *step, ncri_error *err) {
  if (path.empty() || path[0] != '/') return ncri_fail(err, EINVAL, "open", step, path.c_str());
  Fd fd(RetryEintr([&] { return open(path.c_str(), flags | O_DIRECTORY | O_CLOEXEC); }));
  if (fd.get() < 0) return ncri_fail_errno(err, "open", step, path.c_str());
  if (!IsCgroupFs(fd.get())) return ncri_fail(err, EINVAL, "fstatfs", step, path.c_str());
  return fd.release();
}

// Reads a whole file relative to dirfd. Returns 0 or -errno; *syscall names what failed.
int ReadAt(int dirfd, const std::string &name, std::string *out, const char **syscall) {
  *syscall = "openat";
  Fd fd(RetryEintr([&] { return openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC); }));
  if (fd.get() < 0) return -errno;
  *syscall = "read";
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = RetryEintr([&] { return read(fd.get(), buf, sizeof buf); });
    if (n < 0) return -errno;
    if (n == 0) return 0;
    out->append(buf, static_cast<size_t>(n));
  }
}

// Writes a value with one write(2), relative to dirfd: cgroupfs parses each write on its
// own, so a value split over two writes would be two (wrong) values.
int WriteAt(int dirfd, const std::string &name, const std::string &value, const char **syscall) {
  *syscall = "openat";
  Fd fd(RetryEintr([&] { return openat(dirfd, name.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC); }));
  if (fd.get() < 0) return -errno;
  *syscall = "write";
  ssize_t n = RetryEintr([&] { return write(fd.get(), value.data(), value.size()); });
  if (n < 0) return -errno;
  if (static_cast<size_t>(n) != value.size()) return -EIO;
  return 0;
}

bool IsBlank(const std::string &s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\t'; });
}

// Names of the sub-directories (child cgroups) of an open directory. Takes a fresh O_RDONLY
// fd because fdopendir needs one and owns it afterwards.
int ListSubdirs(int dirfd, std::vector<std::string> *out) {
  int fd = RetryEintr([&] { return openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return -e;
  }
  errno = 0;
  while (struct dirent *de = readdir(d)) {
    if (de->d_type != DT_DIR) continue;  // cgroupfs always fills d_type
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    out->emplace_back(de->d_name);
  }
  int e = errno;
  closedir(d);
  return e ? -e : 0;
}

// Delays between rmdir attempts while the kernel reports EBUSY: about 0.4 s in all, which
// covers a task that was just killed and is still being torn down, without letting a
// cgroup that really has tasks hold a pool thread for long.
constexpr int kRmdirBackoffMs[] = {1, 2, 4, 8, 16, 32, 64, 100, 100, 100};

int RmdirRetry(int parentfd, const std::string &name, const std::string &path, ncri_error *err) {
  for (size_t attempt = 0;; attempt++) {
    if (RetryEintr([&] { return unlinkat(parentfd, name.c_str(), AT_REMOVEDIR); }) == 0) return 0;
    if (errno == ENOENT) return 0;
    if (errno != EBUSY || attempt >= sizeof kRmdirBackoffMs / sizeof kRmdirBackoffMs[0]) {
      return ncri_fail_errno(err, "rmdir", "remove cgroup", path.c_str());
    }
    SleepMs(kRmdirBackoffMs[attempt]);
  }
}

// Removes parentfd/name and everything below it, children first (rmdir of a cgroup with
// child cgroups is EBUSY for good, so the order matters).
int RemoveTree(int parentfd, const std::string &name, const std::string &path, int depth,
               ncri_error *err) {
  // cgroupfs refuses nesting beyond cgroup.max.depth anyway; this only bounds the stack.
  if (depth > 256) return ncri_fail(err, ELOOP, "openat", "remove cgroup", path.c_str());
  Fd dir(RetryEintr([&] {
    return openat(parentfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }));
  if (dir.get() < 0) {
    if (errno == ENOENT) return 0;
    return ncri_fail_errno(err, "openat", "remove cgroup", path.c_str());
  }
  std::vector<std::string> children;
  int r = ListSubdirs(dir.get(), &children);
  if (r == -ENOENT) return 0;  // removed under us
  if (r < 0) return ncri_fail(err, -r, "readdir", "list child cgroups", path.c_str());
  for (const std::string &child : children) {
    r = RemoveTree(dir.get(), child, Join(path, child), depth + 1, err);
    if (r < 0) return r;
  }
  return RmdirRetry(parentfd, name, path, err);
}

// Appends the pids in dirfd's cgroup.procs and in every sub-cgroup's, recursively.
int CollectPids(int dirfd, const std::string &path, int depth, std::vector<pid_t> *pids,
                ncri_error *err) {
  if (depth > 256) return ncri_fail(err, ELOOP, "openat", "list cgroup tasks", path.c_str());
  std::string text;
  const char *syscall;
  int r = ReadAt(dirfd, "cgroup.procs", &text, &syscall);
  if (r == -ENOENT || r == -ENODEV) return 0;  // the cgroup went away meanwhile
  if (r < 0) return ncri_fail(err, -r, syscall, "list cgroup tasks", Join(path, "cgroup.procs").c_str());
  const char *p = text.c_str();
  while (*p) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) {
      p++;
      continue;
    }
    if (v > 0) pids->push_back(static_cast<pid_t>(v));
    p = end;
  }
  std::vector<std::string> children;
  r = ListSubdirs(dirfd, &children);
  if (r == -ENOENT) return 0;
  if (r < 0) return ncri_fail(err, -r, "readdir", "list child cgroups", path.c_str());
  for (const std::string &child : children) {
    Fd sub(RetryEintr([&] {
      return openat(dirfd, child.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }));
    if (sub.get() < 0) {
      if (errno == ENOENT) continue;
      return ncri_fail_errno(err, "openat", "list cgroup tasks", Join(path, child).c_str());
    }
    r = CollectPids(sub.get(), Join(path, child), depth + 1, pids, err);
    if (r < 0) return r;
  }
  return 0;
}

int CollectAllPids(const std::vector<std::string> &dirs, std::vector<pid_t> *pids, ncri_error *err) {
  pids->clear();
  for (const std::string &dir : dirs) {
    Fd fd(OpenCgroupDir(dir, O_PATH, "list cgroup tasks", err));
    if (fd.get() < 0) {
      if (err->err == ENOENT) continue;  // already removed: nothing to kill there
      return -err->err;
    }
    int r = CollectPids(fd.get(), dir, 0, pids, err);
    if (r < 0) return r;
  }
  std::sort(pids->begin(), pids->end());
  pids->erase(std::unique(pids->begin(), pids->end()), pids->end());
  return 0;
}

// Freezes (or thaws) a cgroup for the duration of one kill round. The destructor thaws
// whatever path the round leaves by, so an error can never leave tasks frozen.
class Freezer {
 public:
  Freezer(const std::string &dir, int version) : dir_(dir), version_(version) {}
  ~Freezer() {
    if (frozen_) {
      ncri_error ignored{};
      Thaw(&ignored);
    }
  }

  // Returns 0 (also when there is no freezer to use) or -errno.
  int Freeze(ncri_error *err) {
    if (dir_.empty()) return 0;
    Fd fd(OpenCgroupDir(dir_, O_PATH, "freeze cgroup", err));
    if (fd.get() < 0) return err->err == ENOENT ? 0 : -err->err;
    const char *syscall;
    int r = WriteAt(fd.get(), StateFile(), version_ == 1 ? "FROZEN" : "1", &syscall);
    if (r == -ENOENT) return 0;  // no freezer here after all: kill unfrozen
    if (r < 0) return ncri_fail(err, -r, syscall, "freeze cgroup", Join(dir_, StateFile()).c_str());
    frozen_ = true;
    // Wait (briefly) for the freeze to take: tasks in uninterruptible sleep can hold it in
    // FREEZING. Past the wait we signal anyway; the only cost is the pid-reuse window the
    // freezer was meant to close.
    int64_t until = NowMs() + 100;
    for (int delay = 1; NowMs() < until; delay = std::min(delay * 2, 10)) {
      std::string text;
      if (ReadAt(fd.get(), version_ == 1 ? "freezer.state" : "cgroup.events", &text, &syscall) < 0) break;
      if (version_ == 1 ? text.compare(0, 6, "FROZEN") == 0 : text.find("frozen 1") != std::string::npos) break;
      SleepMs(delay);
    }
    return 0;
  }

  int Thaw(ncri_error *err) {
    if (!frozen_) return 0;
    frozen_ = false;
    Fd fd(OpenCgroupDir(dir_, O_PATH, "thaw cgroup", err));
    if (fd.get() < 0) return err->err == ENOENT ? 0 : -err->err;
    const char *syscall;
    int r = WriteAt(fd.get(), StateFile(), version_ == 1 ? "THAWED" : "0", &syscall);
    if (r < 0 && r != -ENOENT) {
      return ncri_fail(err, -r, syscall, "thaw cgroup", Join(dir_, StateFile()).c_str());
    }
    return 0;
  }

 private:
  const char *StateFile() const { return version_ == 1 ? "freezer.state" : "cgroup.freeze"; }
  std::string dir_;
  int version_;
  bool frozen_ = false;
};

// One manual kill round: freeze, list, SIGKILL each, thaw. The v1 freezer holds a frozen
// task even against SIGKILL, so the thaw is what lets them die.
int KillRound(const ncri_cgroup_kill_spec &spec, ncri_error *err) {
  Freezer freezer(spec.freezer_dir, spec.freezer_version);
  int r = freezer.Freeze(err);
  if (r < 0) return r;
  std::vector<pid_t> pids;
  r = CollectAllPids(spec.procs_dirs, &pids, err);
  if (r < 0) return r;
  for (pid_t pid : pids) {
    // Never take the runtime down with a cgroup it was mistakenly placed in.
    if (pid == getpid()) return ncri_fail(err, EPERM, "kill", "refuse to kill the runtime itself", spec.procs_dirs[0].c_str());
    if (kill(pid, SIGKILL) < 0 && errno != ESRCH) {
      return ncri_fail_errno(err, "kill", "kill cgroup tasks", spec.procs_dirs[0].c_str());
    }
  }
  return freezer.Thaw(err);
}

}  // namespace

int ncri_cgroup_mkdir(const std::string &root, const std::string &rel,
                      const std::vector<std::string> &inherit_files, ncri_error *err) {
  Fd cur(OpenCgroupDir(root, O_PATH, "create cgroup", err));
  if (cur.get() < 0) return -err->err;
  for (const std::string &f : inherit_files) {
    if (!ValidName(f)) return ncri_fail(err, EINVAL, "openat", "check inherited file name", f.c_str());
  }
  std::string path = root;
  size_t i = 0;
  while (i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    std::string comp = rel.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") continue;
    path = Join(path, comp);
    if (comp == "..") return ncri_fail(err, EINVAL, "mkdirat", "create cgroup", path.c_str());
    if (RetryEintr([&] { return mkdirat(cur.get(), comp.c_str(), 0755); }) < 0 && errno != EEXIST) {
      return ncri_fail_errno(err, "mkdirat", "create cgroup", path.c_str());
    }
    Fd next(RetryEintr([&] {
      return openat(cur.get(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }));
    if (next.get() < 0) return ncri_fail_errno(err, "openat", "create cgroup", path.c_str());
    // Existing components are checked too: an intermediate cgroup made by someone else
    // (or by an older run that failed half-way) may still have empty values.
    for (const std::string &f : inherit_files) {
      std::string mine, parents;
      const char *syscall;
      int r = ReadAt(next.get(), f, &mine, &syscall);
      if (r < 0) return ncri_fail(err, -r, syscall, "inherit cgroup setting", Join(path, f).c_str());
      if (!IsBlank(mine)) continue;
      r = ReadAt(cur.get(), f, &parents, &syscall);
      if (r < 0) return ncri_fail(err, -r, syscall, "inherit cgroup setting", Join(path, "../" + f).c_str());
      if (IsBlank(parents)) continue;  // nothing to inherit; the kernel will say so on attach
      r = WriteAt(next.get(), f, parents, &syscall);
      if (r < 0) return ncri_fail(err, -r, syscall, "inherit cgroup setting", Join(path, f).c_str());
    }
    cur = std::move(next);
  }
  return 0;
}

int ncri_cgroup_write_files(std::vector<ncri_cgroup_write> *writes, ncri_error *err) {
  std::string open_dir;
  Fd dirfd;
  for (ncri_cgroup_write &w : *writes) {
    w.result = 0;
    std::string path = Join(w.dir, w.file);
    if (!ValidName(w.file)) return ncri_fail(err, EINVAL, "openat", "write cgroup file", path.c_str());
    if (dirfd.get() < 0 || open_dir != w.dir) {
      dirfd.reset();
      open_dir.clear();
      int fd = OpenCgroupDir(w.dir, O_PATH, "write cgroup file", err);
      if (fd < 0) {
        if (!w.may_fail) return fd;
        w.result = -fd;
        *err = ncri_error{};
        continue;
      }
      dirfd = Fd(fd);
      open_dir = w.dir;
    }
    const char *syscall;
    int r = WriteAt(dirfd.get(), w.file, w.value, &syscall);
    if (r < 0) {
      if (!w.may_fail) return ncri_fail(err, -r, syscall, "write cgroup file", path.c_str());
      w.result = -r;
    }
  }
  return 0;
}

int ncri_cgroup_read_files(std::vector<ncri_cgroup_read> *reads, ncri_error *err) {
  std::string open_dir;
  Fd dirfd;
  bool dir_missing = false;
  for (ncri_cgroup_read &rd : *reads) {
    rd.found = false;
    rd.value.clear();
    std::string path = Join(rd.dir, rd.file);
    if (!ValidName(rd.file)) return ncri_fail(err, EINVAL, "openat", "read cgroup file", path.c_str());
    if (open_dir != rd.dir || (dirfd.get() < 0 && !dir_missing)) {
      dirfd.reset();
      open_dir = rd.dir;
      dir_missing = false;
      int fd = OpenCgroupDir(rd.dir, O_PATH, "read cgroup file", err);
      if (fd < 0) {
        if (err->err != ENOENT) return fd;
        *err = ncri_error{};
        dir_missing = true;
        continue;
      }
      dirfd = Fd(fd);
    }
    if (dir_missing) continue;
    const char *syscall;
    int r = ReadAt(dirfd.get(), rd.file, &rd.value, &syscall);
    if (r == -ENOENT) continue;
    if (r < 0) return ncri_fail(err, -r, syscall, "read cgroup file", path.c_str());
    rd.found = true;
  }
  return 0;
}

int ncri_cgroup_rmdir(const std::string &dir, ncri_error *err) {
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.rfind('/');
  if (trimmed.empty() || trimmed[0] != '/' || slash == std::string::npos) {
    return ncri_fail(err, EINVAL, "rmdir", "remove cgroup", dir.c_str());
  }
  std::string parent = slash == 0 ? "/" : trimmed.substr(0, slash);
  std::string name = trimmed.substr(slash + 1);
  if (!ValidName(name)) return ncri_fail(err, EINVAL, "rmdir", "remove cgroup", dir.c_str());
  // The parent must itself be a cgroup: this refuses to remove a hierarchy's mount point
  // or anything outside cgroupfs.
  Fd parentfd(OpenCgroupDir(parent, O_PATH, "remove cgroup", err));
  if (parentfd.get() < 0) {
    if (err->err == ENOENT) {
      *err = ncri_error{};
      return 0;
    }
    return -err->err;
  }
  return RemoveTree(parentfd.get(), name, trimmed, 0, err);
}

int ncri_cgroup_kill_round(const ncri_cgroup_kill_spec &spec, bool first, bool signal, bool expired,
                           bool *kernel_kills, ncri_error *err) {
  // cgroup.kill is the race-free way: the kernel kills every task, including ones forked
  // while it runs. We then only have to wait for them to leave.
  *kernel_kills = false;
  if (first) {
    for (const std::string &dir : spec.kill_dirs) {
      Fd fd(OpenCgroupDir(dir, O_PATH, "kill cgroup", err));
      if (fd.get() < 0) {
        if (err->err == ENOENT) continue;
        return -err->err;
      }
      const char *syscall;
      int r = WriteAt(fd.get(), "cgroup.kill", "1", &syscall);
      if (r == -ENOENT) continue;
      if (r < 0) return ncri_fail(err, -r, syscall, "kill cgroup", Join(dir, "cgroup.kill").c_str());
      *kernel_kills = true;
    }
    *err = ncri_error{};
    // Without cgroup.kill we signal them ourselves at once.
    signal = !*kernel_kills;
  }
  std::vector<pid_t> pids;
  int r = CollectAllPids(spec.procs_dirs, &pids, err);
  if (r < 0) return r;
  // Tasks that have exited (zombies included) are no longer listed in cgroup.procs.
  if (pids.empty()) return 0;
  if (expired)
    return ncri_fail(err, EBUSY, "kill", "wait for cgroup tasks to exit",
                     spec.procs_dirs.empty() ? nullptr : spec.procs_dirs[0].c_str());
  if (signal) {
    r = KillRound(spec, err);
    if (r < 0) return r;
  }
  return (int)pids.size();
}
