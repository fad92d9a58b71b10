#pragma once

#include "ncri_error.h"

// Replaces the daemon's image with `path` (execve), keeping its pid, so that every child
// (containers, pause processes) stays its child across a graceful restart or upgrade.
// Returns only on failure.
int ncri_reexec(const char *path, char *const argv[], char *const envp[], ncri_error *err);
