// A uv_poll_t on one fd, for the napi files that wait on fds from the loop (process.cc,
// keeper.cc): never a thread blocked on a wait.
#pragma once

#include <napi.h>
#include <uv.h>

#include <functional>

#include "js_error.h"

namespace ncri {

// A uv_poll_t on one fd whose callback runs on the loop; closing frees it.
class FdWatch {
 public:
  using Callback = std::function<void(FdWatch *, int status, int events)>;
  static FdWatch *Start(Napi::Env env, int fd, Callback cb, bool ref, int events = UV_READABLE) {
    uv_loop_t *loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    auto *w = new FdWatch();
    w->cb_ = std::move(cb);
    w->handle_.data = w;
    int rc = uv_poll_init(loop, &w->handle_, fd);
    if (rc < 0) {
      delete w;
      ncri_error e{};
      ncri_fail(&e, -rc, "epoll_ctl", "watch fd", nullptr);
      throw MakeSyscallError(env, e);
    }
    uv_poll_start(&w->handle_, events, [](uv_poll_t *h, int status, int events) {
      auto *self = static_cast<FdWatch *>(h->data);
      self->cb_(self, status, events);
    });
    if (!ref) uv_unref(reinterpret_cast<uv_handle_t *>(&w->handle_));
    return w;
  }
  // Which readiness wakes it (UV_READABLE, UV_WRITABLE or both).
  void SetEvents(int events) {
    if (closing_) return;
    uv_poll_start(&handle_, events, [](uv_poll_t *h, int status, int ev) {
      auto *self = static_cast<FdWatch *>(h->data);
      self->cb_(self, status, ev);
    });
  }
  void Ref(bool on) {
    if (on) uv_ref(reinterpret_cast<uv_handle_t *>(&handle_));
    else uv_unref(reinterpret_cast<uv_handle_t *>(&handle_));
  }
  // Stops watching; the object is freed by the close callback. Do not close the fd before.
  void Close() {
    if (closing_) return;
    closing_ = true;
    uv_poll_stop(&handle_);
    uv_close(reinterpret_cast<uv_handle_t *>(&handle_),
             [](uv_handle_t *h) { delete static_cast<FdWatch *>(h->data); });
  }

 private:
  FdWatch() = default;
  uv_poll_t handle_{};
  Callback cb_;
  bool closing_ = false;
};

}  // namespace ncri
