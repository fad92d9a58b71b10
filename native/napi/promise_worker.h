// The one AsyncWorker shape the addon uses: Run() does the syscalls on a libuv pool thread
// (no N-API there) and returns 0 or -errno; the Promise resolves with Result() or rejects
// with the SyscallError-shaped error built from the ncri_error. (AsyncWorker's own
// SetError carries only a message, which would lose errno, syscall and path.)
#pragma once

#include <napi.h>

#include <new>
#include <stdexcept>

#include "js_error.h"
#include "ncri_error.h"

namespace ncri {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char *name = "nodecri")
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), name_(name) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  /** Queues the work and returns its Promise; the worker deletes itself when settled. */
  Napi::Promise Queue() {
    Napi::Promise p = deferred_.Promise();
    Napi::AsyncWorker::Queue();
    return p;
  }

 protected:
  // Runs on the pool thread.
  virtual int Run(ncri_error *err) = 0;
  // Runs on the JS thread after a successful Run.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void Execute() override {
    try {
      failed_ = Run(&err_) < 0;
    } catch (const std::bad_alloc &) {
      failed_ = true;
      ncri_fail(&err_, ENOMEM, "malloc", Name(), nullptr);
    } catch (const std::exception &) {
      // Nothing in the core throws on purpose; never let an exception cross into libuv.
      failed_ = true;
      ncri_fail(&err_, EIO, "internal", Name(), nullptr);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      if (err_.err == 0) err_.err = EIO;  // a core bug: never reject with "Success"
      deferred_.Reject(MakeSyscallError(env, err_).Value());
    } else {
      deferred_.Resolve(Result(env));
    }
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }
  const char *Name() const { return name_; }

  Napi::Promise::Deferred deferred_;
  ncri_error err_{};
  bool failed_ = false;
  const char *name_;
};

}  // namespace ncri
