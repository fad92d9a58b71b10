// Decoding the JS process spec (src/native/process-spec.ts's shape) into a SpawnRequest,
// with a TypeError naming the field for anything malformed.
#include "process_spec.h"

#include <sys/sysmacros.h>

#include <string>
#include <vector>

namespace ncri {
namespace {

// ---------------------------------------------------------------- decoding helpers

[[noreturn]] void BadSpec(Napi::Env env, const std::string &what) {
  throw Napi::TypeError::New(env, "invalid process spec: " + what);
}

Napi::Value Get(const Napi::Object &o, const char *key) { return o.Get(key); }

bool IsNull(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  return v.IsNull() || v.IsUndefined();
}

std::string Str(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) BadSpec(o.Env(), std::string(key) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) BadSpec(o.Env(), std::string(key) + " contains a NUL byte");
  return s;
}

bool Bool(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) BadSpec(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

int64_t Int(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) BadSpec(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

uint64_t U64(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) return (uint64_t)v.As<Napi::Number>().Int64Value();
  BadSpec(o.Env(), std::string(key) + " must be a bigint");
}

Napi::Array Arr(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) BadSpec(o.Env(), std::string(key) + " must be an array");
  return v.As<Napi::Array>();
}

Napi::Object ObjAt(const Napi::Array &a, uint32_t i, const char *what) {
  Napi::Value v = a.Get(i);
  if (!v.IsObject()) BadSpec(a.Env(), std::string(what) + " entries must be objects");
  return v.As<Napi::Object>();
}

std::vector<std::string> StrArr(const Napi::Object &o, const char *key) {
  Napi::Array a = Arr(o, key);
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) BadSpec(o.Env(), std::string(key) + " must hold strings");
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) BadSpec(o.Env(), std::string(key) + " contains a NUL byte");
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<SpawnRequest::IdMap> IdMaps(const Napi::Object &o, const char *key) {
  std::vector<SpawnRequest::IdMap> out;
  Napi::Array a = Arr(o, key);
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object m = ObjAt(a, i, key);
    out.push_back({(uint32_t)Int(m, "containerId"), (uint32_t)Int(m, "hostId"), (uint32_t)Int(m, "size")});
  }
  return out;
}

SeccompSpec DecodeSeccomp(const Napi::Object &s) {
  SeccompSpec out;
  out.default_action = Str(s, "defaultAction");
  if (!IsNull(s, "defaultErrnoRet")) {
    out.has_default_errno_ret = true;
    out.default_errno_ret = (uint32_t)Int(s, "defaultErrnoRet");
  }
  out.architectures = StrArr(s, "architectures");
  out.flags = StrArr(s, "flags");
  Napi::Array rules = Arr(s, "syscalls");
  for (uint32_t i = 0; i < rules.Length(); i++) {
    Napi::Object r = ObjAt(rules, i, "seccomp.syscalls");
    SeccompRule rule;
    rule.names = StrArr(r, "names");
    rule.action = Str(r, "action");
    if (!IsNull(r, "errnoRet")) {
      rule.has_errno_ret = true;
      rule.errno_ret = (uint32_t)Int(r, "errnoRet");
    }
    Napi::Array args = Arr(r, "args");
    for (uint32_t j = 0; j < args.Length(); j++) {
      Napi::Object a = ObjAt(args, j, "seccomp args");
      rule.args.push_back({(uint32_t)Int(a, "index"), U64(a, "value"), U64(a, "valueTwo"), Str(a, "op")});
    }
    out.syscalls.push_back(std::move(rule));
  }
  return out;
}

}  // namespace

SpawnRequest DecodeSpec(const Napi::Object &s) {
  SpawnRequest r;
  if (!IsNull(s, "rootfs")) r.rootfs = Str(s, "rootfs");
  r.root_readonly = Bool(s, "rootReadonly");
  r.root_propagation = (uint64_t)Int(s, "rootPropagation");
  r.new_namespaces = (uint64_t)Int(s, "newNamespaces");
  Napi::Array joins = Arr(s, "joinNamespaces");
  for (uint32_t i = 0; i < joins.Length(); i++) {
    Napi::Object j = ObjAt(joins, i, "joinNamespaces");
    r.join_namespaces.push_back({Str(j, "path"), (int)Int(j, "type")});
  }
  r.uid_mappings = IdMaps(s, "uidMappings");
  r.gid_mappings = IdMaps(s, "gidMappings");

  Napi::Array mounts = Arr(s, "mounts");
  for (uint32_t i = 0; i < mounts.Length(); i++) {
    Napi::Object m = ObjAt(mounts, i, "mounts");
    SpawnRequest::Mount pm;
    pm.destination = Str(m, "destination");
    if (!IsNull(m, "source")) pm.source = Str(m, "source");
    if (!IsNull(m, "type")) {
      pm.type = Str(m, "type");
      pm.has_type = true;
    }
    if (!IsNull(m, "data")) {
      pm.data = Str(m, "data");
      pm.has_data = true;
    }
    pm.bind = Bool(m, "bind");
    pm.flags = (uint64_t)Int(m, "flags");
    pm.remount = (uint64_t)Int(m, "remount");
    pm.propagation = (uint64_t)Int(m, "propagation");
    r.mounts.push_back(std::move(pm));
  }
  Napi::Array devices = Arr(s, "devices");
  for (uint32_t i = 0; i < devices.Length(); i++) {
    Napi::Object d = ObjAt(devices, i, "devices");
    SpawnRequest::Device pd;
    pd.path = Str(d, "path");
    if (!IsNull(d, "hostPath")) pd.host_path = Str(d, "hostPath");
    pd.mode = (uint32_t)Int(d, "mode");
    pd.uid = (uint32_t)Int(d, "uid");
    pd.gid = (uint32_t)Int(d, "gid");
    pd.dev = makedev((unsigned)Int(d, "major"), (unsigned)Int(d, "minor"));
    r.devices.push_back(std::move(pd));
  }
  Napi::Array links = Arr(s, "symlinks");
  for (uint32_t i = 0; i < links.Length(); i++) {
    Napi::Object l = ObjAt(links, i, "symlinks");
    r.symlinks.push_back({Str(l, "target"), Str(l, "path")});
  }
  Napi::Array sysctls = Arr(s, "sysctls");
  for (uint32_t i = 0; i < sysctls.Length(); i++) {
    Napi::Object kv = ObjAt(sysctls, i, "sysctls");
    r.sysctls.emplace_back(Str(kv, "key"), Str(kv, "value"));
  }
  r.masked_paths = StrArr(s, "maskedPaths");
  r.readonly_paths = StrArr(s, "readonlyPaths");
  if (!IsNull(s, "hostname")) {
    r.hostname = Str(s, "hostname");
    r.has_hostname = true;
  }
  if (!IsNull(s, "domainname")) {
    r.domainname = Str(s, "domainname");
    r.has_domainname = true;
  }

  r.args = StrArr(s, "args");
  r.env = StrArr(s, "env");
  r.cwd = Str(s, "cwd");
  r.uid = (uint32_t)Int(s, "uid");
  r.gid = (uint32_t)Int(s, "gid");
  Napi::Array gids = Arr(s, "additionalGids");
  for (uint32_t i = 0; i < gids.Length(); i++) r.additional_gids.push_back(gids.Get(i).As<Napi::Number>().Uint32Value());
  if (!IsNull(s, "umask")) {
    r.has_umask = true;
    r.umask = (uint32_t)Int(s, "umask");
  }
  if (!IsNull(s, "capabilities")) {
    Napi::Object c = Get(s, "capabilities").As<Napi::Object>();
    r.has_caps = true;
    r.cap_bounding = U64(c, "bounding");
    r.cap_effective = U64(c, "effective");
    r.cap_permitted = U64(c, "permitted");
    r.cap_inheritable = U64(c, "inheritable");
    r.cap_ambient = U64(c, "ambient");
  }
  r.no_new_privileges = Bool(s, "noNewPrivileges");
  Napi::Array rl = Arr(s, "rlimits");
  for (uint32_t i = 0; i < rl.Length(); i++) {
    Napi::Object l = ObjAt(rl, i, "rlimits");
    PlanRlimit pl{};
    pl.resource = (int32_t)Int(l, "resource");
    pl.soft = U64(l, "soft");
    pl.hard = U64(l, "hard");
    r.rlimits.push_back(pl);
  }
  if (!IsNull(s, "oomScoreAdj")) {
    r.has_oom = true;
    r.oom_score_adj = (int)Int(s, "oomScoreAdj");
  }
  if (!IsNull(s, "seccomp")) {
    r.has_seccomp = true;
    r.seccomp = DecodeSeccomp(Get(s, "seccomp").As<Napi::Object>());
  }
  r.cgroup_procs = StrArr(s, "cgroupProcs");
  r.terminal = Bool(s, "terminal");
  Napi::Array stdio = Arr(s, "stdio");
  if (stdio.Length() != 3) BadSpec(s.Env(), "stdio must have 3 entries");
  for (uint32_t i = 0; i < 3; i++) r.stdio[i] = stdio.Get(i).As<Napi::Number>().Int32Value();
  if (!IsNull(s, "target")) {
    Napi::Object t = Get(s, "target").As<Napi::Object>();
    r.target_pid = (pid_t)Int(t, "pid");
    r.target_pidfd = (int)Int(t, "pidfd");
  }
  return r;
}

}  // namespace ncri
