// N-API glue for the daemon's in-place re-exec (graceful restart and upgrade).
#include <napi.h>

#include <string>
#include <vector>

#include "js_error.h"
#include "reexec.h"
#include "registry.h"

namespace ncri {
namespace {

std::vector<std::string> Strings(const Napi::Array &a) {
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

std::vector<char *> Pointers(std::vector<std::string> &v) {
  std::vector<char *> out;
  for (auto &s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// reexec(path, argv[], envp[]): never returns on success. It runs on the main thread on
// purpose: execve ends every other thread, and there is nothing left to block.
Napi::Value Reexec(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  auto argv = Strings(info[1].As<Napi::Array>());
  auto envp = Strings(info[2].As<Napi::Array>());
  auto argvp = Pointers(argv);
  auto envpp = Pointers(envp);
  ncri_error err{};
  ncri_reexec(path.c_str(), argvp.data(), envpp.data(), &err);
  throw MakeSyscallError(env, err);
}

}  // namespace

void InitReexec(Napi::Env env, Napi::Object exports) {
  exports.Set("daemonReexec", Napi::Function::New(env, Reexec, "daemonReexec"));
}

}  // namespace ncri
