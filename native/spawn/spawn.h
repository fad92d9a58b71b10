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
#include "unique_fd.h"

// The C-level entry points (ncri_*, at the end) are global, as every core function is; the
// C++ types are in namespace ncri. ncri_spawn_begin is declared first for SpawnSetup's friend.
namespace ncri {
struct SpawnRequest;
class SpawnSetup;
}  // namespace ncri
int ncri_spawn_begin(ncri::SpawnRequest &&req, std::unique_ptr<ncri::SpawnSetup> *out, ncri_error *err);

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

// The plan block for nodecri-init (ncri_plan.h): the ChildPlan at offset 0, then the
// strings and arrays it points to, every pointer stored as an offset into the block.
class PlanBlock {
 public:
  PlanBlock();
  // Appends n objects (8-byte aligned) and returns their offset as a pointer value.
  template <typename T>
  const T *put(const T *data, size_t n) {
    if (n == 0) return nullptr;
    return reinterpret_cast<const T *>(append(data, sizeof(T) * n));
  }
  template <typename T>
  const T *put(const std::vector<T> &v) {
    return put(v.data(), v.size());
  }
  // A NUL-terminated copy of s; remembered for error frames that name it.
  const char *str(const std::string &s);
  // An array of strings (offsets), NULL-terminated when `terminate`.
  const char *const *strings(const std::vector<const char *> &offsets, bool terminate);
  ChildPlan &plan() { return *reinterpret_cast<ChildPlan *>(bytes_.data()); }
  // Ends the block with a NUL byte, so that every string in it ends inside it.
  void finish() { bytes_.push_back('\0'); }
  const std::vector<char> &bytes() const { return bytes_; }
  // The text of the plan string at `offset` (from a frame), or nullptr.
  const char *text(uint64_t offset) const;

 private:
  uintptr_t append(const void *data, size_t size);
  std::vector<char> bytes_;
  std::unordered_map<uint64_t, std::string> texts_;
};

// What the parent keeps of a spawn until the child has exec'd its command or died: the
// plan's strings, to name the path of an error frame. The child never reads our memory
// (it runs nodecri-init on its own copy), so dropping this early is always safe.
struct SpawnMemory {
  PlanBlock block;
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

// How long a child may take from the clone to READY.
constexpr int kSpawnSetupTimeoutMs = 60000;

// A clone between the clone and READY: the parent's side of the sync-socket protocol, as
// a state machine the caller drives from its event loop (Step whenever sync_fd() is
// readable), so that no thread blocks while a child sets up (style Rule 7). Owns every fd
// and pidfd of the spawn until Finish or Abort hands them over; whatever it still owns is
// closed by the destructor.
class SpawnSetup {
 public:
  SpawnSetup(const SpawnSetup &) = delete;
  SpawnSetup &operator=(const SpawnSetup &) = delete;
  ~SpawnSetup() = default;  // closes whatever it still owns
  int sync_fd() const { return sync_.get(); }
  // Handles every frame queued on the sync socket; never blocks. 1 = READY (call Finish),
  // 0 = more to come, < 0 = failed, with err set (call Abort).
  int Step(ncri_error *err);
  // After READY: the live child's fds, warnings and plan strings go to *out.
  void Finish(SpawnResult *out);
  // Kills what is alive (SIGKILL) and hands over every pidfd of ours not yet reaped: each
  // becomes readable once its process is a zombie, and waitid(P_PIDFD, WNOHANG) then reaps
  // it without blocking. The caller reaps them all (they are our children: nobody else
  // will) and closes them.
  std::vector<int> Abort();
  // The intermediate of a double clone, once it has sent its PID frame and is exiting, if
  // it is not reaped yet (-1 otherwise): the caller reaps and closes it.
  int TakeIntermediate();
  // While true, pidfd() is the intermediate's: its exit before its PID frame fails the
  // spawn at once (the real child, if cloned, keeps the sync socket open: no EOF comes).
  bool awaiting_pid() const { return awaiting_pid_; }
  int pidfd() const { return pidfd_.get(); }

 private:
  friend int ::ncri_spawn_begin(ncri::SpawnRequest &&req, std::unique_ptr<ncri::SpawnSetup> *out, ncri_error *err);
  SpawnSetup() = default;
  int HandleFrame(const ChildFrame &f, int passed, ncri_error *err);
  void TryReapIntermediate();
  // A received fd we do not take: a pidfd is kept for Abort (its process may be our child,
  // which nobody else would kill or reap), anything else is closed.
  void Reject(int fd);

  pid_t pid_ = -1;
  Fd pidfd_;               // the child we report: the intermediate until its PID frame
  Fd intermediate_pidfd_;  // the intermediate after its PID frame, until reaped
  std::vector<Fd> rejected_pidfds_;  // pidfds of rejected frames: Abort kills and hands them over
  Fd sync_;
  bool awaiting_pid_ = false;    // an intermediate's PID frame comes before any other
  bool wants_terminal_ = false;
  Fd stdio_[3];
  Fd terminal_;
  std::string uid_map_, gid_map_;
  std::vector<std::string> warnings_;
  std::unique_ptr<SpawnMemory> memory_;
};

}  // namespace ncri

// Opens nodecri-init (beside the addon) into the sealed memfd every clone execs; done by
// the first spawn otherwise. Returns the fd or -errno.
int ncri_spawn_prepare(ncri_error *err);

// Builds the plan and clones. Blocks only until the child has exec'd nodecri-init
// (CLONE_VFORK): call it off the JS thread. The rest of the setup is *out's to drive. On
// failure no child exists and every fd is closed.
int ncri_spawn_begin(ncri::SpawnRequest &&req, std::unique_ptr<ncri::SpawnSetup> *out, ncri_error *err);

// Decodes a frame from the child into an error (step names, the path it refers to).
void ncri_frame_error(const ncri::ChildFrame &f, const ncri::SpawnMemory *mem, ncri_error *err);
