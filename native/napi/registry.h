// One init function per facility; addon.cc calls each. A facility's napi file defines its
// own and registers only its own exports.
#pragma once

#include <napi.h>

namespace ncri {
void InitProbe(Napi::Env env, Napi::Object exports);
void InitReexec(Napi::Env env, Napi::Object exports);
void InitCgroup(Napi::Env env, Napi::Object exports);
void InitNs(Napi::Env env, Napi::Object exports);
void InitMount(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitKeeper(Napi::Env env, Napi::Object exports);
void InitFsops(Napi::Env env, Napi::Object exports);
void InitHostSpawn(Napi::Env env, Napi::Object exports);
}  // namespace ncri
