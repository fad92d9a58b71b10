// Pod namespaces: create them in a short-lived cloned child, pin them by bind-mounting
// /proc/CHILD/ns/TYPE onto files, and enter a pinned netns to bring `lo` up.
//
// Why a child: namespace membership is per thread, and every thread of a Node process
// (main, V8, libuv pool) is shared, so unshare(2)/setns(2) never run on one of ours (style
// rule 5). The child reads only memory prepared before the clone, makes only raw syscalls
// (no libc state, no errno) and reports failures as fixed-size frames (rule 3).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>

#include "ncri_error.h"

// Namespace kinds, as a bit set. The pin file for a kind is DIR/<name> (ncri_ns_name).
enum ncri_ns_kind : unsigned {
  NCRI_NS_NET = 1u << 0,
  NCRI_NS_IPC = 1u << 1,
  NCRI_NS_UTS = 1u << 2,
  NCRI_NS_USER = 1u << 3,
  NCRI_NS_CGROUP = 1u << 4,
};
constexpr int NCRI_NS_KIND_COUNT = 5;

// "net", "ipc", "uts", "user", "cgroup" for index 0..4 (bit 1<<index); nullptr otherwise.
const char *ncri_ns_name(int index);

// One line of a uid_map/gid_map: container ids [container_id, container_id+size) map to
// host ids [host_id, host_id+size).
struct ncri_id_map {
  uint32_t container_id;
  uint32_t host_id;
  uint32_t size;
};

// A sysctl in dotted form ("net.ipv4.ip_forward"; '/' stands for a '.' inside a component,
// as in sysctl(8)). Which keys are namespace-safe is policy decided by the TypeScript
// caller; the core only refuses keys that would not stay under /proc/sys.
struct ncri_sysctl {
  std::string key;
  std::string value;
};

struct ncri_pin_request {
  std::string dir;  // created (with parents) if missing
  unsigned kinds;   // NCRI_NS_* bits; at least one
  const ncri_sysctl *sysctls;
  size_t nsysctls;
  // Only with NCRI_NS_USER (and then both non-empty): written by the parent before the
  // child makes the other namespaces, so that those are owned by the new user namespace.
  const ncri_id_map *uid_map;
  size_t nuid_map;
  const ncri_id_map *gid_map;
  size_t ngid_map;
  bool deny_setgroups;  // write "deny" to /proc/CHILD/setgroups before gid_map
};

struct ncri_pin_result {
  std::string paths[NCRI_NS_KIND_COUNT];  // pin path per kind index; empty if not asked
};

// Creates the requested namespaces, applies the sysctls inside them and pins each at
// DIR/<name>. On failure nothing is left behind: pins made so far are unmounted and
// removed, and directories this call created are removed. Blocks (runs on a pool thread).
int ncri_pin_namespaces(const ncri_pin_request *req, ncri_pin_result *out, ncri_error *err);

// Unmounts (MNT_DETACH) and removes a pin. A path that is not mounted, or missing, is not
// an error: removing a pin is idempotent.
int ncri_unpin_namespace(const char *path, ncri_error *err);

// Sets IFF_UP on `lo` inside the network namespace pinned (or otherwise opened) at
// `netns_path`, from a short-lived cloned child that setns(2)es into it.
int ncri_loopback_up(const char *netns_path, ncri_error *err);

// A socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC) made inside the network namespace
// at `netns_path` (a socket stays in the namespace it was made in): the fd, or -errno. The
// setns(2) runs on a thread of its own that ends right after, never on the caller's.
int ncri_socket_in_netns(const char *netns_path, int domain, int type, ncri_error *err);

// Turns a dotted sysctl key into its /proc/sys path. EINVAL (with the key as path) for an
// empty component, "." or "..", or a character outside [A-Za-z0-9_.:/-].
int ncri_sysctl_path(const std::string &key, std::string *out, ncri_error *err);
