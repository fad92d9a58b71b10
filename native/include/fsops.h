// File operations Node's fs module lacks, needed to unpack image layers with their full
// tar semantics: device nodes and overlay whiteouts (mknod), extended attributes on the
// entry itself rather than a symlink's target (l*xattr), and one flush of a whole
// filesystem before a layer is committed (syncfs).
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include <string>

#include "ncri_error.h"

// mknod(2) of `path` with the full mode (S_IFCHR, S_IFBLK or S_IFIFO plus permission bits).
int ncri_mknod(const char *path, unsigned int mode, unsigned int major, unsigned int minor,
               ncri_error *err);

// lsetxattr(2): sets `name` on `path` itself (a symlink is not followed).
int ncri_lsetxattr(const char *path, const char *name, const void *value, size_t size,
                   ncri_error *err);

// lgetxattr(2) into `out`; returns 1 and fills `out` when the attribute exists, 0 when it
// does not (ENODATA), or a negative errno.
int ncri_lgetxattr(const char *path, const char *name, std::string *out, ncri_error *err);

// syncfs(2) of the filesystem that holds `path`.
int ncri_syncfs(const char *path, ncri_error *err);

// An exclusive, non-blocking flock on `path` (created 0600, our pid written in it), or on
// `inherited_fd` when that is an fd of the same file (a re-exec keeps its lock). Returns 0
// with *out_fd, 1 when another process holds it (*holder: the file's content, its pid), or
// -errno.
int ncri_lock_exclusive(const char *path, int inherited_fd, int *out_fd, std::string *holder, ncri_error *err);
