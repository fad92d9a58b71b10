// Module init only: every export is registered by its facility's file in native/napi/.
#include <napi.h>

#include "napi/registry.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ncri::InitProbe(env, exports);
  ncri::InitReexec(env, exports);
  ncri::InitCgroup(env, exports);
  ncri::InitNs(env, exports);
  ncri::InitMount(env, exports);
  ncri::InitProcess(env, exports);
  ncri::InitKeeper(env, exports);
  ncri::InitFsops(env, exports);
  ncri::InitHostSpawn(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(nodecri, Init)
