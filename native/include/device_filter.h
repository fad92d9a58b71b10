// The cgroup2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program built from device rules
// and attached to a cgroup2 directory, which is what enforces device access on cgroup v2
// (cgroup2 has no devices controller; the kernel runs the cgroup's device programs on every
// open and mknod of a device node by a task in it, and on hybrid hosts also checks the v1
// devices controller). Plain syscalls, no N-API; the program is assembled by hand, no
// libbpf (structure after crun's src/libcrun/ebpf.c and runc's devicefilter.go).
//
// Semantics, those of a v1 devices cgroup that is written the rules in order: the last rule
// that matches an access decides. An allow rule matches when it covers every kind of access
// asked for (an open for read and write needs a rule with "rw"); a deny rule matches when it
// covers any of them. No matching rule denies.
#pragma once

#include <linux/bpf.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "ncri_error.h"

// Largest major and minor a dev_t holds (12 and 20 bits); a rule beyond can match nothing.
constexpr int64_t kNcriDevMajorMax = 4095;
constexpr int64_t kNcriDevMinorMax = 1048575;

struct ncri_device_rule {
  bool allow;
  char type;        // 'a' (every device: major, minor -1 and access "rwm"), 'c' or 'b'
  int64_t major;    // -1: any
  int64_t minor;    // -1: any
  std::string access;  // a non-empty combination of 'r', 'w' and 'm', each at most once
};

// Builds the program (pure: no syscalls). The rules must start with a rule of type 'a', so
// that the result never depends on what a cgroup inherited; fails with EINVAL on any rule the
// program (or a v1 devices cgroup) cannot express: a type other than a/c/b, an 'a' rule with
// a major, a minor or partial access, a number out of range, a bad access string.
int ncri_device_program(const std::vector<ncri_device_rule> &rules, std::vector<struct bpf_insn> *out,
                        ncri_error *err);

// Loads `program` and attaches it to the cgroup2 directory `dir` with BPF_F_ALLOW_MULTI,
// replacing what is attached there: with BPF_F_REPLACE when exactly one program is (so no
// moment has none), else by attaching and then detaching every older one. The program's fd
// is closed before returning: the attachment holds the program, and goes with the cgroup.
int ncri_device_filter_attach(const std::string &dir, const std::vector<struct bpf_insn> &program,
                              ncri_error *err);

// The ids of the BPF_CGROUP_DEVICE programs attached to the cgroup2 directory `dir`.
int ncri_device_filter_query(const std::string &dir, std::vector<uint32_t> *ids, ncri_error *err);

// Whether this kernel loads cgroup device programs for us: loads an allow-all one and closes
// it. 0, or -errno (ENOSYS without bpf(2), EINVAL without CONFIG_CGROUP_BPF, EPERM).
int ncri_device_filter_probe(ncri_error *err);
