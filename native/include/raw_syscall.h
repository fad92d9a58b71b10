// One direct system call: `syscall`/`svc` with the arguments in registers, returning
// -errno. Code that runs in a clone child sharing the parent's memory (CLONE_VM) uses only
// this: glibc's wrappers write errno (the cloning thread's TLS) and some broadcast to
// threads that, in the child, do not exist.
//
// NCRI_RAW_SYSCALLS is 1 where the instruction is written here (x86_64, aarch64); elsewhere
// the fallback goes through syscall(3), which sets errno, so callers must not share memory.
#pragma once

#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

// The new mount API (Linux 5.2; mount_setattr 5.12): older headers lack the numbers, which
// are the same on every architecture (the unified syscall table).
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#if defined(__x86_64__)
#define NCRI_RAW_SYSCALLS 1
static inline long ncri_raw_syscall(long n, long a, long b, long c, long d, long e, long f) {
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
#elif defined(__aarch64__)
#define NCRI_RAW_SYSCALLS 1
static inline long ncri_raw_syscall(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory", "cc");
  return x0;
}
#else
#define NCRI_RAW_SYSCALLS 0
static inline long ncri_raw_syscall(long n, long a, long b, long c, long d, long e, long f) {
  long r = syscall(n, a, b, c, d, e, f);
  return r == -1 ? -errno : r;
}
#endif
