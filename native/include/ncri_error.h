// The error convention of the native core (after crun's libcrun_error_t): every fallible
// core function returns 0 or a negative errno and, on failure, fills an ncri_error. The
// struct is plain data with fixed-size storage so that it can be filled anywhere, including
// code that must not allocate. The N-API layer turns it into a JS Error with `code` (errno
// name), `errno`, `syscall`, `path` and `step`, like Node's fs errors.
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

struct ncri_error {
  int err;              // positive errno; 0 when unset
  const char *syscall;  // static string: the failing syscall ("mount", "openat", ...)
  const char *step;     // static string: what we were doing ("pin net namespace", ...)
  char path[512];       // the path the syscall was about, truncated if longer
};

// Record an error and return -errno so "fill and return" is one statement.
static inline int ncri_fail(ncri_error *e, int err, const char *syscall, const char *step,
                            const char *path) {
  if (e) {
    e->err = err;
    e->syscall = syscall;
    e->step = step;
    e->path[0] = '\0';
    if (path) {
      size_t n = strnlen(path, sizeof e->path - 1);
      memcpy(e->path, path, n);
      e->path[n] = '\0';
    }
  }
  return -err;
}

// Same, with errno as the kernel left it.
static inline int ncri_fail_errno(ncri_error *e, const char *syscall, const char *step,
                                  const char *path) {
  return ncri_fail(e, errno, syscall, step, path);
}
