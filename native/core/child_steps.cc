// The names of the steps a cloned child reports by number (ncri_plan.h): the parent owns
// them, so that no child ever formats a string.
#include "ncri_plan.h"

namespace ncri {
namespace {

struct StepInfo {
  const char *syscall;
  const char *what;
};

const StepInfo kSteps[] = {
    {"", "container setup"},
    {"rt_sigaction", "reset signals"},
    {"close_range", "close inherited fds"},
    {"setsid", "start a new session"},
    {"dup3", "set up stdio"},
    {"ioctl", "set controlling terminal"},
    {"write", "join cgroup"},
    {"recvfrom", "wait for id mappings"},
    {"setns", "join namespace"},
    {"unshare", "create namespaces"},
    {"clone3", "clone into the pid namespace"},
    {"mount", "set rootfs propagation"},
    {"mount", "bind rootfs"},
    {"mkdir", "create mount point"},
    {"mount", "mount"},
    {"mount", "remount bind mount"},
    {"mount", "set mount propagation"},
    {"mknod", "create device"},
    {"symlink", "create symlink"},
    {"write", "set sysctl"},
    {"sethostname", "set hostname"},
    {"setdomainname", "set domainname"},
    {"write", "set oom_score_adj"},
    {"pivot_root", "pivot to rootfs"},
    {"umount2", "detach old root"},
    {"mount", "mask path"},
    {"mount", "make path read-only"},
    {"mount", "make rootfs read-only"},
    {"prlimit64", "set rlimit"},
    {"prctl", "drop bounding capabilities"},
    {"prctl", "keep capabilities"},
    {"setgroups", "set additional groups"},
    {"setresgid", "set gid"},
    {"setresuid", "set uid"},
    {"capset", "set capabilities"},
    {"prctl", "raise ambient capabilities"},
    {"prctl", "set no_new_privs"},
    {"seccomp", "load seccomp filter"},
    {"chdir", "change to working directory"},
    {"execve", "find executable"},
    {"", "ready"},
    {"recvfrom", "wait for start"},
    {"execve", "exec process"},
    {"execveat", "exec nodecri-init"},
    {"mmap", "read the process plan"},
    {"open", "open the container's pty"},
    {"sendmsg", "pass the pty master"},
    {"open_tree", "clone the runtime's /dev/null for masks"},
    {"recvfrom", "wait for the runtime to hold the process's pidfd"},
    // the namespace child
    {"sigprocmask", "reset signals in namespace child"},
    {"unshare", "create user namespace"},
    {"setresgid", "become root in user namespace"},
    {"setresuid", "become root in user namespace"},
    {"unshare", "create namespaces"},
    {"setns", "enter network namespace"},
    {"open", "apply sysctl"},
    {"write", "apply sysctl"},
    {"socket", "open socket in network namespace"},
    {"ioctl", "read lo flags"},
    {"ioctl", "set lo up"},
};
static_assert(sizeof kSteps / sizeof kSteps[0] == kStepCount, "one entry per ChildStep, in its order");

}  // namespace
}  // namespace ncri

const char *ncri_step_syscall(uint32_t step) { return step < ncri::kStepCount ? ncri::kSteps[step].syscall : ""; }

const char *ncri_step_name(uint32_t step) { return step < ncri::kStepCount ? ncri::kSteps[step].what : "container setup"; }
