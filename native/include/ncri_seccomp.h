// Seccomp filter compilation (parent side, libseccomp): the OCI seccomp shape in, classic
// BPF out. The child only loads the program (seccomp(2)); libseccomp never runs after the
// clone because it allocates.
#pragma once

#include <linux/filter.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "ncri_error.h"

namespace ncri {

struct SeccompArg {
  uint32_t index;
  uint64_t value;
  uint64_t value_two;
  std::string op;  // "SCMP_CMP_EQ", ...
};

struct SeccompRule {
  std::vector<std::string> names;
  std::string action;  // "SCMP_ACT_ERRNO", ...
  bool has_errno_ret = false;
  uint32_t errno_ret = 0;
  std::vector<SeccompArg> args;
};

struct SeccompSpec {
  std::string default_action;
  bool has_default_errno_ret = false;
  uint32_t default_errno_ret = 0;
  std::vector<std::string> architectures;  // "SCMP_ARCH_X86_64", ...
  std::vector<std::string> flags;          // "SECCOMP_FILTER_FLAG_LOG", ...
  std::vector<SeccompRule> syscalls;
};

// Compiles `spec` to BPF. `filter_flags` receives the SECCOMP_FILTER_FLAG_* bits for
// seccomp(2). Unknown syscall names are skipped (as runc and crun do); unknown actions,
// operators, architectures or flags are EINVAL naming the offending word.
int ncri_seccomp_compile(const SeccompSpec &spec, std::vector<sock_filter> *out, uint32_t *filter_flags,
                         ncri_error *err);

}  // namespace ncri
