// Mounts: tmpfs, bind (read-only, propagation), overlay (mount(2) or the new mount API),
// unmount. Plain syscalls; the N-API layer runs each call on a libuv pool thread because
// mount and umount can sleep in the kernel (style rule 7).
#include "mount.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>  // glibc 2.36: also fsopen, fsconfig, fsmount, move_mount, mount_setattr
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "unique_fd.h"

namespace {

using ncri::Fd;

// mount(2) with EINTR retried (a FUSE-backed source can be interrupted).
int DoMount(const char *src, const char *target, const char *type, unsigned long flags,
             const void *data) {
  int r;
  do {
    r = mount(src, target, type, flags, data);
  } while (r != 0 && errno == EINTR);
  return r;
}

bool Exists(const std::string &path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// mount(2) says ENOENT without saying which path; name the first one that is missing so
// the error points at it (checked only after the failure, so success costs nothing).
const char *MissingPath(std::initializer_list<const std::string *> paths, const char *fallback) {
  for (const std::string *p : paths)
    if (p && !p->empty() && !Exists(*p)) return p->c_str();
  return fallback;
}

unsigned long PropagationFlags(ncri_propagation p) {
  switch (p) {
    case NCRI_PROP_PRIVATE:
      return MS_PRIVATE;
    case NCRI_PROP_RPRIVATE:
      return MS_PRIVATE | MS_REC;
    case NCRI_PROP_SLAVE:
      return MS_SLAVE;
    case NCRI_PROP_RSLAVE:
      return MS_SLAVE | MS_REC;
    case NCRI_PROP_SHARED:
      return MS_SHARED;
    case NCRI_PROP_RSHARED:
      return MS_SHARED | MS_REC;
    default:
      return 0;
  }
}

// The per-mount flags a bind mount inherited from its source. A MS_BIND|MS_REMOUNT sets the
// per-mount flags to exactly what it is given, so without these a read-only remount would
// silently drop nosuid/nodev/noexec from, say, a bind of a nosuid source (and in a user
// namespace the kernel refuses to clear locked flags with EPERM).
unsigned long InheritedFlags(const char *target, int *err_out) {
  struct statvfs sv;
  if (statvfs(target, &sv) != 0) {
    *err_out = errno;
    return 0;
  }
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  *err_out = 0;
  return f;
}

// mount(2) copies at most one page of options (the terminating NUL included).
size_t OptionLimit() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)) - 1; }

// overlayfs splits its option string at ',' and lowerdir at ':', with '\' as escape. Rather
// than escape, such paths go through fsconfig(), where each path is its own argument.
bool PlainOverlayPath(const std::string &p) {
  return p.find_first_of(",:\\") == std::string::npos;
}

// Builds "lowerdir=L0:L1,upperdir=U,workdir=W[,volatile]"; false if it cannot be expressed
// (special characters) or does not fit in one page.
bool OverlayOptionString(const ncri_overlay_options *o, std::string *out) {
  std::string s = "lowerdir=";
  for (size_t i = 0; i < o->lower.size(); i++) {
    if (!PlainOverlayPath(o->lower[i])) return false;
    if (i > 0) s += ':';
    s += o->lower[i];
  }
  if (!o->upper.empty()) {
    if (!PlainOverlayPath(o->upper) || !PlainOverlayPath(o->work)) return false;
    s += ",upperdir=" + o->upper + ",workdir=" + o->work;
  }
  if (o->volatile_) s += ",volatile";
  if (s.size() > OptionLimit()) return false;
  *out = std::move(s);
  return true;
}

int OverlayClassic(const char *target, const ncri_overlay_options *o, const std::string &data,
                    ncri_error *err) {
  unsigned long flags = o->readonly ? MS_RDONLY : 0;
  if (DoMount("overlay", target, "overlay", flags, data.c_str()) == 0) return 0;
  int e = errno;
  const char *path = target;
  if (e == ENOENT) {
    const std::string t(target);
    for (const std::string &l : o->lower)
      if (!Exists(l)) return ncri_fail(err, e, "mount", "mount overlay", l.c_str());
    path = MissingPath({&o->upper, &o->work, &t}, target);
  }
  return ncri_fail(err, e, "mount", "mount overlay", path);
}

// The new mount API: one fsconfig() per lower layer ("lowerdir+", Linux >= 6.8), so neither
// the page-sized option limit nor path escaping applies, and a bad layer is named exactly.
int OverlayFsconfig(const char *target, const ncri_overlay_options *o, ncri_error *err) {
  const char *step = "mount overlay";
  Fd fs(fsopen("overlay", FSOPEN_CLOEXEC));
  if (fs.get() < 0) return ncri_fail_errno(err, "fsopen", step, target);
  if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", "overlay", 0) != 0)
    return ncri_fail_errno(err, "fsconfig", step, target);
  for (const std::string &l : o->lower) {
    if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "lowerdir+", l.c_str(), 0) != 0)
      return ncri_fail_errno(err, "fsconfig", "add overlay lower layer", l.c_str());
  }
  if (!o->upper.empty()) {
    if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "upperdir", o->upper.c_str(), 0) != 0)
      return ncri_fail_errno(err, "fsconfig", "set overlay upper layer", o->upper.c_str());
    if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "workdir", o->work.c_str(), 0) != 0)
      return ncri_fail_errno(err, "fsconfig", "set overlay work dir", o->work.c_str());
  }
  if (o->volatile_ && fsconfig(fs.get(), FSCONFIG_SET_FLAG, "volatile", nullptr, 0) != 0)
    return ncri_fail_errno(err, "fsconfig", step, target);
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return ncri_fail_errno(err, "fsconfig", "create overlay", target);
  Fd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, o->readonly ? MOUNT_ATTR_RDONLY : 0));
  if (mnt.get() < 0) return ncri_fail_errno(err, "fsmount", step, target);
  // Until move_mount the overlay is a detached mount that vanishes with its fd, so a
  // failure here leaves nothing behind.
  if (move_mount(mnt.get(), "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return ncri_fail_errno(err, "move_mount", step, target);
  return 0;
}

// "lowerdir+" (one fsconfig() per lower layer) arrived in Linux 6.8; older kernels reject
// the key with EINVAL, which is indistinguishable from a bad layer, so decide by version.
bool LowerdirPlusSupported() {
  static const bool supported = [] {
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    return major > 6 || (major == 6 && minor >= 8);
  }();
  return supported;
}

}  // namespace

int ncri_mount_tmpfs(const char *target, const ncri_tmpfs_options *o, ncri_error *err) {
  char data[64];
  if (o->has_size)
    snprintf(data, sizeof data, "mode=%o,size=%llu", o->mode & 07777,
             static_cast<unsigned long long>(o->size_bytes));
  else
    snprintf(data, sizeof data, "mode=%o", o->mode & 07777);
  unsigned long flags = (o->nosuid ? MS_NOSUID : 0) | (o->nodev ? MS_NODEV : 0) |
                        (o->noexec ? MS_NOEXEC : 0) | (o->readonly ? MS_RDONLY : 0);
  if (DoMount("tmpfs", target, "tmpfs", flags, data) != 0)
    return ncri_fail_errno(err, "mount", "mount tmpfs", target);
  return 0;
}

int ncri_bind_mount(const char *src, const char *target, const ncri_bind_options *o,
                    ncri_error *err) {
  unsigned long rec = o->recursive ? MS_REC : 0;
  if (DoMount(src, target, nullptr, MS_BIND | rec, nullptr) != 0) {
    int e = errno;
    const std::string s(src), t(target);
    return ncri_fail(err, e, "mount", "bind mount", e == ENOENT ? MissingPath({&s, &t}, target) : target);
  }
  // From here on a failure undoes the bind mount, so the caller never sees a writable or
  // wrongly propagating mount it asked to be otherwise.
  int r = 0;
  if (o->readonly && o->recursive) {
    // A remount changes only the top mount; mount_setattr(AT_RECURSIVE) makes every
    // submount read-only too, in one step.
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (mount_setattr(AT_FDCWD, target, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &attr, sizeof attr) != 0)
      r = ncri_fail_errno(err, "mount_setattr", "make bind mount read-only", target);
  } else if (o->readonly) {
    int e = 0;
    unsigned long keep = InheritedFlags(target, &e);
    if (e != 0)
      r = ncri_fail(err, e, "statvfs", "make bind mount read-only", target);
    else if (DoMount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, nullptr) != 0)
      r = ncri_fail_errno(err, "mount", "make bind mount read-only", target);
  }
  if (r == 0 && o->propagation != NCRI_PROP_NONE &&
      DoMount(nullptr, target, nullptr, PropagationFlags(o->propagation), nullptr) != 0)
    r = ncri_fail_errno(err, "mount", "set bind mount propagation", target);
  if (r < 0) umount2(target, MNT_DETACH);  // MNT_DETACH takes a recursive bind's submounts too
  return r;
}

int ncri_mount_overlay(const char *target, const ncri_overlay_options *o, ncri_error *err) {
  if (o->lower.empty() || o->upper.empty() != o->work.empty())
    return ncri_fail(err, EINVAL, "mount", "mount overlay", target);
  std::string data;
  switch (o->method) {
    case NCRI_OVERLAY_MOUNT:
      if (!OverlayOptionString(o, &data)) return ncri_fail(err, E2BIG, "mount", "mount overlay", target);
      return OverlayClassic(target, o, data, err);
    case NCRI_OVERLAY_FSCONFIG:
      return OverlayFsconfig(target, o, err);
    default:
      // Measured on 6.18 (native/core called in a loop, 2 lower layers + upper, 3 rounds of
      // 3000 mount+umount pairs, median mount time): mount(2) 107-111 us, new mount API
      // 110-115 us; no difference beyond noise, the cost is overlayfs setting up its
      // superblock. So the new API is used whenever the kernel has "lowerdir+": one code
      // path for 2 and 500 layers, no option-string escaping, and a bad layer is named by the
      // fsconfig() call that rejected it. mount(2) remains for kernels before 6.8 (and hosts
      // whose seccomp policy refuses fsopen) when the option string fits in a page.
      if (LowerdirPlusSupported()) {
        int r = OverlayFsconfig(target, o, err);
        if (r != -ENOSYS || !err || strcmp(err->syscall, "fsopen") != 0) return r;
      }
      if (!OverlayOptionString(o, &data)) return ncri_fail(err, E2BIG, "mount", "mount overlay", target);
      return OverlayClassic(target, o, data, err);
  }
}

int ncri_unmount(const char *target, bool detach, ncri_error *err) {
  int flags = (detach ? MNT_DETACH : 0) | UMOUNT_NOFOLLOW;
  int r;
  do {
    r = umount2(target, flags);
  } while (r != 0 && errno == EINTR);
  // EINVAL: not a mount point; ENOENT: no such path. Either way nothing is mounted there.
  if (r != 0 && errno != EINVAL && errno != ENOENT)
    return ncri_fail_errno(err, "umount2", "unmount", target);
  return 0;
}
