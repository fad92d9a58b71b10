// N-API glue for the host probe: version() and uname().
#include <napi.h>
#include <sys/prctl.h>

#include "js_error.h"
#include "probe.h"
#include "registry.h"

namespace ncri {
namespace {

// The addon's own version, checked by the facade against package.json so that a stale
// build/ from an older checkout is caught at load time.
constexpr const char *kAddonVersion = "0.1.0";

Napi::Value Version(const Napi::CallbackInfo &info) {
  return Napi::String::New(info.Env(), kAddonVersion);
}

Napi::Value Uname(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ncri_uname_result u{};
  ncri_error err{};
  if (ncri_uname(&u, &err) < 0) throw MakeSyscallError(env, err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("sysname", u.sysname);
  o.Set("release", u.release);
  o.Set("machine", u.machine);
  o.Set("nodename", u.nodename);
  return o;
}

// prctl(PR_GET_DUMPABLE): whether this process may still dump core and be looked into by
// its own uid. A clone child must never change it for us (it is a property of the mm).
Napi::Value Dumpable(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1);
}

// [{ name, since, supported, errno }] for every syscall the container child needs.
Napi::Value ProbeSyscalls(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ncri_syscall_probe probes[32];
  int n = ncri_probe_syscalls(probes, 32);
  Napi::Array a = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", probes[i].name);
    o.Set("since", probes[i].since);
    o.Set("supported", probes[i].supported);
    o.Set("errno", probes[i].err);
    a.Set((uint32_t)i, o);
  }
  return a;
}

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("uname", Napi::Function::New(env, Uname, "uname"));
  exports.Set("dumpable", Napi::Function::New(env, Dumpable, "dumpable"));
  exports.Set("probeSyscalls", Napi::Function::New(env, ProbeSyscalls, "probeSyscalls"));
}

}  // namespace ncri
