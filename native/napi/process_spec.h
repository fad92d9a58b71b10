// The JS process spec -> SpawnRequest (process_spec.cc), for napi/process.cc.
#pragma once

#include <napi.h>

#include "../spawn/spawn.h"

namespace ncri {
// Throws a TypeError ("invalid process spec: <field> must be ...") on a malformed spec.
SpawnRequest DecodeSpec(const Napi::Object &spec);
}  // namespace ncri
