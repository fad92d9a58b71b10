// Parent side of a container clone: turn a decoded request into a flat ChildPlan, clone,
// drive the sync-socket protocol up to READY, and hand back the live child.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ncri_error.h"
#include "ncri_plan.h"
#include "ncri_seccomp.h"

namespace ncri {

// Stdio slot modes (besides a caller-owned fd >= 0).
constexpr int kStdioPipe = -1;
constexpr int kStdioNull = -2;

struct SpawnRequest {
  // Rootfs. Empty rootfs = keep the current root (exec sessions).
  std::string rootfs;
  bool root_readonly = false;
  uint64_t root_propagation = 0;  // 0 = MS_PRIVATE|MS_REC

  uint64_t new_namespaces = 0;  // CLONE_NEW* to create
  struct Join {
    std::string path;
    int nstype;  // CLONE_NEW*
  };
  std::vector<Join> join_namespaces;
  struct IdMap {
    uint32_t container_id, host_id, size;
  };
  std::vector<IdMap> uid_mappings, gid_mappings;

  struct Mount {
    std::string destination, source, type, data;
    bool has_type = false, has_data = false, bind = false;
    uint64_t flags = 0, remount = 0, propagation = 0;
  };
  std::vector<Mount> mounts;
  struct Device {
    std::string path, host_path;
    uint32_t mode, uid, gid;
    uint64_t dev;
  };
  std::vector<Device> devices;
  struct Symlink {
    std::string target, path;
  };
  std::vector<Symlink> symlinks;
  std::vector<std::pair<std::string, std::string>> sysctls;
  std::vector<std::string> masked_paths, readonly_paths;
  bool has_hostname = false, has_domainname = false;
  std::string hostname, domainname;

  std::vector<std::string> args, env;
  std::string cwd;
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
  bool has_umask = false;
  uint32_t umask = 022;
  bool has_caps = false;
  uint64_t cap_bounding = 0, cap_effective = 0, cap_permitted = 0, cap_inheritable = 0, cap_ambient = 0;
  bool no_new_privileges = false;
  std::vector<PlanRlimit> rlimits;
  bool has_oom = false;
  int oom_score_adj = 0;
  bool has_seccomp = false;
  SeccompSpec seccomp;
  std::vector<std::string> cgroup_procs;

  bool terminal = false;
  int stdio[3] = {kStdioPipe, kStdioPipe, kStdioPipe};

  // Exec into a running container: join the namespaces of target_pid (whose liveness is
  // checked through target_pidfd) that differ from ours. 0 = a new container.
  pid_t target_pid = 0;
  int target_pidfd = -1;
};

// Memory the child reads until it has exec'd or died: the request strings, the plan and
// derived arrays, and the clone stacks. Freed only after EOF on the sync socket.
struct SpawnMemory {
  SpawnRequest req;
  ChildPlan plan{};
  std::vector<PlanMount> mounts;
  std::deque<std::string> owned;  // derived strings; a deque never moves its elements
  std::vector<PlanDevice> devices;
  std::vector<PlanSymlink> symlinks;
  std::vector<PlanSysctl> sysctls;
  std::vector<PlanNamespace> join_ns;
  std::vector<const char *> masked, readonly, argv, envp, exec_dirs, cgroup_paths;
  std::vector<int32_t> keep_fds, cgroup_fds;
  std::vector<uint32_t> groups;
  std::vector<sock_filter> seccomp_filter;
  std::string oom_text;
  // Address of a plan string → its text, for error frames.
  std::unordered_map<uint64_t, std::string> paths;
  void *stack = nullptr;
  size_t stack_size = 0;
  void *inner_stack = nullptr;
  size_t inner_stack_size = 0;
  ~SpawnMemory();
};

struct SpawnResult {
  pid_t pid = -1;
  int pidfd = -1;
  int sync_fd = -1;                  // parent end: write the start byte, EOF = exec'd or died
  int stdio[3] = {-1, -1, -1};       // parent ends of pipes, -1 when not a pipe
  int terminal = -1;                 // pty master when terminal
  std::vector<std::string> warnings;
  std::unique_ptr<SpawnMemory> memory;
};

// Builds the plan, clones and waits for READY (blocking: call it off the JS thread).
// On failure nothing is left: the child is killed and reaped and every fd is closed.
int ncri_spawn(SpawnRequest &&req, SpawnResult *out, ncri_error *err);

// Decodes a frame from the child into an error (step names, the path it refers to).
void ncri_frame_error(const ChildFrame &f, const SpawnMemory *mem, ncri_error *err);

// The step's description ("find executable") for messages and warnings.
const char *ncri_step_name(uint32_t step);

}  // namespace ncri
