// Between the files of native/spawn (napi/ includes spawn.h only): the stages of a spawn,
// in the order they run. plan.cc: stage 1, PlanSpawn (everything the child will do, laid
// out before the clone). clone.cc: stage 2, CloneStage0, and ncri_spawn_begin, which runs
// the stages. handshake.cc: stage 3, SpawnSetup (spawn.h), the child's frames up to READY.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "spawn.h"

namespace ncri {

// A spawn planned and not yet cloned: the plan block (in memory, and in the memfd the init
// reads), the fds the child needs (closed in the parent right after the clone) and the
// parent's ends of them, and what stage 0 reads from our memory.
struct SpawnPlan {
  std::unique_ptr<SpawnMemory> memory = std::make_unique<SpawnMemory>();
  std::vector<Fd> child_fds;  // every fd the child keeps, the plan's memfd last
  Fd sync;                    // our end of the sync socket
  Fd stdio[3];                // our ends of stdio pipes
  uint64_t clone_namespaces = 0;  // CLONE_NEW* the clone itself creates
  bool intermediate = false;      // the init is the intermediate of a double clone
  bool force_clone_fallback = false;
  // Stage 0's arguments (ExecInitArgs points into these).
  int init_fd = -1;
  int child_sync = -1;
  std::vector<int32_t> exec_keep;
  std::string plan_fd_text;
  // With a new user namespace: the uid_map and gid_map the handshake writes.
  std::string uid_map_text, gid_map_text;
};

// Stage 1 (plan.cc). Runs in the parent, before the clone; on failure every fd it opened
// is closed (by *s).
int PlanSpawn(SpawnRequest &r, SpawnPlan *s, ncri_error *err);

// Stage 2 (clone.cc): clones the child, which runs stage 0 (native/child/exec_init.cc) on
// what `s` holds, and returns once it has exec'd nodecri-init or died.
int CloneStage0(const SpawnPlan &s, pid_t *pid, int *pidfd, ncri_error *err);

// The sealed memfd with nodecri-init that every clone execs (clone.cc), made once.
int InitBinaryFd(ncri_error *err);

// write(2) until all is written (EINTR retried); -1 with errno on failure.
int WriteAll(int fd, const char *data, size_t size);

inline int PidfdSendSignal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0); }

}  // namespace ncri
