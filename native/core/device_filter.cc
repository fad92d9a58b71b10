// The cgroup2 device filter (see device_filter.h for the contract): the program generator
// and bpf(2) load, attach, replace and query. Runs on libuv pool threads.
#include "device_filter.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include "unique_fd.h"

namespace {

using ncri::Fd;

constexpr const char *kStepBuild = "build device program";
constexpr const char *kStepLoad = "load device program";
constexpr const char *kStepAttach = "attach device program";
constexpr const char *kStepQuery = "query device programs";
constexpr const char *kStepDetach = "detach old device program";

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

int Bpf(int cmd, union bpf_attr *attr) {
  return static_cast<int>(syscall(__NR_bpf, cmd, attr, sizeof *attr));
}

// ---- instructions (the kernel's BPF_* macros from include/linux/filter.h, as functions)

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i;
  memset(&i, 0, sizeof i);
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// dst = *(u32 *)(src + off)
bpf_insn LoadWord(uint8_t dst, uint8_t src, int16_t off) { return Insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0); }
// 32-bit dst op= imm
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) { return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
// 32-bit dst = src
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
// dst = imm
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
// if (dst op imm) goto pc + 1 + off; the offset is patched once the next block's start is known.
bpf_insn JumpImm(uint8_t op, uint8_t dst, int32_t imm) { return Insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm); }
bpf_insn JumpReg(uint8_t op, uint8_t dst, uint8_t src) { return Insn(BPF_JMP | op | BPF_X, dst, src, 0, 0); }
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// BPF_DEVCG_ACC_* bits of "rwm", or -1 when empty, repeated or not made of r, w and m.
int32_t AccessBits(const std::string &access) {
  int32_t bits = 0;
  for (char c : access) {
    int32_t b = c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
    if (b == 0 || (bits & b) != 0) return -1;
    bits |= b;
  }
  return bits == 0 ? -1 : bits;
}

bool ValidRule(const ncri_device_rule &r) {
  int32_t bits = AccessBits(r.access);
  if (bits < 0) return false;
  if (r.type == 'a') return r.major == -1 && r.minor == -1 && bits == kAllAccess;
  if (r.type != 'c' && r.type != 'b') return false;
  return r.major >= -1 && r.major <= kNcriDevMajorMax && r.minor >= -1 && r.minor <= kNcriDevMinorMax;
}

int OpenCgroup2Dir(const std::string &dir, const char *step, ncri_error *err) {
  if (dir.empty() || dir[0] != '/') return ncri_fail(err, EINVAL, "open", step, dir.c_str());
  // O_RDONLY, not O_PATH: bpf(2) takes the cgroup from a regular open file.
  int fd;
  do {
    fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ncri_fail_errno(err, "open", step, dir.c_str());
  struct statfs st;
  if (fstatfs(fd, &st) < 0 || st.f_type != CGROUP2_SUPER_MAGIC) {
    close(fd);
    return ncri_fail(err, EINVAL, "fstatfs", step, dir.c_str());
  }
  return fd;
}

// BPF_PROG_LOAD; the fd or -errno. EAGAIN and EINTR (the verifier saw a signal) are retried.
int Load(const std::vector<bpf_insn> &program) {
  static const char kLicense[] = "Apache-2.0";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uintptr_t>(program.data());
  attr.insn_cnt = static_cast<uint32_t>(program.size());
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  // Shown by bpftool prog; at most BPF_OBJ_NAME_LEN with its NUL.
  static const char kName[] = "nodecri_devices";
  static_assert(sizeof kName <= sizeof attr.prog_name, "program name too long");
  memcpy(attr.prog_name, kName, sizeof kName);
  for (int attempt = 0;; attempt++) {
    int fd = Bpf(BPF_PROG_LOAD, &attr);
    if (fd >= 0) return fd;
    if ((errno != EAGAIN && errno != EINTR) || attempt >= 5) return -errno;
  }
}

// The fd of an attached program by id, or -errno (ENOENT: detached meanwhile).
int ProgramById(uint32_t id) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = id;
  int fd = Bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  return fd >= 0 ? fd : -errno;
}

int Query(int dirfd, std::vector<uint32_t> *ids) {
  // At most 64 programs per attach point in current kernels; ENOSPC gives the real count.
  ids->assign(64, 0);
  for (int attempt = 0;; attempt++) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = static_cast<uint32_t>(dirfd);
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uintptr_t>(ids->data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids->size());
    if (Bpf(BPF_PROG_QUERY, &attr) == 0) {
      ids->resize(attr.query.prog_cnt);
      return 0;
    }
    if (errno != ENOSPC || attempt >= 5) return -errno;
    ids->assign(attr.query.prog_cnt, 0);
  }
}

int Attach(int dirfd, int progfd, int replacefd) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(dirfd);
  attr.attach_bpf_fd = static_cast<uint32_t>(progfd);
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (replacefd >= 0) {
    attr.attach_flags |= BPF_F_REPLACE;
    attr.replace_bpf_fd = static_cast<uint32_t>(replacefd);
  }
  return Bpf(BPF_PROG_ATTACH, &attr) == 0 ? 0 : -errno;
}

int Detach(int dirfd, int progfd) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(dirfd);
  attr.attach_bpf_fd = static_cast<uint32_t>(progfd);
  attr.attach_type = BPF_CGROUP_DEVICE;
  return Bpf(BPF_PROG_DETACH, &attr) == 0 ? 0 : -errno;
}

}  // namespace

int ncri_device_program(const std::vector<ncri_device_rule> &rules, std::vector<bpf_insn> *out, ncri_error *err) {
  out->clear();
  if (rules.empty() || rules[0].type != 'a') return ncri_fail(err, EINVAL, "bpf", kStepBuild, nullptr);
  for (const ncri_device_rule &r : rules) {
    if (!ValidRule(r)) return ncri_fail(err, EINVAL, "bpf", kStepBuild, nullptr);
  }
  // The context (struct bpf_cgroup_dev_ctx) is in r1: access_type holds the device type in
  // its low 16 bits and the access in its high 16.
  out->push_back(LoadWord(BPF_REG_2, BPF_REG_1, 0));  // r2 = type
  out->push_back(Alu32Imm(BPF_AND, BPF_REG_2, 0xffff));
  out->push_back(LoadWord(BPF_REG_3, BPF_REG_1, 0));  // r3 = access
  out->push_back(Alu32Imm(BPF_RSH, BPF_REG_3, 16));
  out->push_back(LoadWord(BPF_REG_4, BPF_REG_1, 4));  // r4 = major
  out->push_back(LoadWord(BPF_REG_5, BPF_REG_1, 8));  // r5 = minor

  // Last rule first, so that the first block that matches is the rule written last. Each
  // block jumps to the next one on the first condition that fails. A rule for every device
  // matches unconditionally and ends the program: the verifier refuses unreachable code,
  // and the rules before it can never decide.
  for (size_t k = rules.size(); k-- > 0;) {
    const ncri_device_rule &r = rules[k];
    const int32_t verdict = r.allow ? 1 : 0;
    if (r.type == 'a') {
      out->push_back(Mov64Imm(BPF_REG_0, verdict));
      out->push_back(Exit());
      return 0;
    }
    std::vector<size_t> to_next;
    to_next.push_back(out->size());
    out->push_back(JumpImm(BPF_JNE, BPF_REG_2, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    const int32_t bits = AccessBits(r.access);
    if (bits != kAllAccess) {
      out->push_back(Mov32Reg(BPF_REG_1, BPF_REG_3));
      out->push_back(Alu32Imm(BPF_AND, BPF_REG_1, bits));
      to_next.push_back(out->size());
      // allow: every access asked for is in the rule; deny: any of them is.
      out->push_back(r.allow ? JumpReg(BPF_JNE, BPF_REG_1, BPF_REG_3) : JumpImm(BPF_JEQ, BPF_REG_1, 0));
    }
    if (r.major >= 0) {
      to_next.push_back(out->size());
      out->push_back(JumpImm(BPF_JNE, BPF_REG_4, static_cast<int32_t>(r.major)));
    }
    if (r.minor >= 0) {
      to_next.push_back(out->size());
      out->push_back(JumpImm(BPF_JNE, BPF_REG_5, static_cast<int32_t>(r.minor)));
    }
    out->push_back(Mov64Imm(BPF_REG_0, verdict));
    out->push_back(Exit());
    for (size_t at : to_next) (*out)[at].off = static_cast<int16_t>(out->size() - at - 1);
  }
  // Unreachable while the first rule is an 'a' rule; kept so the program is whole anyway.
  out->push_back(Mov64Imm(BPF_REG_0, 0));
  out->push_back(Exit());
  return 0;
}

int ncri_device_filter_attach(const std::string &dir, const std::vector<bpf_insn> &program, ncri_error *err) {
  if (program.empty()) return ncri_fail(err, EINVAL, "bpf", kStepLoad, dir.c_str());
  int r = OpenCgroup2Dir(dir, kStepAttach, err);
  if (r < 0) return r;
  Fd dirfd(r);
  r = Load(program);
  if (r < 0) return ncri_fail(err, -r, "bpf", kStepLoad, dir.c_str());
  Fd prog(r);

  // As crun's ebpf_attach_program: replace a single program in place, else attach the new
  // one beside the old ones and then detach those. A concurrent update can make an id go
  // away between the query and its use (ENOENT): query again.
  bool try_replace = true;
  for (int attempt = 0;; attempt++) {
    std::vector<uint32_t> old;
    r = Query(dirfd.get(), &old);
    if (r < 0) return ncri_fail(err, -r, "bpf", kStepQuery, dir.c_str());
    if (try_replace && old.size() == 1) {
      int fd = ProgramById(old[0]);
      if (fd == -ENOENT && attempt < 5) continue;
      if (fd < 0) return ncri_fail(err, -fd, "bpf", kStepAttach, dir.c_str());
      Fd replace(fd);
      r = Attach(dirfd.get(), prog.get(), replace.get());
      if (r == 0) return 0;
      if (r == -ENOENT && attempt < 5) continue;
      if (r != -EINVAL) return ncri_fail(err, -r, "bpf", kStepAttach, dir.c_str());
      try_replace = false;  // a kernel without BPF_F_REPLACE (before 5.6)
      continue;
    }
    r = Attach(dirfd.get(), prog.get(), -1);
    if (r < 0) return ncri_fail(err, -r, "bpf", kStepAttach, dir.c_str());
    for (uint32_t id : old) {
      int fd = ProgramById(id);
      if (fd == -ENOENT) continue;
      if (fd < 0) return ncri_fail(err, -fd, "bpf", kStepDetach, dir.c_str());
      Fd o(fd);
      r = Detach(dirfd.get(), o.get());
      if (r < 0 && r != -ENOENT) return ncri_fail(err, -r, "bpf", kStepDetach, dir.c_str());
    }
    return 0;
  }
}

int ncri_device_filter_query(const std::string &dir, std::vector<uint32_t> *ids, ncri_error *err) {
  int r = OpenCgroup2Dir(dir, kStepQuery, err);
  if (r < 0) return r;
  Fd dirfd(r);
  r = Query(dirfd.get(), ids);
  if (r < 0) return ncri_fail(err, -r, "bpf", kStepQuery, dir.c_str());
  return 0;
}

int ncri_device_filter_probe(ncri_error *err) {
  std::vector<bpf_insn> allow_all = {Mov64Imm(BPF_REG_0, 1), Exit()};
  int fd = Load(allow_all);
  if (fd < 0) return ncri_fail(err, -fd, "bpf", kStepLoad, nullptr);
  close(fd);
  return 0;
}
