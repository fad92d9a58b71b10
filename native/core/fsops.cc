// Plain syscall code for image layer unpacking; see fsops.h.
#include "fsops.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

int ncri_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor,
               ncri_error *err) {
  if (mknod(path, mode, makedev(major, minor)) != 0)
    return ncri_fail_errno(err, "mknod", "create device node", path);
  return 0;
}

int ncri_lsetxattr(const char *path, const char *name, const void *value, size_t size,
                   ncri_error *err) {
  if (lsetxattr(path, name, value, size, 0) != 0)
    return ncri_fail_errno(err, "lsetxattr", "set extended attribute", path);
  return 0;
}

int ncri_lgetxattr(const char *path, const char *name, std::string *out, ncri_error *err) {
  // Ask for the size first; retry if the value grows between the two calls.
  for (int attempt = 0; attempt < 4; attempt++) {
    ssize_t n = lgetxattr(path, name, nullptr, 0);
    if (n < 0) {
      if (errno == ENODATA) return 0;
      return ncri_fail_errno(err, "lgetxattr", "read extended attribute", path);
    }
    out->resize(static_cast<size_t>(n));
    ssize_t got = lgetxattr(path, name, n > 0 ? &(*out)[0] : nullptr, static_cast<size_t>(n));
    if (got >= 0) {
      out->resize(static_cast<size_t>(got));
      return 1;
    }
    if (errno == ENODATA) return 0;
    if (errno != ERANGE) return ncri_fail_errno(err, "lgetxattr", "read extended attribute", path);
  }
  return ncri_fail(err, ERANGE, "lgetxattr", "read extended attribute", path);
}

int ncri_syncfs(const char *path, ncri_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (fd < 0) return ncri_fail_errno(err, "open", "flush filesystem", path);
  int rc = syncfs(fd);
  int saved = errno;
  close(fd);
  if (rc != 0) return ncri_fail(err, saved, "syncfs", "flush filesystem", path);
  return 0;
}

int ncri_lock_exclusive(const char *path, int inherited_fd, int *out_fd, std::string *holder, ncri_error *err) {
  struct stat want;
  if (inherited_fd >= 0) {
    // A re-exec'd daemon keeps the lock its previous image held: the same open file
    // description, so flock() succeeds again on it, with no moment where it is free.
    struct stat have;
    if (fstat(inherited_fd, &have) == 0 && stat(path, &want) == 0 && have.st_dev == want.st_dev &&
        have.st_ino == want.st_ino && flock(inherited_fd, LOCK_EX | LOCK_NB) == 0) {
      fcntl(inherited_fd, F_SETFD, FD_CLOEXEC);
      *out_fd = inherited_fd;
      return 0;
    }
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ncri_fail_errno(err, "open", "open lock file", path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int saved = errno;
    if (saved == EWOULDBLOCK) {
      char buf[32] = {0};
      ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      if (n > 0) holder->assign(buf, (size_t)n);
    }
    close(fd);
    if (saved == EWOULDBLOCK) return 1;
    return ncri_fail(err, saved, "flock", "lock", path);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != (ssize_t)pid.size()) {
    int saved = errno;
    close(fd);
    return ncri_fail(err, saved, "pwrite", "write lock holder", path);
  }
  *out_fd = fd;
  return 0;
}
