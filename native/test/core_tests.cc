// Tests of native/core and native/spawn that run without Node: nodecri-core-tests [FILTER]
// runs every test whose name contains FILTER (all without one) and exits 1 if any failed.
// Root only (mounts, namespaces, cgroups, clones). The process first moves into a private
// mount namespace with a tmpfs on its scratch directory, so that every mount a test makes
// goes with the process. Built by `node-gyp rebuild` beside nodecri-init (the spawn tests
// exec it), run by scripts/native-tests.js from `npm test`.
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cgroup.h"
#include "device_filter.h"
#include "fsops.h"
#include "mount.h"
#include "ncri_proc.h"
#include "ns.h"
#include "process.h"
#include "../spawn/spawn.h"
#include "unique_fd.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

using namespace ncri;  // the C++ types (Fd, Seed, SpawnRequest...); the ncri_* functions are global

namespace {

// ---------------------------------------------------------------- a tiny runner

struct TestCase {
  const char *name;
  void (*fn)();
};
std::vector<TestCase> &Registry() {
  static std::vector<TestCase> tests;
  return tests;
}
struct Register {
  Register(const char *name, void (*fn)()) { Registry().push_back({name, fn}); }
};
int g_failures = 0;
bool g_current_failed = false;

#define TEST(name)                                 \
  void name();                                     \
  Register register_##name(#name, name);           \
  void name()

// A failed check reports and returns from the test (the next checks would only cascade).
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      g_current_failed = true;                                                   \
      return;                                                                    \
    }                                                                            \
  } while (0)
// A core call that must succeed: names its error otherwise.
#define OK(call)                                                                                   \
  do {                                                                                             \
    ncri_error e_{};                                                                               \
    (void)e_;                                                                                      \
    int r_ = (call);                                                                               \
    if (r_ < 0) {                                                                                  \
      fprintf(stderr, "    %s:%d: %s = %d\n", __FILE__, __LINE__, #call, r_);                     \
      g_current_failed = true;                                                                     \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

std::string g_scratch;  // a tmpfs of this process's own mount namespace

std::string Scratch(const std::string &name) {
  std::string p = g_scratch + "/" + name;
  mkdir(p.c_str(), 0755);
  return p;
}

long FsType(const std::string &path) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 ? (long)st.f_type : -1;
}

bool Exists(const std::string &path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

int CountOpenFds() {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  while (struct dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // the DIR's own fd
}

// Our children (zombies included), from /proc/self/task/*/children.
int CountChildren() {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = std::string("/proc/self/task/") + e->d_name + "/children";
    FILE *f = fopen(path.c_str(), "re");
    if (!f) continue;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

// Whether CountChildren sees our children at all (a kernel without the children files would
// make every "no child left" check pass): one forked child must raise the count by one.
bool ChildCountingWorks() {
  int before = CountChildren();
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  if (child < 0) return false;
  bool seen = CountChildren() == before + 1;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  return seen && CountChildren() == before;
}

// ---------------------------------------------------------------- fsops

TEST(fsops_mknod_xattr_syncfs) {
  std::string dir = Scratch("fsops");
  std::string fifo = dir + "/fifo";
  OK(ncri_mknod(fifo.c_str(), S_IFIFO | 0600, 0, 0, &e_));
  struct stat st;
  CHECK(lstat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode));
  ncri_error e{};
  CHECK(ncri_mknod(fifo.c_str(), S_IFIFO | 0600, 0, 0, &e) == -EEXIST && e.err == EEXIST);
  CHECK(strcmp(e.syscall, "mknod") == 0 && fifo == e.path);

  std::string file = dir + "/file";
  close(open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  OK(ncri_lsetxattr(file.c_str(), "trusted.nodecri", "v1", 2, &e_));
  std::string value;
  ncri_error ge{};
  CHECK(ncri_lgetxattr(file.c_str(), "trusted.nodecri", &value, &ge) == 1 && value == "v1");
  CHECK(ncri_lgetxattr(file.c_str(), "trusted.missing", &value, &ge) == 0);
  OK(ncri_syncfs(dir.c_str(), &e_));
}

TEST(fsops_lock_exclusive) {
  std::string lock = Scratch("lock") + "/daemon.lock";
  int fd = -1;
  std::string holder;
  ncri_error e{};
  CHECK(ncri_lock_exclusive(lock.c_str(), -1, &fd, &holder, &e) == 0 && fd >= 0);
  ncri::Fd held(fd);
  int other = -1;
  // flock belongs to the open file: a second open of the file is another holder.
  CHECK(ncri_lock_exclusive(lock.c_str(), -1, &other, &holder, &e) == 1);
  CHECK(atoi(holder.c_str()) == getpid());
  // The inherited fd of the same file keeps the lock (a re-exec).
  int again = -1;
  CHECK(ncri_lock_exclusive(lock.c_str(), held.get(), &again, &holder, &e) == 0);
  if (again != held.get()) close(again);
}

// ---------------------------------------------------------------- mounts

TEST(mount_tmpfs_bind_unmount) {
  std::string base = Scratch("mounts");
  std::string t = base + "/tmpfs";
  mkdir(t.c_str(), 0755);
  ncri_tmpfs_options o{};
  o.has_size = true;
  o.size_bytes = 1 << 20;
  o.mode = 01777;
  o.nosuid = o.nodev = true;
  OK(ncri_mount_tmpfs(t.c_str(), &o, &e_));
  CHECK(FsType(t) == TMPFS_MAGIC);
  struct stat st;
  CHECK(stat(t.c_str(), &st) == 0 && (st.st_mode & 07777) == 01777);
  struct statfs sf;
  CHECK(statfs(t.c_str(), &sf) == 0 && (sf.f_flags & ST_NOSUID) && (sf.f_flags & ST_NODEV));

  std::string b = base + "/bind";
  mkdir(b.c_str(), 0755);
  ncri_bind_options bo{};
  bo.readonly = true;
  OK(ncri_bind_mount(t.c_str(), b.c_str(), &bo, &e_));
  CHECK(open((b + "/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644) < 0 && errno == EROFS);
  ncri::Fd w(open((t + "/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  CHECK(w.get() >= 0 && Exists(b + "/x"));
  w.reset();

  OK(ncri_unmount(b.c_str(), false, &e_));
  CHECK(!Exists(b + "/x"));
  OK(ncri_unmount(b.c_str(), false, &e_));  // not a mount point any more: idempotent
  OK(ncri_unmount((base + "/missing").c_str(), true, &e_));
  OK(ncri_unmount(t.c_str(), true, &e_));
  CHECK(FsType(t) == TMPFS_MAGIC);  // the scratch tmpfs below
  ncri_error e{};
  CHECK(ncri_bind_mount((base + "/missing").c_str(), b.c_str(), &bo, &e) == -ENOENT);
}

TEST(mount_overlay_both_methods) {
  std::string base = Scratch("overlay");
  for (ncri_overlay_method m : {NCRI_OVERLAY_MOUNT, NCRI_OVERLAY_FSCONFIG}) {
    std::string root = base + (m == NCRI_OVERLAY_MOUNT ? "/m" : "/f");
    for (const char *d : {"", "/l1", "/l2", "/up", "/work", "/merged"}) mkdir((root + d).c_str(), 0755);
    close(open((root + "/l1/top").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    close(open((root + "/l2/bottom").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ncri_overlay_options o{};
    o.lower = {root + "/l1", root + "/l2"};
    o.upper = root + "/up";
    o.work = root + "/work";
    o.method = m;
    std::string merged = root + "/merged";
    ncri_error e{};
    int r = ncri_mount_overlay(merged.c_str(), &o, &e);
    if (r == -ENOSYS || (m == NCRI_OVERLAY_FSCONFIG && r == -EINVAL)) continue;  // an older kernel
    CHECK(r == 0);
    CHECK(Exists(merged + "/top") && Exists(merged + "/bottom"));
    close(open((merged + "/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    CHECK(Exists(root + "/up/new"));
    OK(ncri_unmount(merged.c_str(), false, &e_));
    CHECK(!Exists(merged + "/top"));
  }
}

// ---------------------------------------------------------------- cgroups

TEST(cgroup_files_on_a_cgroup2_mount) {
  // cgroup2 mounted again in this mount namespace: the same hierarchy as the host's, so the
  // test cgroup is a real one (removed at the end).
  std::string root = Scratch("cgroup2");
  if (mount("none", root.c_str(), "cgroup2", 0, nullptr) != 0) {
    fprintf(stderr, "    (no cgroup2: skipped)\n");
    return;
  }
  std::string top = root + "/nodecri-core-test-" + std::to_string(getpid());
  std::string rel = "nodecri-core-test-" + std::to_string(getpid()) + "/child";
  OK(ncri_cgroup_mkdir(root, rel, {}, &e_));
  std::string dir = root + "/" + rel;
  // A real cgroup of the host's hierarchy: removed (child, then parent) however the test
  // returns, a failed check included. The rmdirs after the checks below test that removal.
  struct RemoveCgroups {
    std::string child, parent, mount_point;
    ~RemoveCgroups() {
      rmdir(child.c_str());
      rmdir(parent.c_str());
      umount2(mount_point.c_str(), MNT_DETACH);
    }
  } remove_cgroups{dir, top, root};
  CHECK(FsType(dir) == CGROUP2_SUPER_MAGIC);
  std::vector<ncri_cgroup_write> writes = {
      {dir, "cgroup.max.descendants", "7", false, 0},
      {dir, "no.such.file", "1", true, 0},
  };
  OK(ncri_cgroup_write_files(&writes, &e_));
  CHECK(writes[1].result == ENOENT);
  std::vector<ncri_cgroup_read> reads = {{dir, "cgroup.max.descendants", false, ""}, {dir, "no.such.file", false, ""}};
  OK(ncri_cgroup_read_files(&reads, &e_));
  CHECK(reads[0].found && reads[0].value == "7\n");
  CHECK(!reads[1].found);
  // A value split over two writes would be wrong: one write, refused whole.
  std::vector<ncri_cgroup_write> bad = {{dir, "cgroup.max.descendants", "seven", false, 0}};
  ncri_error e{};
  CHECK(ncri_cgroup_write_files(&bad, &e) < 0 && e.err == EINVAL && strcmp(e.syscall, "write") == 0);

  OK(ncri_cgroup_rmdir(top, &e_));
  CHECK(!Exists(top));
  OK(ncri_cgroup_rmdir(top, &e_));  // missing: success
}

TEST(cgroup_refuses_a_plain_directory) {
  std::string dir = Scratch("not-a-cgroup");
  std::vector<ncri_cgroup_write> writes = {{dir, "cgroup.procs", "0", false, 0}};
  ncri_error e{};
  CHECK(ncri_cgroup_write_files(&writes, &e) == -EINVAL && strcmp(e.syscall, "fstatfs") == 0);
  CHECK(!Exists(dir + "/cgroup.procs"));
}

// ---------------------------------------------------------------- device filter

TEST(device_program_assembly) {
  std::vector<struct bpf_insn> prog;
  std::vector<ncri_device_rule> rules = {
      {false, 'a', -1, -1, "rwm"},
      {true, 'c', 1, 3, "rwm"},
      {true, 'c', 136, -1, "rw"},
      {false, 'b', 8, 0, "m"},
  };
  OK(ncri_device_program(rules, &prog, &e_));
  CHECK(prog.size() > 4);
  CHECK(prog.back().code == (BPF_JMP | BPF_EXIT));
  std::vector<struct bpf_insn> more;
  rules.push_back({true, 'c', 5, 1, "rw"});
  OK(ncri_device_program(rules, &more, &e_));
  CHECK(more.size() > prog.size());

  ncri_error e{};
  std::vector<struct bpf_insn> none;
  CHECK(ncri_device_program({{true, 'c', 1, 3, "rwm"}}, &none, &e) == -EINVAL);  // no leading 'a' rule
  CHECK(ncri_device_program({{false, 'a', -1, -1, "rwm"}, {true, 'x', 1, 3, "r"}}, &none, &e) == -EINVAL);
  CHECK(ncri_device_program({{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rr"}}, &none, &e) == -EINVAL);
  CHECK(ncri_device_program({{false, 'a', -1, -1, "rwm"}, {true, 'c', kNcriDevMajorMax + 1, 3, "r"}}, &none, &e) == -EINVAL);
  CHECK(ncri_device_program({{false, 'a', 1, -1, "rwm"}}, &none, &e) == -EINVAL);  // 'a' with a major
}

// ---------------------------------------------------------------- namespaces

// Runs `fn` in a forked child that has joined the namespace pinned at `ns_path` and returns
// what it wrote back; "setns failed" if it could not join.
std::string InNamespace(const std::string &ns_path, const std::function<std::string()> &fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return "pipe failed";
  pid_t child = fork();
  if (child == 0) {
    int fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    std::string out = fd >= 0 && setns(fd, 0) == 0 ? fn() : "setns failed";
    ssize_t n = write(p[1], out.data(), out.size());
    _exit(n == (ssize_t)out.size() ? 0 : 1);
  }
  close(p[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, n);
  close(p[0]);
  waitpid(child, nullptr, 0);
  return out;
}

std::string ReadFile(const char *path) {
  std::string out;
  FILE *f = fopen(path, "re");
  if (!f) return "(cannot open)";
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

// "up" or "down": lo's IFF_UP in the caller's network namespace.
std::string LoopbackState() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr {};
  strcpy(ifr.ifr_name, "lo");
  bool ok = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  if (s >= 0) close(s);
  return !ok ? "(no flags)" : (ifr.ifr_flags & IFF_UP) ? "up" : "down";
}

TEST(ns_sysctl_paths) {
  std::string path;
  ncri_error e{};
  OK(ncri_sysctl_path("net.ipv4.ip_forward", &path, &e_));
  CHECK(path == "/proc/sys/net/ipv4/ip_forward");
  OK(ncri_sysctl_path("net.ipv4.conf.eth0/1.forwarding", &path, &e_));
  CHECK(path == "/proc/sys/net/ipv4/conf/eth0.1/forwarding");
  for (const char *bad : {"", "net..x", "net.ipv4.ip_forward.", "../x", "net.ipv4/../../x/..", "net ipv4"})
    CHECK(ncri_sysctl_path(bad, &path, &e) == -EINVAL);
}

TEST(ns_pin_loopback_unpin) {
  std::string dir = Scratch("pins") + "/pod/ns";
  ncri_sysctl sysctls[] = {{"net.ipv4.ping_group_range", "0 0"}};
  ncri_pin_request req{};
  req.dir = dir;
  req.kinds = NCRI_NS_NET | NCRI_NS_UTS | NCRI_NS_IPC;
  req.sysctls = sysctls;
  req.nsysctls = 1;
  ncri_pin_result res;
  OK(ncri_pin_namespaces(&req, &res, &e_));
  struct stat mine, pinned;
  CHECK(res.paths[0] == dir + "/net" && FsType(res.paths[0]) == NSFS_MAGIC);
  CHECK(stat("/proc/self/ns/net", &mine) == 0 && stat(res.paths[0].c_str(), &pinned) == 0 && mine.st_ino != pinned.st_ino);
  CHECK(res.paths[3].empty());  // no user namespace asked for
  // The sysctl landed in the new network namespace (whose lo starts down), read from inside.
  CHECK(InNamespace(res.paths[0], [] { return ReadFile("/proc/sys/net/ipv4/ping_group_range"); }) == "0\t0\n");
  CHECK(InNamespace(res.paths[0], LoopbackState) == "down");
  OK(ncri_loopback_up(res.paths[0].c_str(), &e_));
  CHECK(InNamespace(res.paths[0], LoopbackState) == "up");
  ncri_error e{};
  CHECK(ncri_loopback_up(res.paths[2].c_str(), &e) == -EINVAL && strcmp(e.syscall, "setns") == 0);  // a uts pin
  // A second pin of the same kinds in the same place: O_EXCL, and nothing of the first undone.
  CHECK(ncri_pin_namespaces(&req, &res, &e) == -EEXIST);
  CHECK(FsType(dir + "/net") == NSFS_MAGIC);
  for (const char *k : {"net", "uts", "ipc"}) {
    OK(ncri_unpin_namespace((dir + "/" + k).c_str(), &e_));
    CHECK(!Exists(dir + "/" + k));
    OK(ncri_unpin_namespace((dir + "/" + k).c_str(), &e_));  // idempotent
  }
}

// A socket made in a pinned netns belongs to it (SIOCGSKNS names its namespace), and the
// calling thread is still in its own afterwards; a pin of another kind fails at setns.
TEST(ns_socket_in_netns) {
  std::string dir = Scratch("sockpins") + "/ns";
  ncri_pin_request req{};
  req.dir = dir;
  req.kinds = NCRI_NS_NET | NCRI_NS_UTS;
  ncri_pin_result res;
  OK(ncri_pin_namespaces(&req, &res, &e_));
  struct stat before, after, pinned, of_socket;
  CHECK(stat("/proc/thread-self/ns/net", &before) == 0 && stat(res.paths[0].c_str(), &pinned) == 0);
  ncri_error e{};
  int fd = ncri_socket_in_netns(res.paths[0].c_str(), AF_INET, SOCK_STREAM, &e);
  CHECK(fd >= 0);
  int ns = ioctl(fd, SIOCGSKNS);
  CHECK(ns >= 0 && fstat(ns, &of_socket) == 0 && of_socket.st_ino == pinned.st_ino);
  CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  close(ns);
  close(fd);
  CHECK(stat("/proc/thread-self/ns/net", &after) == 0 && after.st_ino == before.st_ino);
  CHECK(ncri_socket_in_netns(res.paths[2].c_str(), AF_INET, SOCK_STREAM, &e) == -EINVAL && strcmp(e.syscall, "setns") == 0 &&
        res.paths[2] == e.path);
  CHECK(ncri_socket_in_netns((dir + "/missing").c_str(), AF_INET, SOCK_STREAM, &e) == -ENOENT && strcmp(e.syscall, "open") == 0);
  // A symlink to the pin is not followed; a FIFO in its place does not block the open.
  std::string link = dir + "/link";
  CHECK(symlink(res.paths[0].c_str(), link.c_str()) == 0);
  int looped = ncri_socket_in_netns(link.c_str(), AF_INET, SOCK_STREAM, &e);
  CHECK(looped == -ELOOP && strcmp(e.syscall, "open") == 0);
  unlink(link.c_str());
  std::string fifo = dir + "/fifo";
  CHECK(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(ncri_socket_in_netns(fifo.c_str(), AF_INET, SOCK_STREAM, &e) == -EINVAL && strcmp(e.syscall, "setns") == 0);
  unlink(fifo.c_str());
  for (const char *k : {"net", "uts"}) OK(ncri_unpin_namespace((dir + "/" + k).c_str(), &e_));
}

// The user namespace's handshake: ID_MAPS from the child, the maps written, ID_MAPS_WRITTEN.
TEST(ns_pin_user_namespace) {
  std::string dir = Scratch("pins-user");
  ncri_id_map map[] = {{0, 200000, 65536}};
  ncri_pin_request req{};
  req.dir = dir;
  req.kinds = NCRI_NS_USER | NCRI_NS_IPC;
  req.uid_map = map;
  req.nuid_map = 1;
  req.gid_map = map;
  req.ngid_map = 1;
  req.deny_setgroups = true;
  ncri_sysctl sysctls[] = {{"kernel.msgmax", "4096"}};  // writable by the new user namespace's root only
  req.sysctls = sysctls;
  req.nsysctls = 1;
  ncri_pin_result res;
  OK(ncri_pin_namespaces(&req, &res, &e_));
  CHECK(FsType(res.paths[3]) == NSFS_MAGIC && FsType(res.paths[1]) == NSFS_MAGIC);
  CHECK(InNamespace(res.paths[1], [] { return ReadFile("/proc/sys/kernel/msgmax"); }) == "4096\n");
  for (int i : {1, 3}) OK(ncri_unpin_namespace(res.paths[i].c_str(), &e_));
}

TEST(ns_pin_failure_leaves_nothing) {
  std::string dir = Scratch("pins-bad") + "/a/b";
  ncri_sysctl sysctls[] = {{"net.ipv4.no_such_sysctl", "1"}};
  ncri_pin_request req{};
  req.dir = dir;
  req.kinds = NCRI_NS_NET;
  req.sysctls = sysctls;
  req.nsysctls = 1;
  ncri_pin_result res;
  ncri_error e{};
  CHECK(ChildCountingWorks());
  int before = CountChildren();
  CHECK(ncri_pin_namespaces(&req, &res, &e) == -ENOENT);
  CHECK(strcmp(e.syscall, "open") == 0 && strcmp(e.path, "/proc/sys/net/ipv4/no_such_sysctl") == 0);
  CHECK(!Exists(g_scratch + "/pins-bad/a"));
  CHECK(CountChildren() == before);

  // A sysctl that exists but refuses the value: the write step fails, naming its path.
  ncri_sysctl refused[] = {{"net.ipv4.ip_forward", "not-a-number"}};
  req.sysctls = refused;
  e = ncri_error{};
  CHECK(ncri_pin_namespaces(&req, &res, &e) == -EINVAL);
  CHECK(strcmp(e.syscall, "write") == 0 && strcmp(e.step, "apply sysctl") == 0);
  CHECK(strcmp(e.path, "/proc/sys/net/ipv4/ip_forward") == 0);
  CHECK(!Exists(g_scratch + "/pins-bad/a"));
  CHECK(CountChildren() == before);
}

// ---------------------------------------------------------------- processes

TEST(proc_pidfd_and_exit_collect) {
  ncri_error e{};
  int self = ncri_pidfd_open(getpid(), &e);
  CHECK(self >= 0);
  ncri::Fd selfd(self);
  CHECK(ncri_pidfd_pid(self, &e) == getpid());
  ncri::Fd notpidfd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  CHECK(ncri_pidfd_pid(notpidfd.get(), &e) == -EBADF);
  CHECK(ncri_reap_strays(self, {}) == 0);  // our own PID namespace: never swept

  pid_t child = fork();
  if (child == 0) _exit(3);
  ncri::Fd pidfd(ncri_pidfd_open(child, &e));
  CHECK(pidfd.get() >= 0);
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  CHECK(poll(&p, 1, -1) == 1);
  char what[64];
  ncri_describe_exit(pidfd.get(), "alive", what, sizeof what);
  CHECK(strcmp(what, "exit status 3") == 0);
  ncri::ExitStatus st;
  CHECK(ncri_exit_collect(pidfd.get(), false, &st));
  CHECK(st.known && st.exited && st.status == 3);
  CHECK(ncri_pidfd_pid(pidfd.get(), &e) == -ESRCH);  // reaped
  CHECK(ncri_exit_collect(pidfd.get(), false, &st) && !st.known);  // not ours any more

  child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  pidfd.reset(ncri_pidfd_open(child, &e));
  CHECK(!ncri_exit_collect(pidfd.get(), false, &st));  // still running
  OK(ncri_pidfd_signal(pidfd.get(), SIGKILL, &e_));
  struct pollfd q = {pidfd.get(), POLLIN, 0};
  CHECK(poll(&q, 1, -1) == 1);
  CHECK(ncri_exit_collect(pidfd.get(), false, &st) && st.known && !st.exited && st.status == SIGKILL);
}

TEST(proc_seed_drains_to_eof) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  ncri::Seed seed(sv[0]);
  ncri::Fd child(sv[1]);
  CHECK(!seed.Drain() && seed.error() == nullptr);
  ncri::ChildFrame f = ncri_make_frame(ncri::kFrameError, ncri::kStepExec, -ENOENT, 0, 0);
  CHECK(send(child.get(), &f, sizeof f, 0) == (ssize_t)sizeof f);
  ncri::ChildFrame g = ncri_make_frame(ncri::kFrameError, ncri::kStepSeccomp, -EPERM, 0, 0);
  CHECK(send(child.get(), &g, sizeof g, 0) == (ssize_t)sizeof g);
  CHECK(!seed.Drain());
  OK(seed.Start(&e_));
  char c = 0;
  CHECK(recv(child.get(), &c, 1, 0) == 1 && c == ncri::kMsgStart);
  child.reset();
  CHECK(seed.Drain());
  CHECK(seed.error() && seed.error()->step == ncri::kStepExec && seed.error()->err == ENOENT);  // the first one
}

// A terminal's size is clamped to 1..65535: a field of the winsize is 16 bits.
TEST(proc_pty_resize_clamps) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  CHECK(m >= 0);
  ncri_error e{};
  struct winsize ws {};
  OK(ncri_pty_resize(m, 70000, 0, &e));
  CHECK(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_col == 65535 && ws.ws_row == 1);
  OK(ncri_pty_resize(m, -3, 24, &e));
  CHECK(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_col == 1 && ws.ws_row == 24);
  OK(ncri_pty_resize(m, 80, 25, &e));
  CHECK(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_col == 80 && ws.ws_row == 25);
  close(m);
}

// A non-blocking dup of a pipe's write end takes what fits, then 0 (never blocks), then
// EPIPE's -errno once nothing reads; the original fd's open file is non-blocking too.
TEST(proc_write_some_never_blocks) {
  int p[2];
  CHECK(pipe2(p, O_CLOEXEC) == 0);
  ncri_error e{};
  int w = ncri_fd_dup_nonblocking(p[1], &e);
  CHECK(w >= 0 && (fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0 && (fcntl(w, F_GETFD) & FD_CLOEXEC) != 0);
  std::vector<char> chunk(65536, 'x');
  size_t total = 0;
  ssize_t n;
  while ((n = ncri_fd_write_some(w, chunk.data(), chunk.size(), &e)) > 0) total += (size_t)n;
  CHECK(n == 0 && total > 0);
  close(p[0]);
  auto old = signal(SIGPIPE, SIG_IGN);
  ssize_t broken = ncri_fd_write_some(w, chunk.data(), 1, &e);
  signal(SIGPIPE, old);
  CHECK(broken == -EPIPE && strcmp(e.syscall, "write") == 0 && std::to_string(w) == e.path);
  close(w);
  close(p[1]);
}

TEST(proc_keeper_message) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
  ncri::Fd a(sv[0]), b(sv[1]);
  char buf[16];
  CHECK(ncri_recv_message(b.get(), buf, sizeof buf) == -EAGAIN);
  ncri::Fd passed(open("/dev/null", O_RDONLY | O_CLOEXEC));
  OK(ncri_send_with_fd(a.get(), "hello", 5, passed.get(), &e_));
  OK(ncri_send_with_fd(a.get(), "x", 1, -1, &e_));
  struct msghdr mh {};
  struct iovec iov = {buf, sizeof buf};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  CHECK(recvmsg(b.get(), &mh, MSG_CMSG_CLOEXEC) == 5 && memcmp(buf, "hello", 5) == 0);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  CHECK(cm && cm->cmsg_type == SCM_RIGHTS);
  int got;
  memcpy(&got, CMSG_DATA(cm), sizeof got);
  close(got);
  CHECK(ncri_recv_message(b.get(), buf, sizeof buf) == 1 && buf[0] == 'x');
  a.reset();
  CHECK(ncri_recv_message(b.get(), buf, sizeof buf) == 0);  // EOF
}

// ---------------------------------------------------------------- step names

// child_steps.cc's table is checked for its length at compile time; these anchors, spread
// over it (the first, both ends of the clone child's steps, the namespace child's first and
// last), catch an entry added, dropped or moved in the middle.
TEST(step_names_follow_the_enum) {
  struct Anchor {
    uint32_t step;
    const char *syscall, *name;
  };
  const Anchor anchors[] = {
      {ncri::kStepSignals, "rt_sigaction", "reset signals"},
      {ncri::kStepSysctl, "write", "set sysctl"},
      {ncri::kStepResolveExec, "execve", "find executable"},
      {ncri::kStepWaitPidHeld, "recvfrom", "wait for the runtime to hold the process's pidfd"},
      {ncri::kStepNsSignals, "sigprocmask", "reset signals in namespace child"},
      {ncri::kStepNsSysctlWrite, "write", "apply sysctl"},
      {ncri::kStepNsLoopbackSetFlags, "ioctl", "set lo up"},
  };
  for (const Anchor &a : anchors) {
    if (strcmp(ncri_step_syscall(a.step), a.syscall) != 0 || strcmp(ncri_step_name(a.step), a.name) != 0)
      fprintf(stderr, "    step %u: %s / %s\n", a.step, ncri_step_syscall(a.step), ncri_step_name(a.step));
    CHECK(strcmp(ncri_step_syscall(a.step), a.syscall) == 0 && strcmp(ncri_step_name(a.step), a.name) == 0);
  }
  CHECK(ncri::kStepNsLoopbackSetFlags + 1 == ncri::kStepCount);
  CHECK(strcmp(ncri_step_name(ncri::kStepCount), "container setup") == 0);  // out of range
}

// ---------------------------------------------------------------- spawn

// Milliseconds left until `deadline` (CLOCK_MONOTONIC ms), at least 0.
int64_t NowMs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
int MsLeft(int64_t deadline) {
  int64_t left = deadline - NowMs();
  return left > 0 ? (int)left : 0;
}

// Reaps a pidfd of our child that is exiting or dead (blocks until it is), then closes it.
void ReapPidfd(int fd) {
  siginfo_t si{};
  while (waitid((idtype_t)3 /* P_PIDFD */, (id_t)fd, &si, WEXITED) < 0 && errno == EINTR) {
  }
  close(fd);
}

// A spawned process that has exec'd its command: its pidfd and our ends of its pipes.
struct Spawned {
  pid_t pid = -1;
  ncri::Fd pidfd;
  ncri::Fd stdio[3];
};

// Drives one spawn as napi/process.cc does, with poll(2) in place of the loop: Step until
// READY (Abort if kSpawnSetupTimeoutMs passes first, as the addon's timer does), reap the
// intermediate of a double clone, Finish, start, and wait for the seed's EOF (exec'd or
// died). Returns 0, or -1 with *failure set and nothing left behind.
int SpawnStarted(ncri::SpawnRequest req, Spawned *out, std::string *failure) {
  std::unique_ptr<ncri::SpawnSetup> setup;
  ncri_error e{};
  if (ncri_spawn_begin(std::move(req), &setup, &e) < 0) {
    *failure = std::string("spawn: ") + e.step + ": " + strerror(e.err);
    return -1;
  }
  const int64_t deadline = NowMs() + ncri::kSpawnSetupTimeoutMs;
  int rc;
  while ((rc = setup->Step(&e)) == 0) {
    if (MsLeft(deadline) == 0) {
      rc = ncri_fail(&e, ETIMEDOUT, "poll", "wait for container setup", nullptr);
      break;
    }
    struct pollfd p = {setup->sync_fd(), POLLIN, 0};
    poll(&p, 1, MsLeft(deadline));
  }
  if (rc < 0) {
    *failure = std::string("setup: ") + e.step + ": " + strerror(e.err) + " " + e.path;
    for (int fd : setup->Abort()) ReapPidfd(fd);
    return -1;
  }
  int intermediate = setup->TakeIntermediate();
  if (intermediate >= 0) ReapPidfd(intermediate);  // it has sent its PID frame and is exiting
  ncri::SpawnResult res;
  setup->Finish(&res);
  setup.reset();
  out->pid = res.pid;
  out->pidfd.reset(res.pidfd);
  for (int i = 0; i < 3; i++) out->stdio[i].reset(res.stdio[i]);
  if (res.terminal >= 0) close(res.terminal);
  ncri::Seed seed(res.sync_fd);
  bool exec_done = seed.Start(&e) == 0;
  if (!exec_done) *failure = "start";
  while (exec_done && !seed.Drain()) {
    struct pollfd p = {seed.sync_fd(), POLLIN, 0};
    if (poll(&p, 1, MsLeft(deadline)) == 0) {
      *failure = "timed out waiting for the exec";
      exec_done = false;
    }
  }
  if (exec_done && seed.error()) {
    ncri_error fe{};
    ncri_frame_error(*seed.error(), res.memory.get(), &fe);
    *failure = std::string("exec: ") + fe.step + ": " + strerror(fe.err) + " " + fe.path;
  }
  if (!exec_done) {
    ncri_pidfd_signal(out->pidfd.get(), SIGKILL, &e);
    ReapPidfd(out->pidfd.release());
    for (ncri::Fd &fd : out->stdio) fd.reset();
    return -1;
  }
  return 0;
}

// Waits (at most kSpawnSetupTimeoutMs, then kills it) for a spawned process's exit and
// collects it. Returns the exit code (128 + signal when killed), or -1.
int WaitExit(Spawned *s, std::string *failure) {
  struct pollfd p = {s->pidfd.get(), POLLIN, 0};
  if (poll(&p, 1, ncri::kSpawnSetupTimeoutMs) == 0) {
    *failure += " (timed out: killed)";
    ncri_error e{};
    ncri_pidfd_signal(s->pidfd.get(), SIGKILL, &e);
    ReapPidfd(s->pidfd.release());
    return -1;
  }
  ncri::ExitStatus st;
  if (!ncri_exit_collect(s->pidfd.get(), false, &st) || !st.known) {
    *failure += " (exit not collected)";
    return -1;
  }
  s->pidfd.reset();
  return st.exited ? st.status : 128 + st.status;
}

// One spawn from the clone to its exit: the exit code (as WaitExit), or -1 with *failure set.
int SpawnAndWait(ncri::SpawnRequest req, std::string *failure) {
  Spawned s;
  if (SpawnStarted(std::move(req), &s, failure) < 0) return -1;
  for (ncri::Fd &fd : s.stdio) fd.reset();
  return WaitExit(&s, failure);
}

ncri::SpawnRequest TrivialRequest(const char *program) {
  ncri::SpawnRequest r;
  r.args = {program};
  r.env = {"PATH=/usr/bin:/bin"};
  r.cwd = "/";
  for (int &s : r.stdio) s = ncri::kStdioNull;
  return r;
}

// The stress tests' iterations: NODECRI_CORE_STRESS (3000) scaled, `of_3000` at the default.
int StressIterations(int of_3000) {
  int total = getenv("NODECRI_CORE_STRESS") ? atoi(getenv("NODECRI_CORE_STRESS")) : 3000;
  return total * of_3000 / 3000;
}

TEST(spawn_exit_status_and_errors) {
  std::string failure;
  CHECK(SpawnAndWait(TrivialRequest("/bin/true"), &failure) == 0);
  CHECK(SpawnAndWait(TrivialRequest("false"), &failure) == 1);  // found on PATH
  failure.clear();
  // The child looks the program up before READY but reports a failure only once started
  // (a missing program is a start error, as with runc under containerd): the setup
  // succeeds, and the error frame after the start byte names the step, the errno and the
  // path; the child exits 127.
  CHECK(SpawnAndWait(TrivialRequest("/no/such/program"), &failure) == 127);
  CHECK(failure == std::string("exec: find executable: ") + strerror(ENOENT) + " /no/such/program");
  ncri::SpawnRequest empty = TrivialRequest("/bin/true");
  empty.args.clear();
  std::unique_ptr<ncri::SpawnSetup> setup;
  ncri_error e{};
  CHECK(ncri_spawn_begin(std::move(empty), &setup, &e) == -EINVAL && !setup);
}

TEST(spawn_in_new_namespaces) {
  ncri::SpawnRequest r = TrivialRequest("/bin/true");
  r.new_namespaces = CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
  r.has_hostname = true;
  r.hostname = "core-test";
  std::string failure;
  int code = SpawnAndWait(std::move(r), &failure);
  if (code != 0) fprintf(stderr, "    %s\n", failure.c_str());
  CHECK(code == 0);
}

// The exec path under load: thousands of spawns of /bin/true through ncri_spawn_begin, each
// exiting 0, leaving no fd and no child (zombie or not) behind.
TEST(spawn_exec_stress) {
  const int iterations = StressIterations(3000);
  std::string warm;
  CHECK(SpawnAndWait(TrivialRequest("/bin/true"), &warm) == 0);  // the init memfd, opened once
  CHECK(ChildCountingWorks());
  int fds_before = CountOpenFds();
  int children_before = CountChildren();
  for (int i = 0; i < iterations; i++) {
    std::string failure;
    int code = SpawnAndWait(TrivialRequest("/bin/true"), &failure);
    if (code != 0) fprintf(stderr, "    iteration %d: exit %d %s\n", i, code, failure.c_str());
    CHECK(code == 0);
  }
  CHECK(CountOpenFds() == fds_before);
  CHECK(CountChildren() == children_before);
  printf("    %d spawns\n", iterations);
}

// A long-lived exec target: /bin/cat as the init of a new PID namespace, its stdin a pipe
// of ours, so that it ends with us however we end. Killed at the end of the test, reaping
// the strays of its namespace meanwhile (as the daemon does: untilExitReapingStrays): an
// exec child whose intermediate was aborted after cloning it is our child, and the
// namespace's init cannot finish its exit until it is reaped.
struct ExecTarget {
  Spawned s;
  int strays = 0;
  bool Start(std::string *failure) {
    ncri::SpawnRequest r = TrivialRequest("/bin/cat");
    r.new_namespaces = CLONE_NEWPID;
    r.stdio[0] = ncri::kStdioPipe;
    return SpawnStarted(std::move(r), &s, failure) == 0;
  }
  ncri::SpawnRequest ExecRequest(std::vector<std::string> args) const {
    ncri::SpawnRequest r = TrivialRequest(args[0].c_str());
    r.args = std::move(args);
    r.target_pid = s.pid;
    r.target_pidfd = s.pidfd.get();
    return r;
  }
  // Returns whether it was reaped.
  bool Stop() {
    if (s.pidfd.get() < 0) return true;
    s.stdio[0].reset();
    ncri_error e{};
    ncri_pidfd_signal(s.pidfd.get(), SIGKILL, &e);
    const int64_t deadline = NowMs() + ncri::kSpawnSetupTimeoutMs;
    for (;;) {
      strays += ncri_reap_strays(s.pidfd.get(), {s.pid});  // not the target itself, a zombie of that namespace too
      struct pollfd p = {s.pidfd.get(), POLLIN, 0};
      if (poll(&p, 1, 50) == 1) break;
      if (MsLeft(deadline) == 0) return false;
    }
    ReapPidfd(s.pidfd.release());
    return true;
  }
  ~ExecTarget() { Stop(); }
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

// Exec into a running container's PID namespace, as execProcess does: the plan joins the
// target's namespaces that differ from ours, the init joins them and clones the real child
// into the PID namespace (the intermediate), which passes its pidfd in its PID frame. A
// few hundred of them, each exiting 0; then one with all three stdio pipes, checked in the
// target's PID namespace; nothing left behind.
TEST(spawn_exec_into_pid_namespace_stress) {
  const int iterations = StressIterations(300);
  CHECK(ChildCountingWorks());
  std::string failure;
  ExecTarget target;
  if (!target.Start(&failure)) fprintf(stderr, "    target: %s\n", failure.c_str());
  CHECK(target.s.pidfd.get() >= 0);
  CHECK(SpawnAndWait(target.ExecRequest({"/bin/true"}), &failure) == 0);  // warm
  int fds_before = CountOpenFds();
  int children_before = CountChildren();
  for (int i = 0; i < iterations; i++) {
    int code = SpawnAndWait(target.ExecRequest({"/bin/true"}), &failure);
    if (code != 0) fprintf(stderr, "    iteration %d: exit %d %s\n", i, code, failure.c_str());
    CHECK(code == 0);
  }
  CHECK(CountOpenFds() == fds_before);
  CHECK(CountChildren() == children_before);

  Spawned piped;
  ncri::SpawnRequest r = target.ExecRequest({"/bin/sh", "-c", "read line; echo \"$line\" out; readlink /proc/self/ns/pid; echo err >&2"});
  for (int &slot : r.stdio) slot = ncri::kStdioPipe;
  if (SpawnStarted(std::move(r), &piped, &failure) < 0) fprintf(stderr, "    piped: %s\n", failure.c_str());
  CHECK(piped.pidfd.get() >= 0 && piped.stdio[0].get() >= 0 && piped.stdio[1].get() >= 0 && piped.stdio[2].get() >= 0);
  CHECK(write(piped.stdio[0].get(), "in\n", 3) == 3);
  piped.stdio[0].reset();
  char target_ns[64] = {};
  std::string link = "/proc/" + std::to_string(target.s.pid) + "/ns/pid";
  CHECK(readlink(link.c_str(), target_ns, sizeof target_ns - 1) > 0);
  CHECK(ReadAll(piped.stdio[1].get()) == std::string("in out\n") + target_ns + "\n");
  CHECK(ReadAll(piped.stdio[2].get()) == "err\n");
  for (ncri::Fd &fd : piped.stdio) fd.reset();
  CHECK(WaitExit(&piped, &failure) == 0);
  CHECK(CountOpenFds() == fds_before);

  CHECK(target.Stop());
  CHECK(target.strays == 0);  // every exec child was collected through its pidfd
  printf("    %d execs into a PID namespace\n", iterations);
}

// Spawns aborted right after the clone (the addon's path for a timeout or a setup error
// while the child sets up): plain ones, and exec ones whose intermediate may be anywhere
// between its start and its PID frame. Abort kills and hands over every pidfd; an exec
// child the intermediate had cloned but not yet passed is a stray of the target's PID
// namespace, reaped by the target's stop. No fd or child is left.
TEST(spawn_abort_after_clone_stress) {
  const int iterations = StressIterations(300);
  CHECK(ChildCountingWorks());
  std::string failure;
  CHECK(SpawnAndWait(TrivialRequest("/bin/true"), &failure) == 0);  // the init memfd, opened once
  int fds_before = CountOpenFds();
  int children_before = CountChildren();
  {
    ExecTarget target;
    if (!target.Start(&failure)) fprintf(stderr, "    target: %s\n", failure.c_str());
    CHECK(target.s.pidfd.get() >= 0);
    for (int i = 0; i < iterations; i++) {
      ncri::SpawnRequest r = i % 2 ? target.ExecRequest({"/bin/true"}) : TrivialRequest("/bin/true");
      std::unique_ptr<ncri::SpawnSetup> setup;
      ncri_error e{};
      if (ncri_spawn_begin(std::move(r), &setup, &e) < 0) fprintf(stderr, "    iteration %d: %s\n", i, e.step);
      CHECK(setup);
      std::vector<int> left = setup->Abort();
      CHECK(!left.empty());  // at least the child (or the intermediate) we cloned
      for (int fd : left) ReapPidfd(fd);
    }
    CHECK(target.Stop());
    printf("    %d aborted spawns, %d strays reaped\n", iterations, target.strays);
  }
  CHECK(CountOpenFds() == fds_before);
  CHECK(CountChildren() == children_before);
}

// ---------------------------------------------------------------- main

// The scratch directory: NODECRI_CORE_SCRATCH (made and removed by scripts/native-tests.js,
// which can remove it after killing us), else one of our own, removed at our exit. The
// tmpfs on it is in our private mount namespace: it goes with the process, however it ends.
bool g_own_scratch = false;

int EnterScratch() {
  if (unshare(CLONE_NEWNS) != 0) return perror("unshare(CLONE_NEWNS)"), -1;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return perror("make / private"), -1;
  const char *given = getenv("NODECRI_CORE_SCRATCH");
  if (given && *given) {
    g_scratch = given;
  } else {
    char tmpl[] = "/tmp/nodecri-core-tests-XXXXXX";
    if (!mkdtemp(tmpl)) return perror("mkdtemp"), -1;
    g_scratch = tmpl;
    g_own_scratch = true;
  }
  if (mount("tmpfs", g_scratch.c_str(), "tmpfs", 0, "mode=0755") != 0) return perror("mount scratch tmpfs"), -1;
  return 0;
}

void LeaveScratch() {
  umount2(g_scratch.c_str(), MNT_DETACH);
  if (g_own_scratch) rmdir(g_scratch.c_str());
}

}  // namespace

int main(int argc, char **argv) {
  if (argv[0][0] != '/') {
    // spawn finds nodecri-init beside this program by its own path (dladdr gives argv[0]).
    fprintf(stderr, "run nodecri-core-tests by its absolute path\n");
    return 2;
  }
  if (geteuid() != 0) {
    fprintf(stderr, "nodecri-core-tests must run as root\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (EnterScratch() < 0) {
    LeaveScratch();
    return 2;
  }
  const char *filter = argc > 1 ? argv[1] : "";
  int run = 0;
  for (const TestCase &t : Registry()) {
    if (!strstr(t.name, filter)) continue;
    run++;
    g_current_failed = false;
    printf("  %s\n", t.name);
    t.fn();
    if (g_current_failed) {
      g_failures++;
      printf("  FAIL %s\n", t.name);
    }
  }
  LeaveScratch();
  printf("native core tests: %d run, %d failed\n", run, g_failures);
  return g_failures == 0 && run > 0 ? 0 : 1;
}
