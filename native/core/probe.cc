// Host probe: kernel identity and the facilities the runtime depends on, read once at
// start-up (never inside a request).
#include "probe.h"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int ncri_uname(ncri_uname_result *out, ncri_error *err) {
  struct utsname u;
  if (uname(&u) != 0) return ncri_fail_errno(err, "uname", "read kernel identity", nullptr);
  snprintf(out->sysname, sizeof out->sysname, "%s", u.sysname);
  snprintf(out->release, sizeof out->release, "%s", u.release);
  snprintf(out->machine, sizeof out->machine, "%s", u.machine);
  snprintf(out->nodename, sizeof out->nodename, "%s", u.nodename);
  return 0;
}
