// N-API glue for container processes: decode the JS spec into a SpawnRequest, run the
// clone on the pool (AsyncWorker), keep each created child (a core Seed) and the text of
// its plan strings (to name an error's path) until the child has exec'd, and watch exits
// with a uv_poll_t on the pidfd (fd_watch.h). The spec's decoding is process_spec.cc, the
// keeper's socket keeper.cc. The syscalls behind these (reading a seed's frames,
// reaping, the stray sweep) are plain code in core/process.cc.
//
// Threading: every export runs on the JS thread of the env that loaded the addon; the
// registries below are only touched there (the spawn itself runs on a pool thread but
// touches only its own request). Using the addon from worker_threads is not supported.
#include <napi.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <fcntl.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "fd_watch.h"
#include "js_error.h"
#include "ncri_proc.h"
#include "process.h"
#include "process_spec.h"
#include "registry.h"
#include "../spawn/spawn.h"

namespace ncri {
namespace {

// ---------------------------------------------------------------- created children

// A created child that has not exec'd yet: its sync socket and its plan's strings (the
// child itself runs nodecri-init on its own copy of the plan).
struct SeedEntry {
  explicit SeedEntry(int sync_fd) : seed(sync_fd) {}
  Seed seed;
  std::unique_ptr<SpawnMemory> memory;
  FdWatch *watch = nullptr;
  std::unique_ptr<Napi::Promise::Deferred> deferred;
};

std::unordered_map<uint32_t, std::unique_ptr<SeedEntry>> g_seeds;
uint32_t g_next_seed = 1;

struct ExitWatch {
  FdWatch *watch;
  int pidfd;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
};
std::unordered_map<uint32_t, std::unique_ptr<ExitWatch>> g_exit_watches;
uint32_t g_next_watch = 1;

SeedEntry *FindSeed(Napi::Env env, const Napi::Value &id) {
  if (!id.IsNumber()) throw Napi::TypeError::New(env, "seed must be a number");
  auto it = g_seeds.find(id.As<Napi::Number>().Uint32Value());
  if (it == g_seeds.end()) {
    ncri_error e{};
    ncri_fail(&e, ESRCH, "", "find created process (already started or released)", nullptr);
    throw MakeSyscallError(env, e);
  }
  return it->second.get();
}

// Reads frames until EOF: the child exec'd (close-on-exec) or died. Then the seed is freed
// and its promise settled.
void WatchUntilEof(Napi::Env env, uint32_t id) {
  SeedEntry *entry = g_seeds.at(id).get();
  entry->watch = FdWatch::Start(
      env, entry->seed.sync_fd(),
      [env, id](FdWatch *, int status, int) {
        auto it = g_seeds.find(id);
        if (it == g_seeds.end()) return;
        if (status >= 0 && !it->second->seed.Drain()) return;
        std::unique_ptr<SeedEntry> owned = std::move(it->second);
        g_seeds.erase(it);
        owned->watch->Close();  // before the seed closes its socket
        const ChildFrame *failed = owned->seed.error();
        ncri_error e{};
        if (failed) ncri_frame_error(*failed, owned->memory.get(), &e);
        Napi::HandleScope scope(env);
        std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(owned->deferred);
        owned.reset();
        if (!deferred) return;
        Napi::AsyncContext ctx(env, "ncri.process.start");
        Napi::CallbackScope cscope(env, ctx);
        if (failed)
          deferred->Reject(MakeSyscallError(env, e).Value());
        else
          deferred->Resolve(env.Undefined());
      },
      true);
}

// ---------------------------------------------------------------- reaping

// Pidfds a ReapWhenExited is waiting on: their processes are not strays (ReapStrays).
std::unordered_set<int> g_reaping;

// Reaps our child behind `pidfd` once it has exited (its pidfd is readable then, and
// waitid(WNOHANG) does not block), closes the pidfd and calls `done`. Nothing waits on a
// thread meanwhile.
void ReapWhenExited(Napi::Env env, int pidfd, std::function<void()> done) {
  g_reaping.insert(pidfd);
  auto reap = [pidfd, done](FdWatch *w, int status, int) {
    ExitStatus ignored;
    if (!ncri_exit_collect(pidfd, status < 0, &ignored)) return;  // still running
    if (w) w->Close();
    g_reaping.erase(pidfd);
    close(pidfd);
    if (done) done();
  };
  try {
    Napi::HandleScope scope(env);  // for the error FdWatch::Start may throw
    FdWatch::Start(env, pidfd, reap, true);
  } catch (const Napi::Error &) {
    // No watcher (ENOMEM): try again shortly from a timer, never a blocking wait here.
    uv_loop_t *loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    auto *t = new uv_timer_t;
    auto *retry = new std::function<void()>([env, pidfd, done]() { ReapWhenExited(env, pidfd, done); });
    uv_timer_init(loop, t);
    t->data = retry;
    uv_timer_start(
        t,
        [](uv_timer_t *t) {
          auto *retry = static_cast<std::function<void()> *>(t->data);
          uv_close(reinterpret_cast<uv_handle_t *>(t), [](uv_handle_t *h) { delete reinterpret_cast<uv_timer_t *>(h); });
          (*retry)();
          delete retry;
        },
        100, 0);
  }
}

// ---------------------------------------------------------------- create / exec

// A spawn between its clone and READY: the sync socket watched on the loop, a timer for
// the setup timeout. Settled once READY came (a seed then holds the child) or, on failure,
// once every child of the spawn is reaped (nothing is left when the promise rejects).
struct PendingSpawn {
  Napi::Env env;
  std::unique_ptr<SpawnSetup> setup;
  std::unique_ptr<Napi::Promise::Deferred> deferred;
  FdWatch *watch = nullptr;
  // The intermediate's pidfd (a dup: the setup closes its own once reaped) until its PID
  // frame: readable = it died; if no PID frame came first, the spawn fails at once.
  FdWatch *intermediate_watch = nullptr;
  Fd intermediate_fd;
  uv_timer_t *timer = nullptr;
  ncri_error error{};
  size_t unreaped = 0;
  explicit PendingSpawn(Napi::Env e) : env(e) {}
};

std::unordered_map<uint32_t, std::unique_ptr<PendingSpawn>> g_pending;
uint32_t g_next_pending = 1;

void StopWatchingIntermediate(PendingSpawn *p) {
  if (p->intermediate_watch) p->intermediate_watch->Close();  // stops the poll before the close
  p->intermediate_watch = nullptr;
  p->intermediate_fd.reset();
}

void StopWaiting(PendingSpawn *p) {
  if (p->watch) p->watch->Close();
  p->watch = nullptr;
  StopWatchingIntermediate(p);
  if (p->timer) {
    uv_timer_stop(p->timer);
    uv_close(reinterpret_cast<uv_handle_t *>(p->timer), [](uv_handle_t *h) { delete reinterpret_cast<uv_timer_t *>(h); });
  }
  p->timer = nullptr;
}

void Settle(uint32_t id, const std::function<void(Napi::Env, Napi::Promise::Deferred &)> &how) {
  auto it = g_pending.find(id);
  if (it == g_pending.end()) return;
  std::unique_ptr<PendingSpawn> owned = std::move(it->second);
  g_pending.erase(it);
  Napi::Env env = owned->env;
  try {
    Napi::HandleScope scope(env);
    Napi::AsyncContext ctx(env, "ncri.process.create");
    Napi::CallbackScope cscope(env, ctx);
    how(env, *owned->deferred);
  } catch (const Napi::Error &) {
    // The env is going away: nobody is left to settle for.
  }
}

void SpawnFailed(uint32_t id) {
  PendingSpawn *p = g_pending.at(id).get();
  StopWaiting(p);  // before Abort closes the sync socket
  std::vector<int> left = p->setup->Abort();
  p->setup.reset();
  p->unreaped = left.size();
  auto settle = [id]() {
    auto it = g_pending.find(id);
    if (it == g_pending.end()) return;
    ncri_error e = it->second->error;
    Settle(id, [e](Napi::Env env, Napi::Promise::Deferred &d) { d.Reject(MakeSyscallError(env, e).Value()); });
  };
  if (left.empty()) return settle();
  for (int fd : left)
    ReapWhenExited(p->env, fd, [id, settle]() {
      auto it = g_pending.find(id);
      if (it != g_pending.end() && --it->second->unreaped == 0) settle();
    });
}

void SpawnReady(uint32_t id) {
  PendingSpawn *p = g_pending.at(id).get();
  StopWaiting(p);
  int intermediate = p->setup->TakeIntermediate();
  if (intermediate >= 0) ReapWhenExited(p->env, intermediate, nullptr);
  SpawnResult res;
  p->setup->Finish(&res);
  p->setup.reset();
  uint32_t seed_id = g_next_seed++;
  auto seed = std::make_unique<SeedEntry>(res.sync_fd);
  seed->memory = std::move(res.memory);
  g_seeds.emplace(seed_id, std::move(seed));
  Settle(id, [&res, seed_id](Napi::Env env, Napi::Promise::Deferred &d) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", res.pid);
    o.Set("pidfd", res.pidfd);
    o.Set("seed", seed_id);
    auto fdOrNull = [&](int fd) -> Napi::Value { return fd >= 0 ? Napi::Number::New(env, fd) : env.Null(); };
    o.Set("stdin", fdOrNull(res.stdio[0]));
    o.Set("stdout", fdOrNull(res.stdio[1]));
    o.Set("stderr", fdOrNull(res.stdio[2]));
    o.Set("terminal", fdOrNull(res.terminal));
    Napi::Array w = Napi::Array::New(env, res.warnings.size());
    for (size_t i = 0; i < res.warnings.size(); i++) w.Set((uint32_t)i, res.warnings[i]);
    o.Set("warnings", w);
    d.Resolve(o);
  });
}

// Drives a cloned child to READY from the loop.
void WatchSetup(Napi::Env env, std::unique_ptr<SpawnSetup> setup, Napi::Promise::Deferred deferred) {
  uint32_t id = g_next_pending++;
  auto owned = std::make_unique<PendingSpawn>(env);
  PendingSpawn *p = owned.get();
  p->setup = std::move(setup);
  p->deferred = std::make_unique<Napi::Promise::Deferred>(deferred);
  g_pending.emplace(id, std::move(owned));
  auto step = [](uint32_t id) {
    auto it = g_pending.find(id);
    if (it == g_pending.end() || !it->second->setup) return;
    PendingSpawn *p = it->second.get();
    int rc = p->setup->Step(&p->error);
    if (rc > 0) return SpawnReady(id);
    if (rc < 0) return SpawnFailed(id);
    if (!p->setup->awaiting_pid()) StopWatchingIntermediate(p);
  };
  try {
    p->watch = FdWatch::Start(env, p->setup->sync_fd(), [id, step](FdWatch *, int, int) { step(id); }, true);
    if (p->setup->awaiting_pid()) {
      ncri_error ignored{};
      p->intermediate_fd.reset(ncri_fd_dup(p->setup->pidfd(), &ignored));
      if (p->intermediate_fd.get() < 0) throw Napi::Error::New(env, "dup");
      p->intermediate_watch = FdWatch::Start(
          env, p->intermediate_fd.get(),
          [id, step](FdWatch *, int, int) {
            // The intermediate has exited. Its PID frame, if it sent one, is queued on the
            // sync socket already (sent before its exit): read it first.
            step(id);
            auto it = g_pending.find(id);
            if (it == g_pending.end() || !it->second->setup) return;
            PendingSpawn *p = it->second.get();
            StopWatchingIntermediate(p);
            if (!p->setup->awaiting_pid()) return;
            char what[64];
            ncri_describe_exit(p->setup->pidfd(), "before its pid frame", what, sizeof what);
            ncri_fail(&p->error, ECHILD, "waitid", "exec intermediate died before passing the process", what);
            SpawnFailed(id);
          },
          true);
    }
  } catch (const Napi::Error &) {
    p->error = ncri_error{};
    ncri_fail(&p->error, ENOMEM, "epoll_ctl", "watch container setup", nullptr);
    SpawnFailed(id);
    return;
  }
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  p->timer = new uv_timer_t;
  uv_timer_init(loop, p->timer);
  p->timer->data = reinterpret_cast<void *>((uintptr_t)id);
  uv_timer_start(
      p->timer,
      [](uv_timer_t *t) {
        uint32_t id = (uint32_t)reinterpret_cast<uintptr_t>(t->data);
        auto it = g_pending.find(id);
        if (it == g_pending.end() || !it->second->setup) return;
        ncri_fail(&it->second->error, ETIMEDOUT, "poll", "wait for container setup", nullptr);
        SpawnFailed(id);
      },
      kSpawnSetupTimeoutMs, 0);
  uv_unref(reinterpret_cast<uv_handle_t *>(p->timer));  // the sync socket's watch holds the loop
}

// The clone on a pool thread (it blocks until the child has exec'd nodecri-init, which
// CLONE_VFORK waits for); everything after it is on the loop (WatchSetup).
class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, SpawnRequest &&req)
      : Napi::AsyncWorker(env, "ncri.process.create"), deferred_(Napi::Promise::Deferred::New(env)), req_(std::move(req)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { rc_ = ncri_spawn_begin(std::move(req_), &setup_, &err_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (rc_ < 0) {
      deferred_.Reject(MakeSyscallError(env, err_).Value());
      return;
    }
    WatchSetup(env, std::move(setup_), deferred_);
  }

 private:
  Napi::Promise::Deferred deferred_;
  SpawnRequest req_;
  std::unique_ptr<SpawnSetup> setup_;
  ncri_error err_{};
  int rc_ = 0;
};

Napi::Value ProcessCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "processCreate(spec)");
  auto *w = new SpawnWorker(env, DecodeSpec(info[0].As<Napi::Object>()));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Releases a created child: it execs. Resolves once exec happened (EOF on the sync
// socket), rejects with the child's error if exec failed.
Napi::Value ProcessStart(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  SeedEntry *seed = FindSeed(env, info[0]);
  if (seed->deferred) throw Napi::Error::New(env, "process already started");
  ncri_error e{};
  if (seed->seed.Start(&e) < 0) throw MakeSyscallError(env, e);
  seed->deferred = std::make_unique<Napi::Promise::Deferred>(env);
  Napi::Promise p = seed->deferred->Promise();
  WatchUntilEof(env, info[0].As<Napi::Number>().Uint32Value());
  return p;
}

// Releases a created child without starting it: its wait for start sees EOF and it exits
// 0 without exec. Resolves at its EOF.
Napi::Value ProcessAbort(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  SeedEntry *seed = FindSeed(env, info[0]);
  if (seed->deferred) throw Napi::Error::New(env, "process already started");
  seed->seed.Release();
  seed->deferred = std::make_unique<Napi::Promise::Deferred>(env);
  Napi::Promise p = seed->deferred->Promise();
  WatchUntilEof(env, info[0].As<Napi::Number>().Uint32Value());
  return p;
}

// ---------------------------------------------------------------- exits

Napi::Value ExitObject(Napi::Env env, const ExitStatus &st) {
  Napi::Object o = Napi::Object::New(env);
  if (!st.known) {
    o.Set("exitCode", env.Null());
    o.Set("signal", env.Null());
    return o;
  }
  o.Set("exitCode", st.exited ? Napi::Number::New(env, st.status) : env.Null());
  o.Set("signal", st.exited ? env.Null() : Napi::Number::New(env, st.status));
  return o;
}

// watchExit(pidfd, callback, ref): the callback gets {exitCode, signal} once, from the
// event loop. waitid(P_PIDFD) reaps exactly this child; ECHILD (not our child, or already
// reaped by someone else) is reported as {exitCode: null, signal: null}.
Napi::Value ProcessWatchExit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "watchExit(pidfd, callback, ref)");
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  bool ref = info.Length() < 3 || info[2].ToBoolean().Value();
  uint32_t id = g_next_watch++;
  auto w = std::make_unique<ExitWatch>();
  w->pidfd = pidfd;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->context = std::make_unique<Napi::AsyncContext>(env, "ncri.process.exit");
  w->watch = FdWatch::Start(
      env, pidfd,
      [env, id](FdWatch *, int status, int) {
        auto it = g_exit_watches.find(id);
        if (it == g_exit_watches.end()) return;
        ExitStatus st;
        if (!ncri_exit_collect(it->second->pidfd, status < 0, &st)) return;  // still running
        std::unique_ptr<ExitWatch> owned = std::move(it->second);
        g_exit_watches.erase(it);
        owned->watch->Close();
        Napi::HandleScope scope(env);
        Napi::Value result = ExitObject(env, st);
        try {
          owned->callback.Value().MakeCallback(env.Global(), {result}, *owned->context);
        } catch (const Napi::Error &e) {
          napi_fatal_exception(env, e.Value());
        }
      },
      ref);
  g_exit_watches.emplace(id, std::move(w));
  return Napi::Number::New(env, id);
}

Napi::Value ProcessUnwatchExit(const Napi::CallbackInfo &info) {
  auto it = g_exit_watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != g_exit_watches.end()) {
    it->second->watch->Close();
    g_exit_watches.erase(it);
  }
  return info.Env().Undefined();
}

Napi::Value ProcessRefExit(const Napi::CallbackInfo &info) {
  auto it = g_exit_watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != g_exit_watches.end()) it->second->watch->Ref(info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- strays

// Pids of our children that something here watches or will reap: never strays.
std::unordered_set<pid_t> WatchedPids() {
  std::unordered_set<pid_t> out;
  auto add = [&out](int pidfd) {
    ncri_error ignored{};
    if (pidfd < 0) return;
    int pid = ncri_pidfd_pid(pidfd, &ignored);
    if (pid > 0) out.insert(pid);
  };
  for (auto &w : g_exit_watches) add(w.second->pidfd);
  for (int fd : g_reaping) add(fd);
  for (auto &p : g_pending)
    if (p.second->setup) add(p.second->setup->pidfd());
  return out;
}

// reapStrays(pidfd): reaps the zombie children of ours in the PID namespace of the process
// behind `pidfd` that nothing here watches (ncri_reap_strays), returning how many.
Napi::Value ProcessReapStrays(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "reapStrays(pidfd)");
  return Napi::Number::New(env, ncri_reap_strays(info[0].As<Napi::Number>().Int32Value(), WatchedPids()));
}

// ---------------------------------------------------------------- small syscalls

Napi::Value ProcessSignal(const Napi::CallbackInfo &info) {
  ncri_error e{};
  CheckSyscall(info.Env(), ncri_pidfd_signal(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), &e), e);
  return info.Env().Undefined();
}

Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  ncri_error e{};
  return Napi::Number::New(info.Env(), CheckSyscall(info.Env(), ncri_pidfd_open(info[0].As<Napi::Number>().Int32Value(), &e), e));
}

Napi::Value PidfdPid(const Napi::CallbackInfo &info) {
  ncri_error e{};
  return Napi::Number::New(info.Env(), CheckSyscall(info.Env(), ncri_pidfd_pid(info[0].As<Napi::Number>().Int32Value(), &e), e));
}

Napi::Value FdKeepAcrossExec(const Napi::CallbackInfo &info) {
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < a.Length(); i++) fds.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  ncri_error e{};
  CheckSyscall(info.Env(), ncri_fd_keep_across_exec(fds, info[1].ToBoolean().Value(), &e), e);
  return info.Env().Undefined();
}

Napi::Value FdDup(const Napi::CallbackInfo &info) {
  ncri_error e{};
  return Napi::Number::New(info.Env(), CheckSyscall(info.Env(), ncri_fd_dup(info[0].As<Napi::Number>().Int32Value(), &e), e));
}

Napi::Value PtyResize(const Napi::CallbackInfo &info) {
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "ptyResize(fd, cols, rows)");
  ncri_error e{};
  CheckSyscall(info.Env(),
        ncri_pty_resize(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int64Value(),
                        info[2].As<Napi::Number>().Int64Value(), &e),
        e);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- terminal writes

// A pty master written from the loop (stdin of a tty exec or attach): the fd is a
// non-blocking dup of the master (processDupNonBlocking), written with processWriteSome;
// processWatchWritable(fd, cb) calls cb(hungUp) once when it takes more, then the watch is
// gone. hungUp: poll reports POLLHUP, the slave side is closed everywhere. epoll reports
// that hang-up on every wait and libuv passes it on as writable, though the master then
// takes nothing more (EAGAIN, not EIO): without the flag the writer could not tell that
// wake from room.
struct WritableWatch {
  FdWatch *watch;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
};
std::unordered_map<uint32_t, std::unique_ptr<WritableWatch>> g_writable_watches;

Napi::Value FdDupNonBlocking(const Napi::CallbackInfo &info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "dupNonBlocking(fd)");
  ncri_error e{};
  return Napi::Number::New(info.Env(), CheckSyscall(info.Env(), ncri_fd_dup_nonblocking(info[0].As<Napi::Number>().Int32Value(), &e), e));
}

Napi::Value FdWriteSome(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "writeSome(fd, buffer)");
  Napi::Buffer<uint8_t> b = info[1].As<Napi::Buffer<uint8_t>>();
  ncri_error e{};
  ssize_t n = ncri_fd_write_some(info[0].As<Napi::Number>().Int32Value(), b.Data(), b.Length(), &e);
  if (n < 0) throw MakeSyscallError(env, e);
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value FdWatchWritable(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "watchWritable(fd, callback)");
  uint32_t id = g_next_watch++;
  auto w = std::make_unique<WritableWatch>();
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  w->context = std::make_unique<Napi::AsyncContext>(env, "ncri.fd.writable");
  int fd = info[0].As<Napi::Number>().Int32Value();
  w->watch = FdWatch::Start(
      env, fd,
      [env, id, fd](FdWatch *, int status, int) {
        auto it = g_writable_watches.find(id);
        if (it == g_writable_watches.end()) return;
        std::unique_ptr<WritableWatch> owned = std::move(it->second);
        g_writable_watches.erase(it);
        owned->watch->Close();
        bool hung_up = ncri_fd_hung_up(fd);
        Napi::HandleScope scope(env);
        try {
          // An error (EBADF) is reported as writable: the write then fails with the real
          // errno.
          owned->callback.Value().MakeCallback(env.Global(), {Napi::Boolean::New(env, hung_up)}, *owned->context);
        } catch (const Napi::Error &e) {
          napi_fatal_exception(env, e.Value());
        }
      },
      true, UV_WRITABLE | UV_DISCONNECT);
  g_writable_watches.emplace(id, std::move(w));
  return Napi::Number::New(env, id);
}

Napi::Value FdUnwatchWritable(const Napi::CallbackInfo &info) {
  auto it = g_writable_watches.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != g_writable_watches.end()) {
    it->second->watch->Close();
    g_writable_watches.erase(it);
  }
  return info.Env().Undefined();
}

// At env teardown: release every created-but-not-started child (it sees EOF and exits)
// and stop the watchers. Seeds are not freed: their watchers close asynchronously, and
// the process is going away.
void Cleanup(void *) {
  for (auto &p : g_pending) {
    StopWaiting(p.second.get());
    if (p.second->setup) p.second->setup->Abort();  // SIGKILLed; the process is going away
    p.second.release();
  }
  g_pending.clear();
  for (auto &s : g_seeds) {
    s.second->seed.Release();
    if (s.second->watch) s.second->watch->Close();
    s.second.release();
  }
  g_seeds.clear();
  for (auto &w : g_exit_watches) {
    w.second->watch->Close();
    w.second->callback.Reset();
    w.second.release();
  }
  g_exit_watches.clear();
  for (auto &w : g_writable_watches) {
    w.second->watch->Close();
    w.second->callback.Reset();
    w.second.release();
  }
  g_writable_watches.clear();
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  // Copy nodecri-init into its sealed memfd now, so that the fd exists from the load on
  // (a missing binary is reported by the first create instead, with its path).
  ncri_error ignored{};
  ncri_spawn_prepare(&ignored);
  exports.Set("processCreate", Napi::Function::New(env, ProcessCreate, "processCreate"));
  exports.Set("processStart", Napi::Function::New(env, ProcessStart, "processStart"));
  exports.Set("processAbort", Napi::Function::New(env, ProcessAbort, "processAbort"));
  exports.Set("processSignal", Napi::Function::New(env, ProcessSignal, "processSignal"));
  exports.Set("processWatchExit", Napi::Function::New(env, ProcessWatchExit, "processWatchExit"));
  exports.Set("processUnwatchExit", Napi::Function::New(env, ProcessUnwatchExit, "processUnwatchExit"));
  exports.Set("processRefExit", Napi::Function::New(env, ProcessRefExit, "processRefExit"));
  exports.Set("processReapStrays", Napi::Function::New(env, ProcessReapStrays, "processReapStrays"));
  exports.Set("processPidfdOpen", Napi::Function::New(env, PidfdOpen, "processPidfdOpen"));
  exports.Set("processPidfdPid", Napi::Function::New(env, PidfdPid, "processPidfdPid"));
  exports.Set("processKeepAcrossExec", Napi::Function::New(env, FdKeepAcrossExec, "processKeepAcrossExec"));
  exports.Set("processDupFd", Napi::Function::New(env, FdDup, "processDupFd"));
  exports.Set("processPtyResize", Napi::Function::New(env, PtyResize, "processPtyResize"));
  exports.Set("processDupNonBlocking", Napi::Function::New(env, FdDupNonBlocking, "processDupNonBlocking"));
  exports.Set("processWriteSome", Napi::Function::New(env, FdWriteSome, "processWriteSome"));
  exports.Set("processWatchWritable", Napi::Function::New(env, FdWatchWritable, "processWatchWritable"));
  exports.Set("processUnwatchWritable", Napi::Function::New(env, FdUnwatchWritable, "processUnwatchWritable"));
  napi_add_env_cleanup_hook(env, Cleanup, nullptr);
}

}  // namespace ncri
