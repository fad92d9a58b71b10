// Raw system calls for code that runs after the clone.
//
// The child may share the parent's memory (CLONE_VM), so it must not write anything the
// parent owns: not errno (thread-local storage of the parent's cloning thread), not the
// dynamic linker's GOT (lazy PLT binding), not malloc arenas. glibc's wrappers set errno,
// and some (setresuid, setgroups) broadcast to "all threads" of a process that, in the
// child, does not exist. So every call here is a direct `syscall` instruction that returns
// -errno, and nothing in native/child calls libc.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "raw_syscall.h"

#if !defined(__x86_64__)
#error "native/child and native/spawn: the clone trampolines are written for x86_64 only"
#endif

namespace ncri::sys {

static inline long raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  return ncri_raw_syscall(n, a, b, c, d, e, f);
}

template <typename T>
static inline long L(T v) {
  return (long)(v);
}

}  // namespace ncri::sys
