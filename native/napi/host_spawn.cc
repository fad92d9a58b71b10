// N-API glue for host helper programs (CNI plugins): hostRun(spec) spawns the program
// (core/host_spawn.cc), writes its stdin, reads its stdout and stderr and waits for its
// exit, all from the loop (fd_watch.h: a uv_poll_t per pipe and one on the pidfd), with a
// uv timer that kills it at the deadline. Its Promise settles once the program is reaped,
// with what it printed; nothing of the run (fd, watch, timer, process) outlives that.
//
// The spawn itself runs on the JS thread, as child_process's does: posix_spawn returns
// once the child has exec'd (CLONE_VFORK), a wait of the order of the exec, and a pool
// thread would only add its hand-offs.
//
// Threading: every export and callback runs on the JS thread of the env that loaded the
// addon; the registry below is only touched there.
#include <napi.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "fd_watch.h"
#include "host_spawn.h"
#include "js_error.h"
#include "process.h"
#include "registry.h"

namespace ncri {
namespace {

// One running program: the child, a watch per open fd, the deadline, what it printed.
struct HostRun {
  explicit HostRun(Napi::Env e) : env(e) {}
  Napi::Env env;
  std::unique_ptr<Napi::Promise::Deferred> deferred;
  HostChild child;
  FdWatch *exit_watch = nullptr;
  FdWatch *stdin_watch = nullptr;
  FdWatch *stdout_watch = nullptr;
  FdWatch *stderr_watch = nullptr;
  uv_timer_t *timer = nullptr;
  uv_timer_t *reap_timer = nullptr;  // only when the exit watch failed (PollExit)
  std::string input;
  size_t input_written = 0;
  std::string out, err;
  size_t max_output = 0;
  bool timed_out = false;
  const char *overflowed = nullptr;  // "stdout" or "stderr"
  ExitStatus status;
};

std::unordered_map<uint32_t, std::unique_ptr<HostRun>> g_runs;
uint32_t g_next_run = 1;

HostRun *Find(uint32_t id) {
  auto it = g_runs.find(id);
  return it == g_runs.end() ? nullptr : it->second.get();
}

void CloseWatched(FdWatch **watch, Fd *fd) {
  if (*watch) (*watch)->Close();  // stops the poll before the close
  *watch = nullptr;
  fd->reset();
}

void Kill(HostRun *r) { ncri_host_kill(r->child.pid, r->child.pidfd.get()); }

// Reads what the pipe holds now (never blocking) into `into`, at most max_output bytes in
// all: past that the program is killed and the stream closed. Returns false once the
// stream is over (EOF, an error, or the bound).
bool ReadSome(HostRun *r, int fd, std::string *into, const char *name) {
  static char buf[64 * 1024];  // JS thread only
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    size_t room = r->max_output - into->size();
    if ((size_t)n > room) {
      into->append(buf, room);
      if (!r->overflowed) r->overflowed = name;
      Kill(r);
      return false;
    }
    into->append(buf, (size_t)n);
  }
}

// Writes what stdin takes now; true while some is left to write. The program's stdin is
// closed (EOF) once all of it went, or when the program closed its end (EPIPE: it did not
// read it all, which is its business; Node ignores SIGPIPE, so this is an errno).
bool WriteSome(HostRun *r) {
  int fd = r->child.stdin_fd.get();
  while (r->input_written < r->input.size()) {
    ssize_t n = write(fd, r->input.data() + r->input_written, r->input.size() - r->input_written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0) return false;
    r->input_written += (size_t)n;
  }
  return false;
}

Napi::Value OwnedBuffer(Napi::Env env, std::string &&s) {
  auto *owned = new std::string(std::move(s));
  return Napi::Buffer<char>::New(
      env, owned->data(), owned->size(), [](Napi::Env, char *, std::string *p) { delete p; }, owned);
}

// The program is reaped: take the rest of its output (all it wrote before exiting is in
// the pipes now; a descendant still holding them is not waited for), free the run and
// resolve.
void Finish(uint32_t id) {
  auto it = g_runs.find(id);
  if (it == g_runs.end()) return;
  std::unique_ptr<HostRun> r = std::move(it->second);
  g_runs.erase(it);
  if (r->child.stdout_fd.get() >= 0) ReadSome(r.get(), r->child.stdout_fd.get(), &r->out, "stdout");
  if (r->child.stderr_fd.get() >= 0) ReadSome(r.get(), r->child.stderr_fd.get(), &r->err, "stderr");
  CloseWatched(&r->exit_watch, &r->child.pidfd);
  CloseWatched(&r->stdin_watch, &r->child.stdin_fd);
  CloseWatched(&r->stdout_watch, &r->child.stdout_fd);
  CloseWatched(&r->stderr_watch, &r->child.stderr_fd);
  for (uv_timer_t **t : {&r->timer, &r->reap_timer}) {
    if (!*t) continue;
    uv_timer_stop(*t);
    uv_close(reinterpret_cast<uv_handle_t *>(*t), [](uv_handle_t *h) { delete reinterpret_cast<uv_timer_t *>(h); });
    *t = nullptr;
  }
  Napi::Env env = r->env;
  try {
    Napi::HandleScope scope(env);
    Napi::AsyncContext ctx(env, "ncri.host.run");
    Napi::CallbackScope cscope(env, ctx);
    Napi::Object o = Napi::Object::New(env);
    const ExitStatus &st = r->status;
    o.Set("pid", r->child.pid);
    o.Set("exitCode", st.known && st.exited ? Napi::Value(Napi::Number::New(env, st.status)) : env.Null());
    o.Set("signal", st.known && !st.exited ? Napi::Value(Napi::Number::New(env, st.status)) : env.Null());
    o.Set("stdout", OwnedBuffer(env, std::move(r->out)));
    o.Set("stderr", OwnedBuffer(env, std::move(r->err)));
    o.Set("timedOut", r->timed_out);
    o.Set("overflowed", r->overflowed ? Napi::Value(Napi::String::New(env, r->overflowed)) : env.Null());
    r->deferred->Resolve(o);
  } catch (const Napi::Error &) {
    // The env is going away: nobody is left to settle for.
  }
}

// A timer of run `id` on the env's loop (its data is the id: the run may be gone when it
// fires); Finish closes it.
uv_timer_t *StartRunTimer(Napi::Env env, uint32_t id, uv_timer_cb cb, uint64_t timeout, uint64_t repeat) {
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto *t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = reinterpret_cast<void *>((uintptr_t)id);
  uv_timer_start(t, cb, timeout, repeat);
  return t;
}

// The exit watch failed (the program was SIGKILLed): reap it through its pidfd from a
// timer every 5 ms, never a blocking wait; it is gone within a few ticks.
void PollExit(uint32_t id) {
  HostRun *r = Find(id);
  r->reap_timer = StartRunTimer(
      r->env, id,
      [](uv_timer_t *t) {
        uint32_t id = (uint32_t)reinterpret_cast<uintptr_t>(t->data);
        HostRun *r = Find(id);
        if (r && ncri_exit_collect(r->child.pidfd.get(), false, &r->status)) Finish(id);
      },
      5, 5);
}

// A stream's watch: read on readiness, stop at its end.
FdWatch *WatchOutput(Napi::Env env, uint32_t id, int fd, bool is_stdout) {
  return FdWatch::Start(
      env, fd,
      [id, is_stdout](FdWatch *, int status, int) {
        HostRun *r = Find(id);
        if (!r) return;
        Fd &fd = is_stdout ? r->child.stdout_fd : r->child.stderr_fd;
        std::string &into = is_stdout ? r->out : r->err;
        if (status >= 0 && ReadSome(r, fd.get(), &into, is_stdout ? "stdout" : "stderr")) return;
        CloseWatched(is_stdout ? &r->stdout_watch : &r->stderr_watch, &fd);
      },
      true);
}

// A failed spawn whose child could not be watched (no pidfd): it was SIGKILLed; reap it
// from a timer (never a blocking wait), then reject.
void RejectOnceReaped(Napi::Env env, pid_t pid, std::unique_ptr<Napi::Promise::Deferred> deferred, const ncri_error &e) {
  struct Pending {
    Napi::Env env;
    pid_t pid;
    std::unique_ptr<Napi::Promise::Deferred> deferred;
    ncri_error error;
  };
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto *t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = new Pending{env, pid, std::move(deferred), e};
  uv_timer_start(
      t,
      [](uv_timer_t *t) {
        auto *p = static_cast<Pending *>(t->data);
        if (!ncri_host_reap(p->pid)) return;  // SIGKILLed; gone within a few ticks
        uv_timer_stop(t);
        uv_close(reinterpret_cast<uv_handle_t *>(t), [](uv_handle_t *h) { delete reinterpret_cast<uv_timer_t *>(h); });
        std::unique_ptr<Pending> owned(p);
        try {
          Napi::HandleScope scope(owned->env);
          Napi::AsyncContext ctx(owned->env, "ncri.host.run");
          Napi::CallbackScope cscope(owned->env, ctx);
          owned->deferred->Reject(MakeSyscallError(owned->env, owned->error).Value());
        } catch (const Napi::Error &) {
          // the env is going away
        }
      },
      0, 5);
}

std::vector<std::string> Strings(Napi::Env env, const Napi::Value &v, const char *what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("hostRun: ") + what + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) throw Napi::TypeError::New(env, std::string("hostRun: ") + what + " must be an array of strings");
    out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

// hostRun({path, argv, env, stdin, timeoutMs, maxOutputBytes}) -> Promise<{pid, exitCode,
// signal, stdout, stderr, timedOut, overflowed}>. timeoutMs 0: no deadline.
Napi::Value HostRunExport(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "hostRun(spec)");
  Napi::Object spec = info[0].As<Napi::Object>();
  if (!spec.Get("path").IsString() || !spec.Get("stdin").IsBuffer() || !spec.Get("timeoutMs").IsNumber() || !spec.Get("maxOutputBytes").IsNumber())
    throw Napi::TypeError::New(env, "hostRun: path (string), stdin (Buffer), timeoutMs and maxOutputBytes (numbers) are required");
  HostSpawnRequest req;
  req.path = spec.Get("path").As<Napi::String>().Utf8Value();
  req.argv = Strings(env, spec.Get("argv"), "argv");
  req.env = Strings(env, spec.Get("env"), "env");
  Napi::Buffer<char> input = spec.Get("stdin").As<Napi::Buffer<char>>();
  double timeout_ms = spec.Get("timeoutMs").As<Napi::Number>().DoubleValue();
  double max_output = spec.Get("maxOutputBytes").As<Napi::Number>().DoubleValue();
  if (!(timeout_ms >= 0) || !(max_output >= 0)) throw Napi::RangeError::New(env, "hostRun: timeoutMs and maxOutputBytes must be >= 0");

  auto r = std::make_unique<HostRun>(env);
  r->deferred = std::make_unique<Napi::Promise::Deferred>(env);
  Napi::Promise promise = r->deferred->Promise();
  r->input.assign(input.Data(), input.Length());
  r->max_output = (size_t)max_output;
  ncri_error e{};
  pid_t unreaped = -1;
  if (ncri_host_spawn(req, &r->child, &unreaped, &e) < 0) {
    if (unreaped > 0) RejectOnceReaped(env, unreaped, std::move(r->deferred), e);
    else r->deferred->Reject(MakeSyscallError(env, e).Value());
    return promise;
  }
  uint32_t id = g_next_run++;
  HostRun *run = r.get();
  g_runs.emplace(id, std::move(r));
  try {
    run->exit_watch = FdWatch::Start(
        env, run->child.pidfd.get(),
        [id](FdWatch *, int status, int) {
          HostRun *r = Find(id);
          if (!r) return;
          if (status < 0) {
            // No more readiness will come: make it exit now and reap it from a timer
            // (no init of a namespace reaps a host program for us).
            Kill(r);
            r->exit_watch->Close();  // the pidfd stays open: PollExit reaps through it
            r->exit_watch = nullptr;
            PollExit(id);
            return;
          }
          if (!ncri_exit_collect(r->child.pidfd.get(), false, &r->status)) return;  // spurious: still running
          Finish(id);
        },
        true);
    run->stdout_watch = WatchOutput(env, id, run->child.stdout_fd.get(), true);
    run->stderr_watch = WatchOutput(env, id, run->child.stderr_fd.get(), false);
    if (!WriteSome(run)) {
      run->child.stdin_fd.reset();
    } else {
      run->stdin_watch = FdWatch::Start(
          env, run->child.stdin_fd.get(),
          [id](FdWatch *, int status, int) {
            HostRun *r = Find(id);
            if (!r || (status >= 0 && WriteSome(r))) return;
            CloseWatched(&r->stdin_watch, &r->child.stdin_fd);
          },
          true, UV_WRITABLE);
    }
  } catch (const Napi::Error &) {
    // A watch could not start (ENOMEM): the program is killed, and reaped by the exit
    // watch if that one started, else from a timer.
    Kill(run);
    if (!run->exit_watch) {
      std::unique_ptr<HostRun> owned = std::move(g_runs.at(id));
      g_runs.erase(id);
      ncri_fail(&e, ENOMEM, "epoll_ctl", "watch host program", req.path.c_str());
      CloseWatched(&owned->stdin_watch, &owned->child.stdin_fd);
      CloseWatched(&owned->stdout_watch, &owned->child.stdout_fd);
      CloseWatched(&owned->stderr_watch, &owned->child.stderr_fd);
      owned->child.pidfd.reset();
      RejectOnceReaped(env, owned->child.pid, std::move(owned->deferred), e);
    }
    return promise;
  }
  if (timeout_ms > 0) {
    run->timer = StartRunTimer(
        env, id,
        [](uv_timer_t *t) {
          HostRun *r = Find((uint32_t)reinterpret_cast<uintptr_t>(t->data));
          if (!r) return;
          r->timed_out = true;
          Kill(r);  // the exit watch then finishes the run
        },
        (uint64_t)timeout_ms, 0);
    uv_unref(reinterpret_cast<uv_handle_t *>(run->timer));  // the exit watch holds the loop
  }
  return promise;
}

// At env teardown: kill what still runs (the process is going away; nobody reaps).
void Cleanup(void *) {
  for (auto &entry : g_runs) {
    HostRun *r = entry.second.get();
    Kill(r);
    for (FdWatch *w : {r->exit_watch, r->stdin_watch, r->stdout_watch, r->stderr_watch})
      if (w) w->Close();
    for (uv_timer_t *t : {r->timer, r->reap_timer})
      if (t) uv_timer_stop(t);
    entry.second.release();
  }
  g_runs.clear();
}

}  // namespace

void InitHostSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("hostRun", Napi::Function::New(env, HostRunExport, "hostRun"));
  napi_add_env_cleanup_hook(env, Cleanup, nullptr);
}

}  // namespace ncri
