// N-API glue for mounts: mountTmpfs, mountBind, mountOverlay, mountUnmount. Argument
// decoding, async work and error conversion only; the syscalls are in core/mount.cc. Every
// call returns a Promise and runs on a libuv pool thread: mount(2) and umount2(2) can sleep
// in the kernel (writeback, a slow filesystem), and the event loop must not.
#include <napi.h>

#include <string>
#include <vector>

#include "js_error.h"
#include "promise_worker.h"
#include "mount.h"
#include "registry.h"

namespace ncri {
namespace {

// Paths go to the kernel as C strings: an embedded NUL would silently cut them.
std::string CString(Napi::Env env, Napi::Value v, const std::string &what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, what + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(env, what + " must not contain NUL");
  return s;
}

Napi::Value Arg(const Napi::CallbackInfo &info, size_t i) {
  return info.Length() > i ? info[i] : info.Env().Undefined();
}

Napi::Object ObjectOf(Napi::Env env, Napi::Value v, const char *what) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}

bool BoolProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

class TmpfsWorker : public PromiseWorker {
 public:
  TmpfsWorker(Napi::Env env, std::string target, ncri_tmpfs_options o)
      : PromiseWorker(env, "nodecri:mountTmpfs"), target_(std::move(target)), o_(o) {}

 protected:
  int Run(ncri_error *err) override { return ncri_mount_tmpfs(target_.c_str(), &o_, err); }

 private:
  std::string target_;
  ncri_tmpfs_options o_;
};

// mountTmpfs(target, {sizeBytes: bigint | null, mode, flags: {nosuid, nodev, noexec, readonly}})
Napi::Value MountTmpfs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target = CString(env, Arg(info, 0), "target");
  Napi::Object opts = ObjectOf(env, Arg(info, 1), "options");
  ncri_tmpfs_options o{};
  Napi::Value size = opts.Get("sizeBytes");
  if (size.IsBigInt()) {
    bool lossless = false;
    o.size_bytes = size.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || o.size_bytes == 0) throw Napi::RangeError::New(env, "sizeBytes must be a positive 64-bit bigint");
    o.has_size = true;
  } else if (!size.IsNull()) {
    throw Napi::TypeError::New(env, "sizeBytes must be a bigint or null");
  }
  Napi::Value mode = opts.Get("mode");
  double m = mode.IsNumber() ? mode.As<Napi::Number>().DoubleValue() : -1;
  if (!(m >= 0 && m <= 07777) || m != static_cast<double>(static_cast<uint32_t>(m)))
    throw Napi::RangeError::New(env, "mode must be an integer in [0, 0o7777]");
  o.mode = static_cast<uint32_t>(m);
  Napi::Object flags = ObjectOf(env, opts.Get("flags"), "flags");
  o.nosuid = BoolProp(flags, "nosuid");
  o.nodev = BoolProp(flags, "nodev");
  o.noexec = BoolProp(flags, "noexec");
  o.readonly = BoolProp(flags, "readonly");
  auto *w = new TmpfsWorker(env, std::move(target), o);
  w->Queue();
  return w->Promise();
}

class BindWorker : public PromiseWorker {
 public:
  BindWorker(Napi::Env env, std::string src, std::string target, ncri_bind_options o)
      : PromiseWorker(env, "nodecri:mountBind"), src_(std::move(src)), target_(std::move(target)), o_(o) {}

 protected:
  int Run(ncri_error *err) override { return ncri_bind_mount(src_.c_str(), target_.c_str(), &o_, err); }

 private:
  std::string src_, target_;
  ncri_bind_options o_;
};

// mountBind(src, target, {readonly, recursive, propagation: 'private' | ... | null})
Napi::Value MountBind(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string src = CString(env, Arg(info, 0), "src");
  std::string target = CString(env, Arg(info, 1), "target");
  Napi::Object opts = ObjectOf(env, Arg(info, 2), "options");
  ncri_bind_options o{};
  o.readonly = BoolProp(opts, "readonly");
  o.recursive = BoolProp(opts, "recursive");
  Napi::Value p = opts.Get("propagation");
  o.propagation = NCRI_PROP_NONE;
  if (!p.IsNull()) {
    static const struct {
      const char *name;
      ncri_propagation value;
    } kNames[] = {{"private", NCRI_PROP_PRIVATE}, {"rprivate", NCRI_PROP_RPRIVATE},
                  {"slave", NCRI_PROP_SLAVE},     {"rslave", NCRI_PROP_RSLAVE},
                  {"shared", NCRI_PROP_SHARED},   {"rshared", NCRI_PROP_RSHARED}};
    std::string name = p.IsString() ? p.As<Napi::String>().Utf8Value() : "";
    bool found = false;
    for (const auto &n : kNames)
      if (name == n.name) {
        o.propagation = n.value;
        found = true;
      }
    if (!found) throw Napi::TypeError::New(env, "propagation must be one of private, rprivate, slave, rslave, shared, rshared or null");
  }
  auto *w = new BindWorker(env, std::move(src), std::move(target), o);
  w->Queue();
  return w->Promise();
}

class OverlayWorker : public PromiseWorker {
 public:
  OverlayWorker(Napi::Env env, std::string target, ncri_overlay_options o)
      : PromiseWorker(env, "nodecri:mountOverlay"), target_(std::move(target)), o_(std::move(o)) {}

 protected:
  int Run(ncri_error *err) override { return ncri_mount_overlay(target_.c_str(), &o_, err); }

 private:
  std::string target_;
  ncri_overlay_options o_;
};

// mountOverlay(lowerDirs, upperDir | null, workDir | null, target,
//              {volatile, readonly, method: 'auto' | 'mount' | 'fsconfig'})
Napi::Value MountOverlay(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Value lv = Arg(info, 0);
  if (!lv.IsArray()) throw Napi::TypeError::New(env, "lowerDirs must be an array");
  Napi::Array lower = lv.As<Napi::Array>();
  ncri_overlay_options o{};
  o.lower.reserve(lower.Length());
  for (uint32_t i = 0; i < lower.Length(); i++)
    o.lower.push_back(CString(env, lower.Get(i), "lowerDirs[" + std::to_string(i) + "]"));
  if (!Arg(info, 1).IsNull()) o.upper = CString(env, Arg(info, 1), "upperDir");
  if (!Arg(info, 2).IsNull()) o.work = CString(env, Arg(info, 2), "workDir");
  std::string target = CString(env, Arg(info, 3), "target");
  Napi::Object opts = ObjectOf(env, Arg(info, 4), "options");
  o.volatile_ = BoolProp(opts, "volatile");
  o.readonly = BoolProp(opts, "readonly");
  std::string method = CString(env, opts.Get("method"), "method");
  if (method == "auto")
    o.method = NCRI_OVERLAY_AUTO;
  else if (method == "mount")
    o.method = NCRI_OVERLAY_MOUNT;
  else if (method == "fsconfig")
    o.method = NCRI_OVERLAY_FSCONFIG;
  else
    throw Napi::TypeError::New(env, "method must be auto, mount or fsconfig");
  auto *w = new OverlayWorker(env, std::move(target), std::move(o));
  w->Queue();
  return w->Promise();
}

class UnmountWorker : public PromiseWorker {
 public:
  UnmountWorker(Napi::Env env, std::string target, bool detach)
      : PromiseWorker(env, "nodecri:mountUnmount"), target_(std::move(target)), detach_(detach) {}

 protected:
  int Run(ncri_error *err) override { return ncri_unmount(target_.c_str(), detach_, err); }

 private:
  std::string target_;
  bool detach_;
};

// mountUnmount(target, {detach}); resolves for a target that is not mounted.
Napi::Value MountUnmount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target = CString(env, Arg(info, 0), "target");
  Napi::Object opts = ObjectOf(env, Arg(info, 1), "options");
  auto *w = new UnmountWorker(env, std::move(target), BoolProp(opts, "detach"));
  w->Queue();
  return w->Promise();
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mountTmpfs", Napi::Function::New(env, MountTmpfs, "mountTmpfs"));
  exports.Set("mountBind", Napi::Function::New(env, MountBind, "mountBind"));
  exports.Set("mountOverlay", Napi::Function::New(env, MountOverlay, "mountOverlay"));
  exports.Set("mountUnmount", Napi::Function::New(env, MountUnmount, "mountUnmount"));
}

}  // namespace ncri
