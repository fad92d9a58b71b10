#include "js_error.h"

#include <string>

namespace ncri {

const char *ErrnoName(int err) {
  // strerrorname_np is glibc >= 2.32 (Debian 12 has 2.36).
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

Napi::Error MakeSyscallError(Napi::Env env, const ncri_error &e) {
  std::string msg;
  if (e.step && *e.step) {
    msg += e.step;
    msg += ": ";
  }
  msg += e.syscall ? e.syscall : "syscall";
  if (e.path[0]) {
    msg += " ";
    msg += e.path;
  }
  msg += ": ";
  msg += strerror(e.err);
  Napi::Error error = Napi::Error::New(env, msg);
  Napi::Object obj = error.Value();
  obj.Set("code", Napi::String::New(env, ErrnoName(e.err)));
  obj.Set("errno", Napi::Number::New(env, e.err));
  obj.Set("syscall", Napi::String::New(env, e.syscall ? e.syscall : ""));
  if (e.path[0]) obj.Set("path", Napi::String::New(env, e.path));
  if (e.step) obj.Set("step", Napi::String::New(env, e.step));
  return error;
}

}  // namespace ncri
