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

#if !defined(__x86_64__)
#error "native/child: raw syscalls are written for x86_64 only (add the arch's asm here)"
#endif

namespace ncri::sys {

static inline long raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

template <typename T>
static inline long L(T v) {
  return (long)(v);
}

}  // namespace ncri::sys
