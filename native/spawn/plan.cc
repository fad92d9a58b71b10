// Stage 1 of a spawn, the plan (stages.h): everything the child will do, resolved in the
// parent before the clone into one block, the ChildPlan at offset 0 and the strings and
// arrays it points to as offsets (PlanBlock), handed to nodecri-init in a memfd; and the
// fds the child keeps. The child runs only async-signal-safe code on what this prepares.
#include "stages.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ncri {
namespace {

int CapLastCap() {
  static int cached = -1;
  if (cached >= 0) return cached;
  int v = 40;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (fscanf(f, "%d", &v) != 1) v = 40;
    fclose(f);
  }
  cached = v;
  return v;
}

// "/dev/pts/" → "dev/pts"; "/" → "." (relative to the rootfs, for openat2).
std::string RelPath(const std::string &dest) {
  size_t i = 0;
  while (i < dest.size() && dest[i] == '/') i++;
  std::string rel = dest.substr(i);
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  return rel.empty() ? "." : rel;
}

std::string JoinPath(const std::string &root, const std::string &dest) {
  size_t i = 0;
  while (i < dest.size() && dest[i] == '/') i++;
  std::string out = root;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  out += '/';
  out += dest.substr(i);
  return out;
}

std::string MapText(const std::vector<SpawnRequest::IdMap> &maps) {
  std::string s;
  for (const auto &m : maps)
    s += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " + std::to_string(m.size) + "\n";
  return s;
}

struct NsName {
  const char *name;
  int type;
};
// Join order: user first (it grants the capabilities for the rest), mnt last (paths of the
// other steps are host paths).
const NsName kNsOrder[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},
                           {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"cgroup", CLONE_NEWCGROUP},
                           {"mnt", CLONE_NEWNS}};

int NsRank(int type) {
  for (size_t i = 0; i < sizeof kNsOrder / sizeof kNsOrder[0]; i++)
    if (kNsOrder[i].type == type) return (int)i;
  return 100;
}

}  // namespace

int WriteAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    data += n;
    size -= (size_t)n;
  }
  return 0;
}

PlanBlock::PlanBlock() : bytes_(sizeof(ChildPlan), 0) {}

uintptr_t PlanBlock::append(const void *data, size_t size) {
  size_t off = (bytes_.size() + 7) & ~(size_t)7;
  bytes_.resize(off + size);
  memcpy(bytes_.data() + off, data, size);
  return off;
}

const char *PlanBlock::str(const std::string &s) {
  uintptr_t off = append(s.c_str(), s.size() + 1);
  texts_.emplace(off, s);
  return reinterpret_cast<const char *>(off);
}

const char *const *PlanBlock::strings(const std::vector<const char *> &offsets, bool terminate) {
  std::vector<const char *> v = offsets;
  if (terminate) v.push_back(nullptr);
  return put(v);
}

const char *PlanBlock::text(uint64_t offset) const {
  auto it = texts_.find(offset);
  return it == texts_.end() ? nullptr : it->second.c_str();
}


// An fd the child keeps; returns it (or the -1 of a failed open, not kept).
namespace {

int ChildKeeps(SpawnPlan *s, int fd) {
  if (fd >= 0) s->child_fds.emplace_back(fd);
  return fd;
}
}  // namespace

// Stage 1, the plan: everything the child will do, resolved here (the child runs only async-signal-
// safe code on what this prepares): the flat ChildPlan, the fds it uses, the memfd with the
// block. Runs in the parent, before the clone; on failure every fd it opened is closed.
int PlanSpawn(SpawnRequest &r, SpawnPlan *s, ncri_error *err) {
  PlanBlock &b = s->memory->block;
  // Built here and copied to the block's offset 0 once complete (put() may move the block).
  ChildPlan p{};

  if (r.args.empty()) return ncri_fail(err, EINVAL, "execve", "check process args", "args is empty");
  if (!r.rootfs.empty() && !(r.new_namespaces & CLONE_NEWNS))
    return ncri_fail(err, EINVAL, "pivot_root", "check rootfs", "a rootfs needs a new mount namespace");
  s->init_fd = InitBinaryFd(err);
  if (s->init_fd < 0) return s->init_fd;

  if (r.has_seccomp) {
    std::vector<sock_filter> filter;
    uint32_t flags = 0;
    if (ncri_seccomp_compile(r.seccomp, &filter, &flags, err) < 0) return -err->err;
    p.seccomp_filter = b.put(filter);
    p.seccomp_len = (uint16_t)filter.size();
    p.seccomp_flags = flags;
  }

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return ncri_fail_errno(err, "socketpair", "create sync socket", nullptr);
  s->sync.reset(sv[0]);
  s->child_sync = ChildKeeps(s, sv[1]);
  p.sync_fd = sv[1];

  // stdio, and the runtime's own /dev/null for masks (the container's /dev/null may be
  // anything by then): the child turns this fd into a detached clone of its mount.
  p.devnull_fd = -1;
  if (!r.rootfs.empty()) {
    p.devnull_fd = ChildKeeps(s, open("/dev/null", O_PATH | O_CLOEXEC));
    if (p.devnull_fd < 0) return ncri_fail_errno(err, "open", "open mask source", "/dev/null");
  }
  if (r.terminal) {
    // The pty is the container's own: the child opens /dev/ptmx in its devpts once it is
    // inside (runc's setupConsole, crun's terminal.c) and sends the master back before
    // READY (kFrameTerminal). Until then its stdio is /dev/null.
    int devnull = ChildKeeps(s, open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0) return ncri_fail_errno(err, "open", "open stdio", "/dev/null");
    for (int i = 0; i < 3; i++) p.stdio[i] = devnull;
  } else {
    int devnull = -1;
    for (int i = 0; i < 3; i++) {
      int mode = r.stdio[i];
      if (mode >= 0) {
        p.stdio[i] = mode;  // caller-owned
      } else if (mode == kStdioNull) {
        if (devnull < 0) devnull = ChildKeeps(s, open("/dev/null", O_RDWR | O_CLOEXEC));
        if (devnull < 0) return ncri_fail_errno(err, "open", "open stdio", "/dev/null");
        p.stdio[i] = devnull;
      } else {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) return ncri_fail_errno(err, "pipe2", "create stdio pipe", nullptr);
        // stdin: the child reads fds[0]; stdout/stderr: the child writes fds[1].
        int child_end = i == 0 ? fds[0] : fds[1];
        s->stdio[i].reset(i == 0 ? fds[1] : fds[0]);
        p.stdio[i] = ChildKeeps(s, child_end);
      }
    }
  }

  // cgroups: opened here, joined by the child writing "0" (works for v1 and v2).
  // TODO(cgroup v2): when the only paths are v2, pass the dir fd as CLONE_INTO_CGROUP.
  std::vector<int32_t> cgroup_fds;
  std::vector<const char *> cgroup_paths;
  for (const auto &path : r.cgroup_procs) {
    int fd = ChildKeeps(s, open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd < 0) return ncri_fail_errno(err, "open", "open cgroup.procs", path.c_str());
    cgroup_fds.push_back(fd);
    cgroup_paths.push_back(b.str(path));
  }
  p.cgroup_fds = b.put(cgroup_fds);
  p.cgroup_paths = b.strings(cgroup_paths, false);
  p.n_cgroup_fds = (int32_t)cgroup_fds.size();

  // Namespaces to join: the request's paths, or the exec target's namespaces that differ
  // from ours (entering our own user namespace again is EINVAL).
  std::vector<SpawnRequest::Join> joins = r.join_namespaces;
  if (r.target_pid > 0) {
    for (const auto &ns : kNsOrder) {
      std::string mine = std::string("/proc/self/ns/") + ns.name;
      std::string theirs = "/proc/" + std::to_string(r.target_pid) + "/ns/" + ns.name;
      struct stat sa, sb;
      if (stat(theirs.c_str(), &sb) < 0) return ncri_fail_errno(err, "stat", "inspect target namespaces", theirs.c_str());
      if (stat(mine.c_str(), &sa) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev) continue;
      joins.push_back({theirs, ns.type});
    }
  }
  std::stable_sort(joins.begin(), joins.end(),
                   [](const SpawnRequest::Join &x, const SpawnRequest::Join &y) { return NsRank(x.nstype) < NsRank(y.nstype); });
  bool joins_user = false, joins_pid = false;
  std::vector<PlanNamespace> join_ns;
  for (const auto &j : joins) {
    int fd = ChildKeeps(s, open(j.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd < 0) return ncri_fail_errno(err, "open", "open namespace", j.path.c_str());
    join_ns.push_back(PlanNamespace{fd, j.nstype, b.str(j.path)});
    if (j.nstype == CLONE_NEWUSER) joins_user = true;
    if (j.nstype == CLONE_NEWPID) joins_pid = true;
  }
  if (r.target_pid > 0 && r.target_pidfd >= 0 && PidfdSendSignal(r.target_pidfd, 0) < 0)
    // The target died (and its pid may be reused) after we opened its namespaces.
    return ncri_fail_errno(err, "pidfd_send_signal", "check exec target", std::to_string(r.target_pid).c_str());
  p.join_ns = b.put(join_ns);
  p.n_join_ns = (int32_t)join_ns.size();

  if ((r.new_namespaces & CLONE_NEWUSER) && !joins.empty() && (joins_user || joins_pid))
    return ncri_fail(err, EINVAL, "clone3", "plan namespaces", "creating a user namespace while joining a user or pid namespace");
  // Joining a PID namespace affects only children: the init joins, then clones the real
  // child into it (an intermediate). A new PID namespace is made by the clone itself: it
  // is empty until the init has exec'd, so no container process can see stage 0. A new
  // user namespace is made by the init (unshare), never by the clone: an exec in a user
  // namespace whose maps are not written yet would drop every capability.
  bool creates_user = (r.new_namespaces & CLONE_NEWUSER) != 0;
  bool &intermediate = s->intermediate;
  intermediate = joins_pid || ((joins_user || creates_user) && (r.new_namespaces & CLONE_NEWPID));
  uint64_t &clone_ns = s->clone_namespaces;
  if (intermediate) {
    p.unshare_flags = r.new_namespaces & ~(uint64_t)CLONE_NEWPID;
    p.inner_clone_flags = r.new_namespaces & CLONE_NEWPID;
  } else if (joins_user || creates_user) {
    p.unshare_flags = r.new_namespaces;  // owned by the joined or new user namespace
  } else {
    // A new cgroup namespace is rooted at the cgroup current at its creation: unshare it
    // in the child after the cgroup join.
    clone_ns = r.new_namespaces & ~(uint64_t)CLONE_NEWCGROUP;
    p.unshare_flags = r.new_namespaces & CLONE_NEWCGROUP;
  }

  // Rootfs
  if (!r.rootfs.empty()) {
    p.rootfs = b.str(r.rootfs);
    p.root_propagation = r.root_propagation ? r.root_propagation : (MS_PRIVATE | MS_REC);
    if (r.root_readonly) p.flags |= kPlanRootReadonly;
    std::vector<PlanMount> mounts;
    for (const auto &m : r.mounts) {
      PlanMount pm{};
      pm.target = b.str(JoinPath(r.rootfs, m.destination));
      pm.rel = b.str(RelPath(m.destination));
      pm.source = m.source.empty() ? nullptr : b.str(m.source);
      pm.fstype = m.has_type && !m.bind ? b.str(m.type) : nullptr;
      pm.data = m.has_data && !m.data.empty() ? b.str(m.data) : nullptr;
      pm.flags = m.flags;
      pm.remount = m.remount;
      pm.propagation = m.propagation;
      pm.target_is_dir = 1;
      if (m.bind) {
        struct stat st;
        if (stat(m.source.c_str(), &st) < 0) return ncri_fail_errno(err, "stat", "check bind mount source", m.source.c_str());
        pm.target_is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
      }
      mounts.push_back(pm);
    }
    std::vector<PlanDevice> devices;
    for (const auto &d : r.devices) {
      PlanDevice pd{};
      pd.target = b.str(JoinPath(r.rootfs, d.path));
      pd.rel = b.str(RelPath(d.path));
      pd.host_path = d.host_path.empty() ? nullptr : b.str(d.host_path);
      pd.mode = d.mode;
      pd.uid = d.uid;
      pd.gid = d.gid;
      pd.dev = d.dev;
      devices.push_back(pd);
    }
    std::vector<PlanSymlink> symlinks;
    for (const auto &sl : r.symlinks)
      symlinks.push_back(PlanSymlink{b.str(sl.target), b.str(JoinPath(r.rootfs, sl.path)), b.str(RelPath(sl.path))});
    std::vector<const char *> masked, readonly;
    for (const auto &m : r.masked_paths) masked.push_back(b.str(m));
    for (const auto &m : r.readonly_paths) readonly.push_back(b.str(m));
    p.mounts = b.put(mounts);
    p.n_mounts = (int32_t)mounts.size();
    p.devices = b.put(devices);
    p.n_devices = (int32_t)devices.size();
    p.symlinks = b.put(symlinks);
    p.n_symlinks = (int32_t)symlinks.size();
    p.masked_paths = b.strings(masked, false);
    p.n_masked = (int32_t)masked.size();
    p.readonly_paths = b.strings(readonly, false);
    p.n_readonly = (int32_t)readonly.size();
  }

  std::vector<PlanSysctl> sysctls;
  for (const auto &sc : r.sysctls) {
    std::string path = "/proc/sys/" + sc.first;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    sysctls.push_back(PlanSysctl{b.str(path), b.str(sc.second), sc.second.size()});
  }
  p.sysctls = b.put(sysctls);
  p.n_sysctls = (int32_t)sysctls.size();

  if (r.has_hostname) p.hostname = b.str(r.hostname);
  if (r.has_domainname) p.domainname = b.str(r.domainname);
  if (r.has_oom) {
    p.oom_score_adj = b.str(std::to_string(r.oom_score_adj));
    p.flags |= kPlanHasOom;
  }
  p.rlimits = b.put(r.rlimits);
  p.n_rlimits = (int32_t)r.rlimits.size();

  p.uid = r.uid;
  p.gid = r.gid;
  p.groups = b.put(r.additional_gids);
  p.n_groups = (int32_t)r.additional_gids.size();
  p.umask = r.has_umask ? r.umask : 022;
  if (r.has_caps) {
    p.flags |= kPlanHasCaps;
    p.cap_bounding = r.cap_bounding;
    p.cap_effective = r.cap_effective;
    p.cap_permitted = r.cap_permitted;
    p.cap_inheritable = r.cap_inheritable;
    p.cap_ambient = r.cap_ambient;
  }
  p.cap_last_cap = CapLastCap();
  if (r.no_new_privileges) p.flags |= kPlanNoNewPrivs;
  if (r.terminal) p.flags |= kPlanTerminal;

  // exec
  p.cwd = r.cwd.empty() ? nullptr : b.str(r.cwd);
  p.exec_name = b.str(r.args[0]);
  std::vector<const char *> argv, envp, exec_dirs;
  for (const auto &a : r.args) argv.push_back(b.str(a));
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto &e : r.env) {
    envp.push_back(b.str(e));
    if (e.rfind("PATH=", 0) == 0) path_var = e.substr(5);
  }
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    exec_dirs.push_back(b.str(dir.empty() ? "." : dir));
    start = end + 1;
  }
  p.argv = b.strings(argv, true);
  p.envp = b.strings(envp, true);
  p.exec_dirs = b.strings(exec_dirs, false);
  p.n_exec_dirs = (int32_t)exec_dirs.size();

  if (intermediate) p.flags |= kPlanIntermediate;
  if (r.new_namespaces & CLONE_NEWUSER) p.flags |= kPlanWaitIdMaps;
  // NODECRI_TEST_CLONE_FALLBACK=1 (read once) exercises the clone(2) paths in tests.
  static const bool force_fallback = getenv("NODECRI_TEST_CLONE_FALLBACK") != nullptr;
  s->force_clone_fallback = force_fallback;
  if (force_fallback) p.flags |= kPlanCloneFallback;
  // NODECRI_TEST_KILL_INTERMEDIATE=1 (read once): the intermediate dies between its clone
  // and its PID frame in exec sessions, as a kill of the container's cgroup or the OOM
  // killer may have it.
  // NODECRI_TEST_PID_FRAME=wrong-pid|two-fds: its PID frame is one the parent must reject.
  static const bool kill_intermediate = getenv("NODECRI_TEST_KILL_INTERMEDIATE") != nullptr;
  static const std::string bad_pid_frame = getenv("NODECRI_TEST_PID_FRAME") ? getenv("NODECRI_TEST_PID_FRAME") : "";
  if (intermediate && r.target_pid != 0) {
    if (kill_intermediate) p.flags |= kPlanTestKillIntermediate;
    if (bad_pid_frame == "wrong-pid") p.flags |= kPlanTestPidFrameWrongPid;
    if (bad_pid_frame == "two-fds") p.flags |= kPlanTestPidFrameTwoFds;
  }

  // The fds the child needs; it closes everything else on entry.
  std::vector<int32_t> keep_fds;
  for (const Fd &fd : s->child_fds) keep_fds.push_back(fd.get());
  for (int i = 0; i < 3; i++)
    if (p.stdio[i] >= 3) keep_fds.push_back(p.stdio[i]);
  std::sort(keep_fds.begin(), keep_fds.end());
  keep_fds.erase(std::unique(keep_fds.begin(), keep_fds.end()), keep_fds.end());
  p.keep_fds = b.put(keep_fds);
  p.n_keep_fds = (int32_t)keep_fds.size();

  // The block goes to the init in a memfd, kept open across its exec (stage 0 clears its
  // close-on-exec flag) and closed by the init once mapped.
  b.plan() = p;
  b.finish();
  int plan_fd = ChildKeeps(s, (int)syscall(SYS_memfd_create, "nodecri-plan", MFD_CLOEXEC));
  if (plan_fd < 0) return ncri_fail_errno(err, "memfd_create", "write the process plan", nullptr);
  if (WriteAll(plan_fd, b.bytes().data(), b.bytes().size()) < 0)
    return ncri_fail_errno(err, "write", "write the process plan", nullptr);
  s->exec_keep = keep_fds;
  s->exec_keep.push_back(plan_fd);
  s->plan_fd_text = std::to_string(plan_fd);
  if (r.new_namespaces & CLONE_NEWUSER) {
    s->uid_map_text = MapText(r.uid_mappings);
    s->gid_map_text = MapText(r.gid_mappings);
  }
  return 0;
}

}  // namespace ncri

void ncri_frame_error(const ncri::ChildFrame &f, const ncri::SpawnMemory *mem, ncri_error *err) {
  const char *path = mem && f.path ? mem->block.text(f.path) : nullptr;
  ncri_fail(err, f.err > 0 ? f.err : EPROTO, ncri_step_syscall(f.step), ncri_step_name(f.step), path);
}
