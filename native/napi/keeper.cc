// N-API glue for the keeper's socket (src/linux/keeper.ts): one frame out with an fd, and
// the frames in, read on the loop (fd_watch.h). The syscalls are core/proc.cc's.
#include <napi.h>
#include <uv.h>

#include <memory>
#include <unordered_map>

#include "fd_watch.h"
#include "js_error.h"
#include "ncri_proc.h"
#include "registry.h"

namespace ncri {
namespace {

uint32_t g_next_watch = 1;

// keeperSend(sock, frame: Buffer, fd: number | -1): synchronous (MSG_DONTWAIT).
Napi::Value KeeperSend(const Napi::CallbackInfo &info) {
  Napi::Buffer<uint8_t> frame = info[1].As<Napi::Buffer<uint8_t>>();
  ncri_error e{};
  CheckSyscall(info.Env(), ncri_send_with_fd(info[0].As<Napi::Number>().Int32Value(), frame.Data(), frame.Length(), info[2].As<Napi::Number>().Int32Value(), &e), e);
  return info.Env().Undefined();
}

// keeperWatch(sock, onFrame(frame: Buffer | null), onWritable()): reads the keeper's
// SOCK_SEQPACKET socket on the loop, one message (one frame) at a time; onFrame(null) once
// at EOF or an error, after which the watch is gone. The socket stays the caller's to close.
struct KeeperWatch {
  FdWatch *watch;
  int sock;
  bool writable = false;
  Napi::FunctionReference on_frame, on_writable;
  std::unique_ptr<Napi::AsyncContext> context;
};
// Never destroyed: its function references must not outlive the env at process exit.
auto &g_keeper_watches = *new std::unordered_map<uint32_t, std::unique_ptr<KeeperWatch>>();

Napi::Value KeeperWatchStart(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsFunction() || !info[2].IsFunction())
    throw Napi::TypeError::New(env, "keeperWatch(sock, onFrame, onWritable)");
  uint32_t id = g_next_watch++;
  auto w = std::make_unique<KeeperWatch>();
  w->sock = info[0].As<Napi::Number>().Int32Value();
  w->on_frame = Napi::Persistent(info[1].As<Napi::Function>());
  w->on_writable = Napi::Persistent(info[2].As<Napi::Function>());
  w->context = std::make_unique<Napi::AsyncContext>(env, "ncri.keeper");
  w->watch = FdWatch::Start(
      env, w->sock,
      [env, id](FdWatch *, int status, int events) {
        auto call = [&](Napi::FunctionReference &fn, std::initializer_list<napi_value> args) {
          try {
            fn.Value().MakeCallback(env.Global(), args, *g_keeper_watches.at(id)->context);
          } catch (const Napi::Error &e) {
            napi_fatal_exception(env, e.Value());
          }
        };
        auto it = g_keeper_watches.find(id);
        if (it == g_keeper_watches.end()) return;
        KeeperWatch *kw = it->second.get();
        Napi::HandleScope scope(env);
        if (status >= 0 && (events & UV_WRITABLE)) {
          call(kw->on_writable, {});
          it = g_keeper_watches.find(id);
          if (it == g_keeper_watches.end()) return;
        }
        bool eof = status < 0;
        while (!eof && (events & (UV_READABLE | UV_DISCONNECT))) {
          char buf[65536];
          ssize_t n = ncri_recv_message(kw->sock, buf, sizeof buf);
          if (n == -EAGAIN) return;
          if (n <= 0) {
            eof = true;
            break;
          }
          call(kw->on_frame, {Napi::Buffer<char>::Copy(env, buf, (size_t)n)});
          it = g_keeper_watches.find(id);
          if (it == g_keeper_watches.end()) return;
        }
        if (!eof) return;
        std::unique_ptr<KeeperWatch> owned = std::move(it->second);
        g_keeper_watches.erase(it);
        owned->watch->Close();
        try {
          owned->on_frame.Value().MakeCallback(env.Global(), {env.Null()}, *owned->context);
        } catch (const Napi::Error &e) {
          napi_fatal_exception(env, e.Value());
        }
      },
      false);
  w->watch->SetEvents(UV_READABLE | UV_DISCONNECT);
  g_keeper_watches.emplace(id, std::move(w));
  return Napi::Number::New(env, id);
}

// keeperWatchWritable(id, on): whether onWritable is called when the socket takes more.
Napi::Value KeeperWatchWritable(const Napi::CallbackInfo &info) {
  auto it = g_keeper_watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != g_keeper_watches.end()) {
    bool on = info[1].ToBoolean().Value();
    if (on != it->second->writable) {
      it->second->writable = on;
      it->second->watch->SetEvents(UV_READABLE | UV_DISCONNECT | (on ? UV_WRITABLE : 0));
    }
  }
  return info.Env().Undefined();
}

Napi::Value KeeperWatchStop(const Napi::CallbackInfo &info) {
  auto it = g_keeper_watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != g_keeper_watches.end()) {
    it->second->watch->Close();
    g_keeper_watches.erase(it);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitKeeper(Napi::Env env, Napi::Object exports) {
  exports.Set("keeperSend", Napi::Function::New(env, KeeperSend, "keeperSend"));
  exports.Set("keeperWatch", Napi::Function::New(env, KeeperWatchStart, "keeperWatch"));
  exports.Set("keeperWatchWritable", Napi::Function::New(env, KeeperWatchWritable, "keeperWatchWritable"));
  exports.Set("keeperUnwatch", Napi::Function::New(env, KeeperWatchStop, "keeperUnwatch"));
}

}  // namespace ncri
