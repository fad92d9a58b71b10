// Turning core errors into JS errors: the only place in the addon that builds an Error.
#pragma once

#include <napi.h>

#include "ncri_error.h"

namespace ncri {

// A JS Error shaped like Node's fs errors: message "<step>: <syscall> <path>: <strerror>",
// and properties code ("EPERM"), errno (number), syscall, path, step. The facade in
// src/native turns it into a SyscallError.
Napi::Error MakeSyscallError(Napi::Env env, const ncri_error &e);

// rc, or throws e as a JS error when rc < 0 (a core function's failure).
inline int CheckSyscall(Napi::Env env, int rc, const ncri_error &e) {
  if (rc < 0) throw MakeSyscallError(env, e);
  return rc;
}

// The errno name ("ENOENT") for a number, or "E<number>" if unknown.
const char *ErrnoName(int err);

}  // namespace ncri
