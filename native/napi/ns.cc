// N-API glue for namespaces: nsPin, nsUnpin, nsLoopbackUp. Argument decoding, async work
// and error conversion only; the syscalls are in core/ns.cc. Each call returns a Promise and
// runs on a libuv pool thread: the work waits on a child process and on mount(2).
#include <napi.h>

#include <sys/socket.h>

#include <string>
#include <vector>

#include "js_error.h"
#include "promise_worker.h"
#include "ns.h"
#include "registry.h"

namespace ncri {
namespace {

Napi::Object ObjectArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsObject())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

// Strings go to the kernel as C strings: an embedded NUL would silently cut them.
std::string CString(Napi::Env env, Napi::Value v, const char *what) {
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(env, std::string(what) + " must not contain NUL");
  return s;
}

std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  return CString(info.Env(), info.Length() > i ? info[i] : info.Env().Undefined(), what);
}

std::string StringProp(Napi::Object o, const char *key) { return CString(o.Env(), o.Get(key), key); }

bool BoolProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Array ArrayProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array");
  return v.As<Napi::Array>();
}

uint32_t Uint32Prop(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(d);
}

// null -> empty; otherwise an array of {containerID, hostID, size}.
std::vector<ncri_id_map> IdMapProp(Napi::Object o, const char *key) {
  std::vector<ncri_id_map> out;
  Napi::Value v = o.Get(key);
  if (v.IsNull()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array or null");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(o.Env(), std::string(key) + " entries must be objects");
    Napi::Object m = e.As<Napi::Object>();
    out.push_back({Uint32Prop(m, "containerID"), Uint32Prop(m, "hostID"), Uint32Prop(m, "size")});
  }
  return out;
}

class PinWorker : public PromiseWorker {
 public:
  PinWorker(Napi::Env env, std::string dir, unsigned kinds, std::vector<ncri_sysctl> sysctls,
            std::vector<ncri_id_map> uid_map, std::vector<ncri_id_map> gid_map,
            bool deny_setgroups)
      : PromiseWorker(env, "nodecri:nsPin"),
        sysctls_(std::move(sysctls)),
        uid_map_(std::move(uid_map)),
        gid_map_(std::move(gid_map)) {
    req_.dir = std::move(dir);
    req_.kinds = kinds;
    req_.sysctls = sysctls_.data();
    req_.nsysctls = sysctls_.size();
    req_.uid_map = uid_map_.data();
    req_.nuid_map = uid_map_.size();
    req_.gid_map = gid_map_.data();
    req_.ngid_map = gid_map_.size();
    req_.deny_setgroups = deny_setgroups;
  }

 protected:
  int Run(ncri_error *err) override { return ncri_pin_namespaces(&req_, &result_, err); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    for (int i = 0; i < NCRI_NS_KIND_COUNT; i++) {
      const std::string &p = result_.paths[i];
      o.Set(ncri_ns_name(i), p.empty() ? env.Null() : Napi::String::New(env, p));
    }
    return o;
  }

 private:
  std::vector<ncri_sysctl> sysctls_;
  std::vector<ncri_id_map> uid_map_, gid_map_;
  ncri_pin_request req_{};
  ncri_pin_result result_;
};

// nsPin({types, dir, sysctls: [{key, value}], uidMap, gidMap, denySetgroups})
//   -> Promise<{net, ipc, uts, user, cgroup: string | null}>
Napi::Value NsPin(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object opts = ObjectArg(info, 0, "options");
  unsigned kinds = 0;
  Napi::Array types = ArrayProp(opts, "types");
  for (uint32_t i = 0; i < types.Length(); i++) {
    Napi::Value t = types.Get(i);
    std::string name = t.IsString() ? t.As<Napi::String>().Utf8Value() : "";
    int k = 0;
    while (k < NCRI_NS_KIND_COUNT && name != ncri_ns_name(k)) k++;
    if (k == NCRI_NS_KIND_COUNT) throw Napi::TypeError::New(env, "unknown namespace type '" + name + "'");
    kinds |= 1u << k;
  }
  std::vector<ncri_sysctl> sysctls;
  Napi::Array sa = ArrayProp(opts, "sysctls");
  for (uint32_t i = 0; i < sa.Length(); i++) {
    Napi::Value e = sa.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "sysctls entries must be objects");
    Napi::Object s = e.As<Napi::Object>();
    sysctls.push_back({StringProp(s, "key"), StringProp(s, "value")});
  }
  auto *w = new PinWorker(env, StringProp(opts, "dir"), kinds, std::move(sysctls),
                          IdMapProp(opts, "uidMap"), IdMapProp(opts, "gidMap"),
                          BoolProp(opts, "denySetgroups"));
  w->Queue();
  return w->Promise();
}

class PathWorker : public PromiseWorker {
 public:
  using Fn = int (*)(const char *, ncri_error *);
  PathWorker(Napi::Env env, const char *name, Fn fn, std::string path)
      : PromiseWorker(env, name), fn_(fn), path_(std::move(path)) {}

 protected:
  int Run(ncri_error *err) override { return fn_(path_.c_str(), err); }

 private:
  Fn fn_;
  std::string path_;
};

// nsUnpin(path) -> Promise<void>; idempotent.
Napi::Value NsUnpin(const Napi::CallbackInfo &info) {
  auto *w = new PathWorker(info.Env(), "nodecri:nsUnpin", ncri_unpin_namespace,
                           StringArg(info, 0, "path"));
  w->Queue();
  return w->Promise();
}

// nsLoopbackUp(netnsPath) -> Promise<void>
Napi::Value NsLoopbackUp(const Napi::CallbackInfo &info) {
  auto *w = new PathWorker(info.Env(), "nodecri:nsLoopbackUp", ncri_loopback_up,
                           StringArg(info, 0, "netnsPath"));
  w->Queue();
  return w->Promise();
}

// nsSocket(netnsPath, family 4 | 6) -> Promise<fd>: a non-blocking TCP socket (AF_INET or
// AF_INET6) made in the network namespace; the fd is the caller's. The pool thread only waits for the short
// thread that enters the namespace (core/ns.cc), so it never leaves it.
class NetnsSocketWorker : public PromiseWorker {
 public:
  NetnsSocketWorker(Napi::Env env, std::string path, int domain)
      : PromiseWorker(env, "nodecri:nsSocket"), path_(std::move(path)), domain_(domain) {}

 protected:
  int Run(ncri_error *err) override {
    fd_ = ncri_socket_in_netns(path_.c_str(), domain_, SOCK_STREAM, err);
    return fd_ < 0 ? fd_ : 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

 private:
  std::string path_;
  int domain_;
  int fd_ = -1;
};

Napi::Value NsSocket(const Napi::CallbackInfo &info) {
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "family must be 4 or 6");
  int family = info[1].As<Napi::Number>().Int32Value();
  if (family != 4 && family != 6) throw Napi::TypeError::New(info.Env(), "family must be 4 or 6");
  auto *w = new NetnsSocketWorker(info.Env(), StringArg(info, 0, "netnsPath"), family == 4 ? AF_INET : AF_INET6);
  w->Queue();
  return w->Promise();
}

}  // namespace

void InitNs(Napi::Env env, Napi::Object exports) {
  exports.Set("nsPin", Napi::Function::New(env, NsPin, "nsPin"));
  exports.Set("nsUnpin", Napi::Function::New(env, NsUnpin, "nsUnpin"));
  exports.Set("nsLoopbackUp", Napi::Function::New(env, NsLoopbackUp, "nsLoopbackUp"));
  exports.Set("nsSocket", Napi::Function::New(env, NsSocket, "nsSocket"));
}

}  // namespace ncri
