// OCI seccomp → BPF with libseccomp, exported through a memfd (libseccomp 2.5 has no
// export-to-memory call).
#include "ncri_seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <memory>

namespace ncri {
namespace {

struct CtxDeleter {
  void operator()(void *ctx) const { seccomp_release(ctx); }
};

bool ParseAction(const std::string &name, bool has_errno, uint32_t errno_ret, uint32_t *out) {
  uint32_t e = has_errno ? errno_ret : EPERM;
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") *out = SCMP_ACT_KILL_THREAD;
  else if (name == "SCMP_ACT_KILL_PROCESS") *out = SCMP_ACT_KILL_PROCESS;
  else if (name == "SCMP_ACT_TRAP") *out = SCMP_ACT_TRAP;
  else if (name == "SCMP_ACT_ERRNO") *out = SCMP_ACT_ERRNO(e);
  else if (name == "SCMP_ACT_TRACE") *out = SCMP_ACT_TRACE(e);
  else if (name == "SCMP_ACT_ALLOW") *out = SCMP_ACT_ALLOW;
  else if (name == "SCMP_ACT_LOG") *out = SCMP_ACT_LOG;
  else return false;  // SCMP_ACT_NOTIFY needs a listener process: not supported
  return true;
}

bool ParseOp(const std::string &name, scmp_compare *out) {
  static const struct { const char *name; scmp_compare op; } kOps[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (const auto &o : kOps)
    if (name == o.name) {
      *out = o.op;
      return true;
    }
  return false;
}

// "SCMP_ARCH_X86_64" → libseccomp's token for "x86_64".
uint32_t ResolveArch(const std::string &name) {
  std::string s = name.rfind("SCMP_ARCH_", 0) == 0 ? name.substr(10) : name;
  for (auto &c : s) c = (char)std::tolower((unsigned char)c);
  return seccomp_arch_resolve_name(s.c_str());
}

}  // namespace

int ncri_seccomp_compile(const SeccompSpec &spec, std::vector<sock_filter> *out, uint32_t *filter_flags,
                         ncri_error *err) {
  const char *step = "compile seccomp filter";
  uint32_t def;
  if (!ParseAction(spec.default_action, spec.has_default_errno_ret, spec.default_errno_ret, &def))
    return ncri_fail(err, EINVAL, "seccomp_init", step, spec.default_action.c_str());
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(def));
  if (!ctx) return ncri_fail(err, ENOMEM, "seccomp_init", step, nullptr);
  // The child sets no_new_privs itself when the spec asks for it.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);

  for (const auto &a : spec.architectures) {
    uint32_t token = ResolveArch(a);
    if (token == 0) return ncri_fail(err, EINVAL, "seccomp_arch_add", step, a.c_str());
    int rc = seccomp_arch_add(ctx.get(), token);
    if (rc < 0 && rc != -EEXIST) return ncri_fail(err, -rc, "seccomp_arch_add", step, a.c_str());
  }

  *filter_flags = 0;
  for (const auto &f : spec.flags) {
    if (f == "SECCOMP_FILTER_FLAG_LOG") *filter_flags |= SECCOMP_FILTER_FLAG_LOG;
    else if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") *filter_flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    else if (f == "SECCOMP_FILTER_FLAG_TSYNC") continue;  // meaningless for a single-threaded child
    else return ncri_fail(err, EINVAL, "seccomp", step, f.c_str());
  }

  for (const auto &rule : spec.syscalls) {
    uint32_t action;
    if (!ParseAction(rule.action, rule.has_errno_ret, rule.errno_ret, &action))
      return ncri_fail(err, EINVAL, "seccomp_rule_add", step, rule.action.c_str());
    if (action == def) continue;  // libseccomp refuses rules that restate the default
    std::vector<scmp_arg_cmp> cmps;
    for (const auto &a : rule.args) {
      scmp_compare op;
      if (!ParseOp(a.op, &op)) return ncri_fail(err, EINVAL, "seccomp_rule_add", step, a.op.c_str());
      cmps.push_back(scmp_arg_cmp{a.index, op, a.value, a.value_two});
    }
    for (const auto &name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // not a syscall on this kernel/arch
      int rc = seccomp_rule_add_array(ctx.get(), action, nr, (unsigned)cmps.size(), cmps.data());
      if (rc == -EINVAL && cmps.size() > 1) {
        // Several conditions on one argument: libseccomp wants one rule per condition
        // (their union), which is what runc does too.
        rc = 0;
        for (const auto &c : cmps) {
          rc = seccomp_rule_add_array(ctx.get(), action, nr, 1, &c);
          if (rc < 0) break;
        }
      }
      if (rc < 0) return ncri_fail(err, -rc, "seccomp_rule_add", step, name.c_str());
    }
  }

  int fd = memfd_create("ncri-seccomp", MFD_CLOEXEC);
  if (fd < 0) return ncri_fail_errno(err, "memfd_create", step, nullptr);
  int rc = seccomp_export_bpf(ctx.get(), fd);
  if (rc < 0) {
    close(fd);
    return ncri_fail(err, -rc, "seccomp_export_bpf", step, nullptr);
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS) {
    close(fd);
    return ncri_fail(err, size < 0 ? errno : E2BIG, "seccomp_export_bpf", step, nullptr);
  }
  out->resize(size / sizeof(sock_filter));
  ssize_t n = pread(fd, out->data(), size, 0);
  int saved = errno;
  close(fd);
  if (n != size) return ncri_fail(err, n < 0 ? saved : EIO, "pread", step, nullptr);
  return 0;
}

}  // namespace ncri
