// Stage 0 of a container clone: the only code that runs in a child sharing the daemon's
// memory. native/spawn clones it with CLONE_VM|CLONE_VFORK (no page-table copy of a large
// Node heap, and the cloning pool thread sleeps until this child has exec'd), and all it
// does is exec nodecri-init from the sealed memfd. From the exec on, the child has an
// address space of its own: the init reads its plan from a memfd, so no process a container
// can see ever maps the daemon's memory, and no change the child makes to its oom score,
// credentials or dumpable flag (all per-mm or shared with CLONE_VM) reaches the daemon.
//
// Why this is safe while it shares our memory: the clone creates at most new, empty
// namespaces (joining one happens in the init, after the exec), so no container process
// can see this task; it runs with every signal blocked (the parent blocked them around the
// clone; the init resets dispositions and the mask), writes only its own stack and its own
// fd table (not shared: no CLONE_FILES), and calls only raw syscalls (sys.h).
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "ncri_plan.h"
#include "sys.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

using ncri::sys::L;
using ncri::sys::raw;

extern "C" int ncri_exec_init_main(void *arg) {
  const ncri::ExecInitArgs *a = static_cast<const ncri::ExecInitArgs *>(arg);
  for (int i = 0; i < a->n_keep_fds; i++) raw(SYS_fcntl, a->keep_fds[i], F_SETFD, 0);
  long r = raw(SYS_execveat, a->init_fd, L(""), L(a->argv), L(a->envp), AT_EMPTY_PATH);
  ncri::ChildFrame f = ncri_make_frame(ncri::kFrameError, ncri::kStepExecInit, r, 0, 0);
  raw(SYS_sendto, a->sync_fd, L(&f), sizeof f, MSG_NOSIGNAL, 0, 0);
  for (;;) raw(SYS_exit_group, 127);
}
