// N-API glue for fsops: each export returns a Promise and runs its syscall on the libuv
// pool (Napi::AsyncWorker), because all of them can sleep in the filesystem.
#include <napi.h>

#include <string>

#include "fsops.h"
#include "js_error.h"
#include "promise_worker.h"
#include "registry.h"

namespace ncri {
namespace {

class MknodWorker : public PromiseWorker {
 public:
  MknodWorker(Napi::Env env, std::string path, unsigned mode, unsigned major, unsigned minor)
      : PromiseWorker(env), path_(std::move(path)), mode_(mode), major_(major), minor_(minor) {}
  int Run(ncri_error *err) override { return ncri_mknod(path_.c_str(), mode_, major_, minor_, err); }

 private:
  std::string path_;
  unsigned mode_, major_, minor_;
};

class SetXattrWorker : public PromiseWorker {
 public:
  SetXattrWorker(Napi::Env env, std::string path, std::string name, std::string value)
      : PromiseWorker(env), path_(std::move(path)), name_(std::move(name)), value_(std::move(value)) {}
  int Run(ncri_error *err) override {
    return ncri_lsetxattr(path_.c_str(), name_.c_str(), value_.data(), value_.size(), err);
  }

 private:
  std::string path_, name_, value_;
};

class GetXattrWorker : public PromiseWorker {
 public:
  GetXattrWorker(Napi::Env env, std::string path, std::string name)
      : PromiseWorker(env), path_(std::move(path)), name_(std::move(name)) {}
  int Run(ncri_error *err) override {
    int rc = ncri_lgetxattr(path_.c_str(), name_.c_str(), &value_, err);
    found_ = rc == 1;
    return rc < 0 ? rc : 0;
  }
  Napi::Value Result(Napi::Env env) override {
    if (!found_) return env.Null();
    return Napi::Buffer<char>::Copy(env, value_.data(), value_.size());
  }

 private:
  std::string path_, name_, value_;
  bool found_ = false;
};

class SyncfsWorker : public PromiseWorker {
 public:
  SyncfsWorker(Napi::Env env, std::string path) : PromiseWorker(env), path_(std::move(path)) {}
  int Run(ncri_error *err) override { return ncri_syncfs(path_.c_str(), err); }

 private:
  std::string path_;
};

class LockWorker : public PromiseWorker {
 public:
  LockWorker(Napi::Env env, std::string path, int inherited) : PromiseWorker(env), path_(std::move(path)), inherited_(inherited) {}
  int Run(ncri_error *err) override {
    int rc = ncri_lock_exclusive(path_.c_str(), inherited_, &fd_, &holder_, err);
    return rc < 0 ? rc : 0;
  }
  // { fd } when locked, { fd: null, holder } when another process holds the lock.
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("fd", fd_ >= 0 ? Napi::Value(Napi::Number::New(env, fd_)) : env.Null());
    o.Set("holder", holder_);
    return o;
  }

 private:
  std::string path_;
  int inherited_;
  int fd_ = -1;
  std::string holder_;
};

std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

unsigned UintArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

template <typename W>
Napi::Value Queue(W *worker) {
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

Napi::Value FsMknod(const Napi::CallbackInfo &info) {
  return Queue(new MknodWorker(info.Env(), StringArg(info, 0, "path"), UintArg(info, 1, "mode"),
                               UintArg(info, 2, "major"), UintArg(info, 3, "minor")));
}

Napi::Value FsLsetxattr(const Napi::CallbackInfo &info) {
  if (info.Length() < 3 || !info[2].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "value must be a Buffer");
  Napi::Buffer<char> buf = info[2].As<Napi::Buffer<char>>();
  return Queue(new SetXattrWorker(info.Env(), StringArg(info, 0, "path"), StringArg(info, 1, "name"),
                                  std::string(buf.Data(), buf.Length())));
}

Napi::Value FsLgetxattr(const Napi::CallbackInfo &info) {
  return Queue(new GetXattrWorker(info.Env(), StringArg(info, 0, "path"), StringArg(info, 1, "name")));
}

Napi::Value FsLockExclusive(const Napi::CallbackInfo &info) {
  int inherited = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  return Queue(new LockWorker(info.Env(), StringArg(info, 0, "path"), inherited));
}

Napi::Value FsSyncfs(const Napi::CallbackInfo &info) {
  return Queue(new SyncfsWorker(info.Env(), StringArg(info, 0, "path")));
}

}  // namespace

void InitFsops(Napi::Env env, Napi::Object exports) {
  exports.Set("fsMknod", Napi::Function::New(env, FsMknod, "fsMknod"));
  exports.Set("fsLsetxattr", Napi::Function::New(env, FsLsetxattr, "fsLsetxattr"));
  exports.Set("fsLgetxattr", Napi::Function::New(env, FsLgetxattr, "fsLgetxattr"));
  exports.Set("fsSyncfs", Napi::Function::New(env, FsSyncfs, "fsSyncfs"));
  exports.Set("fsLockExclusive", Napi::Function::New(env, FsLockExclusive, "fsLockExclusive"));
}

}  // namespace ncri
