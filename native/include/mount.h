// Mounts for pods and containers: the shm tmpfs, bind mounts, the overlay rootfs, unmount.
// Every function may sleep in the kernel, so the N-API layer runs them on a pool thread.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "ncri_error.h"

struct ncri_tmpfs_options {
  bool has_size;
  uint64_t size_bytes;  // only with has_size; otherwise the kernel default (half of RAM)
  uint32_t mode;        // permission bits of the root directory, e.g. 01777
  bool nosuid, nodev, noexec, readonly;
};

int ncri_mount_tmpfs(const char *target, const ncri_tmpfs_options *opts, ncri_error *err);

enum ncri_propagation {
  NCRI_PROP_NONE = 0,  // leave what the bind mount inherited
  NCRI_PROP_PRIVATE,
  NCRI_PROP_RPRIVATE,
  NCRI_PROP_SLAVE,
  NCRI_PROP_RSLAVE,
  NCRI_PROP_SHARED,
  NCRI_PROP_RSHARED,
};

struct ncri_bind_options {
  bool readonly;
  bool recursive;  // MS_REC: submounts of src come along (and become read-only too)
  ncri_propagation propagation;
};

// Bind-mounts src on target; on failure of a later step (read-only remount, propagation)
// the bind mount is undone.
int ncri_bind_mount(const char *src, const char *target, const ncri_bind_options *opts,
                    ncri_error *err);

enum ncri_overlay_method {
  NCRI_OVERLAY_AUTO = 0,  // the new mount API on Linux >= 6.8, else mount(2) if it fits
  NCRI_OVERLAY_MOUNT,     // force mount(2) with one option string
  NCRI_OVERLAY_FSCONFIG,  // force fsopen/fsconfig("lowerdir+")/fsmount/move_mount
};

struct ncri_overlay_options {
  std::vector<std::string> lower;  // lower[0] is the topmost lower layer (overlayfs order)
  std::string upper;               // empty: no upper layer (read-only, needs 2+ lowers)
  std::string work;                // with upper only
  bool volatile_;                  // overlayfs "volatile": no syncs to the upper layer
  bool readonly;
  ncri_overlay_method method;
};

int ncri_mount_overlay(const char *target, const ncri_overlay_options *opts, ncri_error *err);

// umount2(target, detach ? MNT_DETACH : 0). A target that is not a mount point (EINVAL) or
// does not exist (ENOENT) is success: unmounting is idempotent.
int ncri_unmount(const char *target, bool detach, ncri_error *err);
