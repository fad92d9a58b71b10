// The syscall side of the cgroup facility, for v1 and v2 alike. These functions know
// nothing about controllers or resources: they make directories, read and write control
// files, kill what is inside a cgroup and remove it. Which file gets which value is policy
// and lives in TypeScript (src/linux/cgroups/).
//
// Every function may sleep in the kernel (cgroupfs writes take cgroup_mutex, rmdir waits for
// css offlining, kill-all polls), so the N-API layer only calls them from pool threads.
// All return 0 or -errno and fill the ncri_error on failure.
#pragma once

#include <string>
#include <vector>

#include "ncri_error.h"

// mkdir -p of `rel` below the hierarchy mounted at `root`, one component at a time relative
// to the previous one's fd (an existing component is fine). For every component, each file
// in `inherit_files` that reads back empty is filled with the parent's value: a new v1
// cpuset cgroup has empty cpuset.cpus/mems and refuses tasks until they are set.
int ncri_cgroup_mkdir(const std::string &root, const std::string &rel,
                      const std::vector<std::string> &inherit_files, ncri_error *err);

struct ncri_cgroup_write {
  std::string dir;    // absolute cgroup directory
  std::string file;   // a control file name in it (no '/')
  std::string value;  // written with a single write(2): cgroupfs parses each write whole
  bool may_fail;      // record the errno in `result` and go on instead of failing the batch
  int result;         // out: 0 or a positive errno (only ever non-zero when may_fail)
};

// Writes in order, stopping at the first failure of an entry that may not fail. Consecutive
// entries in the same directory share one directory fd.
int ncri_cgroup_write_files(std::vector<ncri_cgroup_write> *writes, ncri_error *err);

struct ncri_cgroup_read {
  std::string dir;
  std::string file;
  bool found;         // out: false when the directory or the file does not exist
  std::string value;  // out: the whole content
};

// Reads each file whole; a missing file or directory is not an error (found = false), so
// optional files (memory.memsw.*, cgroup.kill on old kernels) are probed by reading them.
int ncri_cgroup_read_files(std::vector<ncri_cgroup_read> *reads, ncri_error *err);

// Removes the cgroup directory `dir` and every cgroup below it, deepest first. A missing
// directory is success. rmdir is retried with short sleeps while it fails with EBUSY: a
// cgroup whose last task has just exited stays busy until the kernel finishes with it.
int ncri_cgroup_rmdir(const std::string &dir, ncri_error *err);

struct ncri_cgroup_kill_spec {
  // v2 cgroup dirs to write "1" to cgroup.kill in; a missing file (kernel < 5.14) or dir
  // is skipped. If any write succeeds the kernel does the killing and we only wait.
  std::vector<std::string> kill_dirs;
  // Dirs whose cgroup.procs (recursively, with every sub-cgroup) must end up empty.
  std::vector<std::string> procs_dirs;
  // A freezer to hold the tasks still while their pids are read and signalled, so that a
  // pid cannot be recycled in between: "" for none.
  std::string freezer_dir;
  int freezer_version;  // 1: freezer.state FROZEN/THAWED; 2: cgroup.freeze 1/0
};

// One round of killing every task in the cgroups; never waits (but for a freeze to take,
// at most 100 ms). The first round writes cgroup.kill (*kernel_kills: did any write work)
// and signals the tasks itself when none did; a later one signals them when `signal`.
// Returns how many tasks were still listed in cgroup.procs before the round signalled,
// or -errno; with tasks left and `expired`, fails with EBUSY instead. The caller waits
// between rounds (on its event loop, not a thread) until none is left.
int ncri_cgroup_kill_round(const ncri_cgroup_kill_spec &spec, bool first, bool signal, bool expired,
                           bool *kernel_kills, ncri_error *err);
