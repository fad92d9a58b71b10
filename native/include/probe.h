#pragma once

#include <stdio.h>

#include "ncri_error.h"

struct ncri_uname_result {
  char sysname[65];
  char release[65];
  char machine[65];
  char nodename[65];
};

int ncri_uname(ncri_uname_result *out, ncri_error *err);

// The syscalls (and flags) the container child and its parent need, each tried once with
// arguments that do nothing: supported unless the kernel says ENOSYS (or EINVAL for an
// unknown flag). See src/native/probe.ts for the floor and the decision.
struct ncri_syscall_probe {
  const char *name;   // "close_range(CLOSE_RANGE_CLOEXEC)"
  const char *since;  // first kernel release that has it: "5.11"
  bool supported;
  int err;            // what the probe returned (0 or an errno)
};

// Fills up to `cap` entries; returns how many.
int ncri_probe_syscalls(ncri_syscall_probe *out, int cap);
