// nodecri-init: the program a container clone execs before it does anything else (see
// exec_init.cc). A static, libc-free executable of a few pages, built from native/child
// only, so that until the container's own execve the task runs with an address space of
// its own that holds nothing but this code and its plan.
//
//   nodecri-init PLAN_FD
//
// PLAN_FD is a memfd with the plan block the daemon laid out (ncri_plan.h). The init makes
// itself non-dumpable first, as runc's nsexec does: from then on no process without
// CAP_SYS_PTRACE over it (a container's root has none) can open its /proc/<pid>/mem, exe,
// environ or fds, even once it shares a PID namespace with the container. execve of the
// container's command makes the process dumpable again, with the command's own memory.
// Its /proc/<pid>/exe is the sealed memfd copy, never the host's binary (CVE-2019-5736).
#include <errno.h>
#include <linux/prctl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ncri_plan.h"
#include "sys.h"

using ncri::ChildPlan;
using ncri::sys::L;
using ncri::sys::raw;

// The compiler may emit calls to these for struct copies and zeroing; there is no libc.
extern "C" void *memcpy(void *dst, const void *src, size_t n) {
  char *d = static_cast<char *>(dst);
  const char *s = static_cast<const char *>(src);
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}
extern "C" void *memmove(void *dst, const void *src, size_t n) {
  char *d = static_cast<char *>(dst);
  const char *s = static_cast<const char *>(src);
  if (d < s)
    for (size_t i = 0; i < n; i++) d[i] = s[i];
  else
    for (size_t i = n; i > 0; i--) d[i - 1] = s[i - 1];
  return dst;
}
extern "C" void *memset(void *dst, int c, size_t n) {
  char *d = static_cast<char *>(dst);
  for (size_t i = 0; i < n; i++) d[i] = (char)c;
  return dst;
}
extern "C" int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = static_cast<const unsigned char *>(a), *y = static_cast<const unsigned char *>(b);
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

namespace {

// Where the plan block sits in this process, for relocation and for error frames.
uintptr_t g_base = 0;
uint64_t g_size = 0;

// A string: in bounds, and it ends inside the block, whose last byte is a NUL.
template <typename T>
bool Fix(T *&field) {
  uintptr_t off = reinterpret_cast<uintptr_t>(field);
  if (off == 0) return true;  // nullptr stays nullptr
  if (off >= g_size) return false;
  field = reinterpret_cast<T *>(g_base + off);
  return true;
}

// A counted array: aligned and wholly inside the block (nullptr only when empty).
template <typename T>
bool FixN(T *&field, long n) {
  uintptr_t off = reinterpret_cast<uintptr_t>(field);
  if (off == 0) return n == 0;
  if (n < 0 || off % alignof(T) != 0 || off >= g_size || (uint64_t)n > (g_size - off) / sizeof(T)) return false;
  field = reinterpret_cast<T *>(g_base + off);
  return true;
}

// An array of string offsets: counted (n >= 0), or NULL-terminated inside the block (n < 0).
bool FixStrings(const char *const *&array, long n) {
  if (n < 0) {
    uintptr_t off = reinterpret_cast<uintptr_t>(array);
    if (off == 0 || off % 8 != 0 || off >= g_size) return false;
    const char *const *a = reinterpret_cast<const char *const *>(g_base + off);
    long max = (long)((g_size - off) / sizeof(char *));
    n = -1;
    for (long i = 0; i < max; i++)
      if (a[i] == nullptr) {
        n = i + 1;
        break;
      }
    if (n < 0) return false;
  }
  if (!FixN(array, n)) return false;
  const char **a = const_cast<const char **>(array);
  for (long i = 0; i < n; i++)
    if (!Fix(a[i])) return false;
  return true;
}

[[noreturn]] void DieReport(int sync_fd, long err) {
  ncri::ChildFrame f = ncri_make_frame(ncri::kFrameError, ncri::kStepReadPlan, err, 0, 0);
  if (sync_fd >= 0) raw(SYS_sendto, sync_fd, L(&f), sizeof f, 0x4000 /* MSG_NOSIGNAL */, 0, 0);
  for (;;) raw(SYS_exit_group, 127);
}

long ParseFd(const char *s) {
  long v = 0;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 1000000) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

}  // namespace

// Every pointer field of the plan and of the records it points to. A field added to
// ncri_plan.h must be added here: process.test.ts builds a plan with every field set.
bool ncri_plan_relocate(ChildPlan *p, uint64_t size) {
  g_base = reinterpret_cast<uintptr_t>(p);
  g_size = size;
  if (size < sizeof(ChildPlan) || reinterpret_cast<const char *>(p)[size - 1] != '\0') return false;
  bool ok = FixN(p->keep_fds, p->n_keep_fds) && FixN(p->cgroup_fds, p->n_cgroup_fds) &&
            FixStrings(p->cgroup_paths, p->n_cgroup_fds) && FixN(p->join_ns, p->n_join_ns) && Fix(p->rootfs) &&
            FixN(p->mounts, p->n_mounts) && FixN(p->devices, p->n_devices) && FixN(p->symlinks, p->n_symlinks) &&
            FixN(p->sysctls, p->n_sysctls) && FixStrings(p->masked_paths, p->n_masked) &&
            FixStrings(p->readonly_paths, p->n_readonly) && Fix(p->hostname) && Fix(p->domainname) &&
            Fix(p->oom_score_adj) && FixN(p->rlimits, p->n_rlimits) && FixN(p->groups, p->n_groups) &&
            FixN(p->seccomp_filter, p->seccomp_len) && Fix(p->cwd) && Fix(p->exec_name) &&
            FixStrings(p->exec_dirs, p->n_exec_dirs) && FixStrings(p->argv, -1) && FixStrings(p->envp, -1) &&
            p->exec_name != nullptr;
  if (!ok) return false;
  for (int i = 0; i < p->n_join_ns; i++) ok = ok && Fix(const_cast<ncri::PlanNamespace *>(p->join_ns)[i].path);
  for (int i = 0; i < p->n_mounts; i++) {
    ncri::PlanMount &m = const_cast<ncri::PlanMount *>(p->mounts)[i];
    ok = ok && Fix(m.source) && Fix(m.target) && Fix(m.rel) && Fix(m.fstype) && Fix(m.data);
  }
  for (int i = 0; i < p->n_devices; i++) {
    ncri::PlanDevice &d = const_cast<ncri::PlanDevice *>(p->devices)[i];
    ok = ok && Fix(d.target) && Fix(d.rel) && Fix(d.host_path);
  }
  for (int i = 0; i < p->n_symlinks; i++) {
    ncri::PlanSymlink &s = const_cast<ncri::PlanSymlink *>(p->symlinks)[i];
    ok = ok && Fix(s.target) && Fix(s.linkpath) && Fix(s.rel);
  }
  for (int i = 0; i < p->n_sysctls; i++) {
    ncri::PlanSysctl &s = const_cast<ncri::PlanSysctl *>(p->sysctls)[i];
    uintptr_t off = reinterpret_cast<uintptr_t>(s.value);
    ok = ok && Fix(s.path) && off != 0 && off < size && s.value_len <= size - off && Fix(s.value);
  }
  return ok;
}

// The offset of a plan string, for an error frame (0: not a plan string).
uint64_t ncri_plan_offset(const void *ptr) {
  uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  return a > g_base && a < g_base + g_size ? a - g_base : 0;
}

extern "C" [[noreturn]] void ncri_init_start(long *sp) {
  // First thing: nobody but the daemon (CAP_SYS_PTRACE) may look into us any more.
  raw(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  long argc = sp[0];
  const char *const *argv = reinterpret_cast<const char *const *>(sp + 1);
  long plan_fd = argc >= 2 ? ParseFd(argv[1]) : -1;
  if (plan_fd < 0) DieReport(-1, -EINVAL);
  struct stat st;
  long r = raw(SYS_fstat, plan_fd, L(&st));
  if (r < 0) DieReport(-1, r);
  // Private: relocation writes go to our own copy, never back into the memfd.
  long addr = raw(SYS_mmap, 0, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, plan_fd, 0);
  raw(SYS_close, plan_fd);
  if (addr < 0 && addr > -4096) DieReport(-1, addr);
  ChildPlan *plan = reinterpret_cast<ChildPlan *>(addr);
  int sync_fd = (uint64_t)st.st_size >= sizeof(ChildPlan) ? plan->sync_fd : -1;
  if (!ncri_plan_relocate(plan, (uint64_t)st.st_size)) DieReport(sync_fd, -EPROTO);
  if (plan->flags & ncri::kPlanIntermediate) ncri_intermediate_main(plan);
  ncri_child_main(plan);
  for (;;) raw(SYS_exit_group, 127);
}

__asm__(
    ".text\n"
    ".globl _start\n"
    ".type _start,@function\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %rsp, %rdi\n"     // argc, argv[], NULL, envp[], NULL, auxv
    "  and $-16, %rsp\n"
    "  call ncri_init_start\n"
    "  hlt\n"
    ".size _start, .-_start\n");
