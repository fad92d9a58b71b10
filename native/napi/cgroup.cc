// N-API glue for the cgroup facility: decodes arguments on the JS thread, runs the core
// function on a pool thread (cgroupfs writes, rmdir and kill-all can all sleep in the
// kernel) and settles a Promise. Exports, all returning Promises:
//   cgroupCreate([{root, path, inheritFiles}])      -> undefined
//   cgroupWriteFiles([{dir, file, value, mayFail}]) -> [errno per entry, 0 = written]
//   cgroupReadFiles([{dir, file}])                  -> [string | null per entry]
//   cgroupKillRound({killDirs, procsDirs, freezerDir, freezerVersion}, first, signal, expired)
//     -> {remaining, kernelKills} (the wait between rounds is the caller's, on its loop)
//   cgroupRemove([dir])                             -> undefined
//   cgroupDeviceFilter(dir, [rule])                 -> undefined (builds, loads, attaches)
//   cgroupDevicePrograms(dir)                       -> [program id]
//   cgroupDeviceFilterProbe()                       -> 0 or the errno of a test load
// and one synchronous, pure export (no syscalls: it only assembles):
//   cgroupDeviceProgram([rule])                     -> Buffer of struct bpf_insn
// where a rule is {allow, type: "a" | "c" | "b", major: number | null, minor: number | null,
// access}, null meaning any.
#include <napi.h>

#include <cmath>
#include <utility>

#include "cgroup.h"
#include "device_filter.h"
#include "js_error.h"
#include "promise_worker.h"
#include "registry.h"

namespace ncri {
namespace {

// ---- argument decoding (JS thread). Type errors are thrown synchronously: they are bugs
// in the TS facade, not runtime conditions.

Napi::Array ArrayArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsArray()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an array");
  }
  return info[i].As<Napi::Array>();
}

Napi::Object ObjectAt(Napi::Env env, Napi::Value v, const char *what) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  return v.As<Napi::Object>();
}

std::string StringProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool BoolProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

int IntProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

std::vector<std::string> StringArray(Napi::Env env, Napi::Value v, const char *what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must hold strings");
    out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

// A device number: null is "any" (-1); anything but a non-negative integer is a facade bug.
int64_t DeviceNumberProp(Napi::Object o, const char *key) {
  Napi::Value v = o.Get(key);
  if (v.IsNull()) return -1;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be null or a non-negative integer");
  }
  return static_cast<int64_t>(d);
}

// Rules are checked by the core (ncri_device_program), which says EINVAL for what it cannot
// express; here only the shapes.
std::vector<ncri_device_rule> DeviceRules(Napi::Env env, Napi::Value v, const char *what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<ncri_device_rule> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object o = ObjectAt(env, a.Get(i), "device rule");
    std::string type = StringProp(o, "type");
    if (type.size() != 1) throw Napi::TypeError::New(env, "device rule type must be one character");
    out.push_back({BoolProp(o, "allow"), type[0], DeviceNumberProp(o, "major"), DeviceNumberProp(o, "minor"), StringProp(o, "access")});
  }
  return out;
}

// ---- workers

struct CreateSpec {
  std::string root, path;
  std::vector<std::string> inherit;
};

class CreateWorker : public PromiseWorker {
 public:
  CreateWorker(Napi::Env env, std::vector<CreateSpec> specs)
      : PromiseWorker(env, "cgroupCreate"), specs_(std::move(specs)) {}

 protected:
  int Run(ncri_error *err) override {
    for (const CreateSpec &s : specs_) {
      int r = ncri_cgroup_mkdir(s.root, s.path, s.inherit, err);
      if (r < 0) return r;
    }
    return 0;
  }

 private:
  std::vector<CreateSpec> specs_;
};

class WriteWorker : public PromiseWorker {
 public:
  WriteWorker(Napi::Env env, std::vector<ncri_cgroup_write> writes)
      : PromiseWorker(env, "cgroupWriteFiles"), writes_(std::move(writes)) {}

 protected:
  int Run(ncri_error *err) override { return ncri_cgroup_write_files(&writes_, err); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, writes_.size());
    for (size_t i = 0; i < writes_.size(); i++) out.Set(static_cast<uint32_t>(i), writes_[i].result);
    return out;
  }

 private:
  std::vector<ncri_cgroup_write> writes_;
};

class ReadWorker : public PromiseWorker {
 public:
  ReadWorker(Napi::Env env, std::vector<ncri_cgroup_read> reads)
      : PromiseWorker(env, "cgroupReadFiles"), reads_(std::move(reads)) {}

 protected:
  int Run(ncri_error *err) override { return ncri_cgroup_read_files(&reads_, err); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, reads_.size());
    for (size_t i = 0; i < reads_.size(); i++) {
      const ncri_cgroup_read &r = reads_[i];
      out.Set(static_cast<uint32_t>(i), r.found ? Napi::Value(Napi::String::New(env, r.value)) : env.Null());
    }
    return out;
  }

 private:
  std::vector<ncri_cgroup_read> reads_;
};

class KillRoundWorker : public PromiseWorker {
 public:
  KillRoundWorker(Napi::Env env, ncri_cgroup_kill_spec spec, bool first, bool signal, bool expired)
      : PromiseWorker(env, "cgroupKillRound"), spec_(std::move(spec)), first_(first), signal_(signal), expired_(expired) {}

 protected:
  int Run(ncri_error *err) override {
    remaining_ = ncri_cgroup_kill_round(spec_, first_, signal_, expired_, &kernel_kills_, err);
    return remaining_ < 0 ? remaining_ : 0;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("remaining", remaining_);
    o.Set("kernelKills", kernel_kills_);
    return o;
  }

 private:
  ncri_cgroup_kill_spec spec_;
  bool first_, signal_, expired_;
  bool kernel_kills_ = false;
  int remaining_ = 0;
};

class RemoveWorker : public PromiseWorker {
 public:
  RemoveWorker(Napi::Env env, std::vector<std::string> dirs)
      : PromiseWorker(env, "cgroupRemove"), dirs_(std::move(dirs)) {}

 protected:
  int Run(ncri_error *err) override {
    for (const std::string &d : dirs_) {
      int r = ncri_cgroup_rmdir(d, err);
      if (r < 0) return r;
    }
    return 0;
  }

 private:
  std::vector<std::string> dirs_;
};

class DeviceFilterWorker : public PromiseWorker {
 public:
  DeviceFilterWorker(Napi::Env env, std::string dir, std::vector<ncri_device_rule> rules)
      : PromiseWorker(env, "cgroupDeviceFilter"), dir_(std::move(dir)), rules_(std::move(rules)) {}

 protected:
  int Run(ncri_error *err) override {
    std::vector<bpf_insn> program;
    int r = ncri_device_program(rules_, &program, err);
    if (r < 0) {
      // Name the cgroup the rules were for.
      return ncri_fail(err, err->err, err->syscall, err->step, dir_.c_str());
    }
    return ncri_device_filter_attach(dir_, program, err);
  }

 private:
  std::string dir_;
  std::vector<ncri_device_rule> rules_;
};

class DeviceProgramsWorker : public PromiseWorker {
 public:
  DeviceProgramsWorker(Napi::Env env, std::string dir) : PromiseWorker(env, "cgroupDevicePrograms"), dir_(std::move(dir)) {}

 protected:
  int Run(ncri_error *err) override { return ncri_device_filter_query(dir_, &ids_, err); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, ids_.size());
    for (size_t i = 0; i < ids_.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, ids_[i]));
    return out;
  }

 private:
  std::string dir_;
  std::vector<uint32_t> ids_;
};

class DeviceProbeWorker : public PromiseWorker {
 public:
  explicit DeviceProbeWorker(Napi::Env env) : PromiseWorker(env, "cgroupDeviceFilterProbe") {}

 protected:
  // Never fails: the errno of the test load is the answer.
  int Run(ncri_error *) override {
    ncri_error e{};
    result_ = ncri_device_filter_probe(&e) < 0 ? e.err : 0;
    return 0;
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, result_); }

 private:
  int result_ = 0;
};

// ---- exports

Napi::Value Create(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array a = ArrayArg(info, 0, "cgroupCreate specs");
  std::vector<CreateSpec> specs;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object o = ObjectAt(env, a.Get(i), "cgroupCreate spec");
    specs.push_back({StringProp(o, "root"), StringProp(o, "path"), StringArray(env, o.Get("inheritFiles"), "inheritFiles")});
  }
  return (new CreateWorker(env, std::move(specs)))->Queue();
}

Napi::Value WriteFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array a = ArrayArg(info, 0, "cgroupWriteFiles writes");
  std::vector<ncri_cgroup_write> writes;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object o = ObjectAt(env, a.Get(i), "cgroupWriteFiles entry");
    writes.push_back({StringProp(o, "dir"), StringProp(o, "file"), StringProp(o, "value"), BoolProp(o, "mayFail"), 0});
  }
  return (new WriteWorker(env, std::move(writes)))->Queue();
}

Napi::Value ReadFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array a = ArrayArg(info, 0, "cgroupReadFiles reads");
  std::vector<ncri_cgroup_read> reads;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object o = ObjectAt(env, a.Get(i), "cgroupReadFiles entry");
    reads.push_back({StringProp(o, "dir"), StringProp(o, "file"), false, std::string()});
  }
  return (new ReadWorker(env, std::move(reads)))->Queue();
}

Napi::Value KillRound(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throw Napi::TypeError::New(env, "cgroupKillRound(spec, first, signal, expired)");
  Napi::Object o = ObjectAt(env, info[0], "cgroupKillRound spec");
  ncri_cgroup_kill_spec spec;
  spec.kill_dirs = StringArray(env, o.Get("killDirs"), "killDirs");
  spec.procs_dirs = StringArray(env, o.Get("procsDirs"), "procsDirs");
  Napi::Value fz = o.Get("freezerDir");
  if (fz.IsNull()) {
    spec.freezer_version = 0;
  } else {
    spec.freezer_dir = StringProp(o, "freezerDir");
    spec.freezer_version = IntProp(o, "freezerVersion");
    if (spec.freezer_version != 1 && spec.freezer_version != 2) {
      throw Napi::TypeError::New(env, "freezerVersion must be 1 or 2");
    }
  }
  return (new KillRoundWorker(env, std::move(spec), info[1].ToBoolean().Value(), info[2].ToBoolean().Value(),
                              info[3].ToBoolean().Value()))
      ->Queue();
}

Napi::Value Remove(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "cgroupRemove needs dirs");
  return (new RemoveWorker(env, StringArray(env, info[0], "cgroupRemove dirs")))->Queue();
}

Napi::Value DeviceFilter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "cgroupDeviceFilter needs a dir and rules");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  return (new DeviceFilterWorker(env, std::move(dir), DeviceRules(env, info[1], "cgroupDeviceFilter rules")))->Queue();
}

Napi::Value DevicePrograms(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "cgroupDevicePrograms needs a dir");
  return (new DeviceProgramsWorker(env, info[0].As<Napi::String>().Utf8Value()))->Queue();
}

Napi::Value DeviceFilterProbe(const Napi::CallbackInfo &info) {
  return (new DeviceProbeWorker(info.Env()))->Queue();
}

// Pure and bounded by the rule count: fine on the JS thread.
Napi::Value DeviceProgram(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "cgroupDeviceProgram needs rules");
  std::vector<ncri_device_rule> rules = DeviceRules(env, info[0], "cgroupDeviceProgram rules");
  std::vector<bpf_insn> program;
  ncri_error err{};
  if (ncri_device_program(rules, &program, &err) < 0) throw MakeSyscallError(env, err);
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t *>(program.data()), program.size() * sizeof(bpf_insn));
}

}  // namespace

void InitCgroup(Napi::Env env, Napi::Object exports) {
  exports.Set("cgroupCreate", Napi::Function::New(env, Create, "cgroupCreate"));
  exports.Set("cgroupWriteFiles", Napi::Function::New(env, WriteFiles, "cgroupWriteFiles"));
  exports.Set("cgroupReadFiles", Napi::Function::New(env, ReadFiles, "cgroupReadFiles"));
  exports.Set("cgroupKillRound", Napi::Function::New(env, KillRound, "cgroupKillRound"));
  exports.Set("cgroupRemove", Napi::Function::New(env, Remove, "cgroupRemove"));
  exports.Set("cgroupDeviceFilter", Napi::Function::New(env, DeviceFilter, "cgroupDeviceFilter"));
  exports.Set("cgroupDevicePrograms", Napi::Function::New(env, DevicePrograms, "cgroupDevicePrograms"));
  exports.Set("cgroupDeviceFilterProbe", Napi::Function::New(env, DeviceFilterProbe, "cgroupDeviceFilterProbe"));
  exports.Set("cgroupDeviceProgram", Napi::Function::New(env, DeviceProgram, "cgroupDeviceProgram"));
}

}  // namespace ncri
