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

}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("uname", Napi::Function::New(env, Uname, "uname"));
  exports.Set("dumpable", Napi::Function::New(env, Dumpable, "dumpable"));
}

}  // namespace ncri
