// addon.cc - the Node-API binding: one flat function per verb, one callback registered once.
//
// Events: reactors publish batches and ask for a notification; the notification is one
// thread-safe-function call per wake-up of the JS thread, however many batches wait. On the JS
// thread each batch becomes one call of the registered callback with (Float64Array records,
// Buffer arena) - the arena is handed over without a copy. Policy lives in lib/; this file only
// converts arguments and results.
//
// Context-aware: all state hangs off per-environment instance data, so the addon loads in any
// number of worker_threads at once, each with its own engine and reactors.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef _WIN32
#include <sys/resource.h>
#endif

#include "address.h"
#include "engine.h"
#include "errors.h"
#include "shared_bytes.h"

namespace {

using myriad::Endpoint;
using myriad::Engine;
using myriad::SharedBytes;

struct Addon final : myriad::EventSink {
  uint32_t threads = 0;  // 0 = default, decided at start
  std::unique_ptr<Engine> engine;
  napi_threadsafe_function tsfn = nullptr;
  Napi::FunctionReference on_events;
  Napi::FunctionReference request_pump;  // JS: setImmediate(() => binding.pump())
  bool stopped = false;
  bool halted = false;

  void notify() override {
    // Non-blocking with an unbounded queue: fails only once the function is closing (teardown).
    (void)napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
  }
  void stop() {
    if (stopped) return;
    stopped = true;
    if (engine) engine->stop();
  }
  // Process exit: threads joined, sockets left to the OS (closing them one by one here would
  // only do before exit() what the kernel does after it). No engine is started afterwards.
  void halt() {
    halted = true;
    if (engine) engine->halt();
  }
};

Addon* addon_of(const Napi::CallbackInfo& info) { return info.Env().GetInstanceData<Addon>(); }

void free_arena(napi_env, void* data, void*) { std::free(data); }

// Takes a pending JS exception (a handler threw) and keeps the first, referenced so that it
// outlives the handle scope it was caught in; deliver_some() rethrows it once delivery is done.
bool catch_exception(napi_env env, napi_ref* first) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return false;
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) == napi_ok && *first == nullptr)
    (void)napi_create_reference(env, err, 1, first);
  return true;
}

// Received bytes handed to JS per delivery. Beyond it, the rest waits for the next turn of the
// event loop (setImmediate), so timers, I/O and IPC keep running while data floods in.
constexpr size_t kDeliveryBudget = 1 << 20;

// JS thread: hand waiting batches to the JS callback, up to kDeliveryBudget, then either give
// delivery back to the reactors (nothing left) or ask JS to call pump() from setImmediate.
// Raw Node-API calls with every status checked: during environment teardown a call can fail,
// and then delivery stops quietly (node-addon-api's wrappers would throw, fatal at that point).
void deliver_some(napi_env env, Addon* a) {
  if (a->stopped || !a->engine || a->on_events.IsEmpty()) return;
  std::vector<myriad::Batch> batches;
  a->engine->drain(batches, kDeliveryBudget);
  napi_ref first_error = nullptr;
  for (myriad::Batch& b : batches) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    bool ok = true;
    const size_t nbytes = b.events.size() * sizeof(myriad::Event);
    void* data = nullptr;
    napi_value ab, records, arena, undefined, global, result;
    ok = napi_create_arraybuffer(env, nbytes, &data, &ab) == napi_ok;
    if (ok) {
      std::memcpy(data, b.events.data(), nbytes);
      ok = napi_create_typedarray(env, napi_float64_array, b.events.size() * 4, ab, 0, &records) == napi_ok &&
           napi_get_undefined(env, &undefined) == napi_ok && napi_get_global(env, &global) == napi_ok;
    }
    arena = undefined;
    if (ok && b.arena_used > 0) {
      const size_t used = b.arena_used;
      uint8_t* bytes = b.take_arena();
      if (napi_create_external_buffer(env, used, bytes, free_arena, nullptr, &arena) != napi_ok) {
        // Runtimes that forbid external buffers (V8 sandbox): one copy instead.
        void* copy = nullptr;
        ok = napi_create_buffer_copy(env, used, bytes, &copy, &arena) == napi_ok;
        std::free(bytes);
      }
    }
    if (ok) {
      napi_value argv[2] = {records, arena};
      napi_status st = napi_call_function(env, global, a->on_events.Value(), 2, argv, &result);
      if (!catch_exception(env, &first_error) && st != napi_ok) ok = false;  // the environment is going away
    }
    napi_close_handle_scope(env, scope);
    if (!ok) break;
  }
  a->engine->release(batches);
  if (a->engine->finish_delivery()) {
    napi_value undefined, result;
    if (a->request_pump.IsEmpty()) {
      a->notify();  // no JS scheduler registered: continue through the thread-safe function
    } else if (napi_get_undefined(env, &undefined) == napi_ok &&
               napi_call_function(env, undefined, a->request_pump.Value(), 0, nullptr, &result) != napi_ok) {
      catch_exception(env, &first_error);
    }
  }
  if (first_error != nullptr) {
    napi_value err;
    if (napi_get_reference_value(env, first_error, &err) == napi_ok && err != nullptr) napi_fatal_exception(env, err);
    napi_delete_reference(env, first_error);
  }
}

// The thread-safe function's callback: the reactors' notify().
void deliver(napi_env env, napi_value, void* context, void*) {
  if (env == nullptr) return;  // the function is being torn down
  deliver_some(env, static_cast<Addon*>(context));
}

bool ensure_engine(Napi::Env env, Addon* a) {
  if (a->engine) return true;
  if (a->stopped || a->halted) {
    Napi::Error::New(env, "myriad: the engine was shut down (the process is exiting)").ThrowAsJavaScriptException();
    return false;
  }
  if (a->on_events.IsEmpty()) {
    Napi::Error::New(env, "myriad: binding used before init()").ThrowAsJavaScriptException();
    return false;
  }
  uint32_t n = a->threads;
  if (n == 0) n = std::min<uint32_t>(8, std::max<uint32_t>(1, std::thread::hardware_concurrency()));
  a->engine.reset(new Engine(n, a));
  int err = a->engine->start();
  if (err != 0) {
    a->engine.reset();
    Napi::Error e = Napi::Error::New(env, std::string("myriad: cannot start reactors: ") +
                                              myriad::error_name(err).message);
    e.Set("code", Napi::String::New(env, myriad::error_name(err).code));
    e.Set("errno", Napi::Number::New(env, err));
    e.ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Engine* engine_of(const Napi::CallbackInfo& info) {
  Addon* a = addon_of(info);
  return ensure_engine(info.Env(), a) ? a->engine.get() : nullptr;
}

uint64_t arg_id(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<uint64_t>(info[i].As<Napi::Number>().DoubleValue());
}
uint32_t arg_u32(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) return 0;
  double d = info[i].As<Napi::Number>().DoubleValue();
  return d > 0 && d < 4294967296.0 ? static_cast<uint32_t>(d) : 0;
}
bool arg_bool(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }

// The bytes of a Buffer/Uint8Array/string argument, copied once into a SharedBytes.
SharedBytes* bytes_arg(const Napi::Value& v) {
  if (v.IsString()) {
    napi_env env = v.Env();
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return nullptr;
    // Encoded straight into the shared block; napi also writes a terminator, hence the slack.
    SharedBytes* b = SharedBytes::allocate(len, 1);
    if (b == nullptr) return nullptr;
    size_t written = 0;
    napi_get_value_string_utf8(env, v, reinterpret_cast<char*>(b->data()), len + 1, &written);
    return b;
  }
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    return SharedBytes::copy_of(p, ta.ByteLength());
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    return SharedBytes::copy_of(ab.Data(), ab.ByteLength());
  }
  return nullptr;
}

myriad::SlowPolicy slow_policy_arg(const Napi::CallbackInfo& info, size_t i) {
  const uint32_t p = arg_u32(info, i);
  return p <= 2 ? static_cast<myriad::SlowPolicy>(p) : myriad::SlowPolicy::Close;
}

// The per-connection options listen() and connect() both take: flags 8 noDelay, 16 keepAlive,
// then from argument `first`: keepAliveDelayMs, idleTimeoutMs, maxBuffered, slowPolicy.
myriad::SocketOptions socket_options(const Napi::CallbackInfo& info, uint32_t flags, size_t first) {
  myriad::SocketOptions o;
  o.nodelay = (flags & 8) != 0;
  o.keepalive = (flags & 16) != 0;
  o.keepalive_delay_ms = arg_u32(info, first);
  o.idle_timeout_ms = arg_u32(info, first + 1);
  o.max_buffered = arg_u32(info, first + 2);
  o.slow_policy = slow_policy_arg(info, first + 3);
  return o;
}

bool parse_endpoint(const Napi::Value& host, uint32_t port, Endpoint* out) {
  if (!host.IsString()) return false;
  std::string s = host.As<Napi::String>().Utf8Value();
  return myriad::parse_ip(s.data(), s.size(), static_cast<uint16_t>(port), out);
}

void throw_invalid(Napi::Env env, const char* what) {
  Napi::TypeError e = Napi::TypeError::New(env, std::string("myriad: invalid ") + what);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
  e.ThrowAsJavaScriptException();
}

// ---- verbs ----

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addon* a = addon_of(info);
  if (!info[0].IsFunction()) {
    throw_invalid(env, "callback");
    return env.Undefined();
  }
  if (a->tsfn != nullptr) return env.Undefined();  // once per environment
  a->on_events = Napi::Persistent(info[0].As<Napi::Function>());
  if (info[1].IsFunction()) a->request_pump = Napi::Persistent(info[1].As<Napi::Function>());
  napi_value name = Napi::String::New(env, "myriad.events");
  napi_status st = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, a,
                                                   deliver, &a->tsfn);
  if (st != napi_ok) {
    Napi::Error::New(env, "myriad: cannot create the event channel").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Not keeping the loop alive until something is open: lib/ refs while handles are live.
  napi_unref_threadsafe_function(env, a->tsfn);
  // Registered after the thread-safe function, so it runs before its teardown (hooks run in
  // reverse order): the reactors are joined while the function they call is still valid.
  napi_add_env_cleanup_hook(env, [](void* p) { static_cast<Addon*>(p)->stop(); }, a);
  return env.Undefined();
}

// shutdown(): joins the reactor threads, now; sockets stay open for the OS to reclaim. lib/
// calls it from process 'exit': process.exit() and a fatal exception run no cleanup hook, so
// without it the reactors are still inside socket calls when the C runtime exits. On Windows,
// ExitProcess then kills them wherever they are, and a lock one of them held can hang the exit
// (seen under Wine, about one exit in 40 with 600 busy connections: the exiting thread waited
// forever on a lock a killed reactor held).
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  addon_of(info)->halt();
  return info.Env().Undefined();
}

// pump(): continue a delivery that finish_delivery() left open (called from setImmediate).
Napi::Value Pump(const Napi::CallbackInfo& info) {
  deliver_some(info.Env(), addon_of(info));
  return info.Env().Undefined();
}

Napi::Value Configure(const Napi::CallbackInfo& info) {
  Addon* a = addon_of(info);
  if (a->engine) return Napi::Boolean::New(info.Env(), false);
  a->threads = arg_u32(info, 0);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  return e == nullptr ? info.Env().Undefined() : Napi::Number::New(info.Env(), e->threads());
}

Napi::Value Ref(const Napi::CallbackInfo& info) {
  Addon* a = addon_of(info);
  if (a->tsfn != nullptr) {
    if (arg_bool(info, 0))
      napi_ref_threadsafe_function(info.Env(), a->tsfn);
    else
      napi_unref_threadsafe_function(info.Env(), a->tsfn);
  }
  return info.Env().Undefined();
}

// listen(requestId, host, port, owner, backlog, acceptBatch, flags, keepAliveDelayMs, idleTimeoutMs,
//        maxBuffered, slowPolicy)
// flags: 1 reuseAddress, 2 reusePort, 4 ipv6Only, 8 noDelay, 16 keepAlive
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e == nullptr) return info.Env().Undefined();
  myriad::ListenRequest req;
  if (!parse_endpoint(info[1], arg_u32(info, 2), &req.local)) {
    throw_invalid(info.Env(), "listen address");
    return info.Env().Undefined();
  }
  req.owner = arg_u32(info, 3);
  req.backlog = static_cast<int>(std::min<uint32_t>(arg_u32(info, 4), 0x7fffffff));
  req.accept_batch = std::max<uint32_t>(1, arg_u32(info, 5));
  const uint32_t flags = arg_u32(info, 6);
  req.reuse_address = (flags & 1) != 0;
  req.reuse_port = (flags & 2) != 0;
  req.ipv6_only = (flags & 4) != 0;
  req.conn = socket_options(info, flags, 7);
  e->listen(arg_id(info, 0), req);
  return info.Env().Undefined();
}

Napi::Value CloseListener(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->close_listener(arg_u32(info, 0));
  return info.Env().Undefined();
}

// connect(requestId, host, port, localHost|null, localPort, portLo, portHi, timeoutMs, owner,
//         flags, keepAliveDelayMs, idleTimeoutMs, maxBuffered, slowPolicy)
//         flags: 8 noDelay, 16 keepAlive, 32 bindNoPort
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e == nullptr) return info.Env().Undefined();
  myriad::ConnectRequest req;
  if (!parse_endpoint(info[1], arg_u32(info, 2), &req.remote)) {
    throw_invalid(info.Env(), "connect address");
    return info.Env().Undefined();
  }
  if (!info[3].IsNull() && !info[3].IsUndefined() && !parse_endpoint(info[3], arg_u32(info, 4), &req.local)) {
    throw_invalid(info.Env(), "local address");
    return info.Env().Undefined();
  }
  req.port_lo = static_cast<uint16_t>(arg_u32(info, 5));
  req.port_hi = static_cast<uint16_t>(arg_u32(info, 6));
  req.timeout_ms = arg_u32(info, 7);
  req.owner = arg_u32(info, 8);
  const uint32_t flags = arg_u32(info, 9);
  req.bind_no_port = (flags & 32) != 0;
  req.conn = socket_options(info, flags, 10);
  e->connect(arg_id(info, 0), req);
  return info.Env().Undefined();
}

// dialPlan(requestId, host, port, sources|null, quotas, cap, portLo, portHi, timeoutMs, owner, flags,
//          keepAliveDelayMs, idleTimeoutMs, maxBuffered, slowPolicy) -> shares
// connectMany(): quotas[i] connections from sources[i] (with no pool: sources null, quotas [count],
// the kernel picks the source), at most cap in flight. Each share reports DialPlanDone once.
Napi::Value StartDialPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine* e = engine_of(info);
  if (e == nullptr) return env.Undefined();
  myriad::DialPlan plan;
  plan.id = arg_id(info, 0);
  if (!parse_endpoint(info[1], arg_u32(info, 2), &plan.base.remote)) {
    throw_invalid(env, "connect address");
    return env.Undefined();
  }
  if (!info[4].IsArray()) {
    throw_invalid(env, "quotas");
    return env.Undefined();
  }
  Napi::Array quotas = info[4].As<Napi::Array>();
  const uint32_t n = quotas.Length();
  plan.pooled = info[3].IsArray();
  if (n == 0 || n > 65535 || (plan.pooled && info[3].As<Napi::Array>().Length() != n) || (!plan.pooled && n != 1)) {
    throw_invalid(env, "sources");
    return env.Undefined();
  }
  plan.sources.resize(n);
  plan.quota.resize(n);
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value q = quotas[i];
    plan.quota[i] = q.IsNumber() ? std::min<uint32_t>(q.As<Napi::Number>().Uint32Value(), 0xffffffffu) : 0;
    total += plan.quota[i];
    if (plan.pooled && !parse_endpoint(info[3].As<Napi::Array>()[i], 0, &plan.sources[i])) {
      throw_invalid(env, "local address");
      return env.Undefined();
    }
  }
  if (total > 0xffffffffu) {
    throw_invalid(env, "quotas");
    return env.Undefined();
  }
  plan.unstarted = static_cast<uint32_t>(total);
  plan.cap = std::max<uint32_t>(1, arg_u32(info, 5));
  plan.base.bind_no_port = true;
  plan.base.port_lo = static_cast<uint16_t>(arg_u32(info, 6));
  plan.base.port_hi = static_cast<uint16_t>(arg_u32(info, 7));
  plan.base.timeout_ms = arg_u32(info, 8);
  plan.base.owner = arg_u32(info, 9);
  plan.base.conn = socket_options(info, arg_u32(info, 10), 11);
  return Napi::Number::New(env, e->dial_plan(std::move(plan)));
}

// dialPlanCredit(requestId, more): JS freed `more` connect slots for the call.
Napi::Value DialPlanCredit(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->dial_plan_credit(arg_id(info, 0), arg_u32(info, 1));
  return info.Env().Undefined();
}

// dialPlanCancel(requestId): the call is settled; start nothing more.
Napi::Value DialPlanCancel(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->dial_plan_cancel(arg_id(info, 0));
  return info.Env().Undefined();
}

// write(id, data, highWaterMark) -> buffered bytes after this write
Napi::Value Write(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e == nullptr) return info.Env().Undefined();
  SharedBytes* b = bytes_arg(info[1]);
  if (b == nullptr) {
    throw_invalid(info.Env(), "data");
    return info.Env().Undefined();
  }
  double hwm = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 65536.0;
  uint64_t total = e->write(arg_id(info, 0), b, hwm > 0 ? static_cast<uint64_t>(hwm) : 0);
  return Napi::Number::New(info.Env(), static_cast<double>(total));
}

Napi::Value End(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e == nullptr) return info.Env().Undefined();
  SharedBytes* b = nullptr;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    b = bytes_arg(info[1]);
    if (b == nullptr) {
      throw_invalid(info.Env(), "data");
      return info.Env().Undefined();
    }
  }
  e->end(arg_id(info, 0), b);
  return info.Env().Undefined();
}

template <void (Engine::*Verb)(uint64_t)>
Napi::Value IdVerb(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) (e->*Verb)(arg_id(info, 0));
  return info.Env().Undefined();
}

Napi::Value SetNoDelay(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->set_nodelay(arg_id(info, 0), arg_bool(info, 1));
  return info.Env().Undefined();
}

Napi::Value SetKeepAlive(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->set_keepalive(arg_id(info, 0), arg_bool(info, 1), arg_u32(info, 2));
  return info.Env().Undefined();
}

Napi::Value SetTimeout(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->set_timeout(arg_id(info, 0), arg_u32(info, 1));
  return info.Env().Undefined();
}

Napi::Value SetMaxBuffered(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->set_max_buffered(arg_id(info, 0), arg_u32(info, 1), slow_policy_arg(info, 2));
  return info.Env().Undefined();
}

// broadcast(owner, data, exceptId) / groupBroadcast(group, data, exceptId): the bytes are copied
// here once, whatever the number of members.
template <void (Engine::*Verb)(uint32_t, SharedBytes*, uint64_t)>
Napi::Value Fanout(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e == nullptr) return info.Env().Undefined();
  SharedBytes* b = bytes_arg(info[1]);
  if (b == nullptr) {
    throw_invalid(info.Env(), "data");
    return info.Env().Undefined();
  }
  (e->*Verb)(arg_u32(info, 0), b, info[2].IsNumber() ? arg_id(info, 2) : 0);
  return info.Env().Undefined();
}

template <void (Engine::*Verb)(uint32_t, uint64_t)>
Napi::Value GroupVerb(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) (e->*Verb)(arg_u32(info, 0), arg_id(info, 1));
  return info.Env().Undefined();
}

Napi::Value GroupClear(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e != nullptr) e->group_clear(arg_u32(info, 0));
  return info.Env().Undefined();
}

// endpoints(id) -> [localAddress, localPort, remoteAddress, remotePort, family] or undefined
Napi::Value Endpoints(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Engine* e = engine_of(info);
  Endpoint local, remote;
  if (e == nullptr || !e->endpoints(arg_id(info, 0), &local, &remote)) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(0u, Napi::String::New(env, myriad::format_ip(local)));
  out.Set(1u, Napi::Number::New(env, local.port));
  out.Set(2u, Napi::String::New(env, myriad::format_ip(remote)));
  out.Set(3u, Napi::Number::New(env, remote.port));
  out.Set(4u, Napi::Number::New(env, remote.family == 6 ? 6 : 4));
  return out;
}

Napi::Value Buffered(const Napi::CallbackInfo& info) {
  Engine* e = engine_of(info);
  if (e == nullptr) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(e->buffered(arg_id(info, 0))));
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addon* a = addon_of(info);
  myriad::EngineStats s;
  if (a->engine) s = a->engine->stats();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  num("connectionsEstablished", s.live);
  num("connectionsAccepted", s.accepted);
  num("connectionsDialed", s.dialed);
  num("connectionsClosed", s.closed);
  num("connectionFailures", s.connect_failures);
  num("acceptErrors", s.accept_errors);
  num("bytesRead", s.bytes_read);
  num("bytesWritten", s.bytes_written);
  num("broadcasts", s.broadcasts);
  num("messagesQueued", s.messages_queued);
  num("messagesDropped", s.messages_dropped);
  num("slowConsumersClosed", s.slow_closed);
  num("bytesBuffered", s.bytes_buffered);
  Napi::Array reactors = Napi::Array::New(env, s.reactors.size());
  for (size_t i = 0; i < s.reactors.size(); i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("eventsHandled", Napi::Number::New(env, static_cast<double>(s.reactors[i].events)));
    r.Set("wakeups", Napi::Number::New(env, static_cast<double>(s.reactors[i].wakeups)));
    r.Set("batches", Napi::Number::New(env, static_cast<double>(s.reactors[i].batches)));
    r.Set("connections", Napi::Number::New(env, static_cast<double>(s.reactors[i].live)));
    reactors.Set(static_cast<uint32_t>(i), r);
  }
  o.Set("reactors", reactors);
  return o;
}

// errorName(errno) -> [code, message]
Napi::Value ErrorName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int err = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  myriad::ErrorName n = myriad::error_name(err);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::String::New(env, n.code));
  out.Set(1u, Napi::String::New(env, n.message));
  return out;
}

// rlimitNofile(raise) -> [soft, hard]; raise lifts soft to hard first. null where there is no
// such limit (Windows: sockets are not counted against a descriptor table limit).
Napi::Value RlimitNofile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef _WIN32
  return env.Null();
#else
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return env.Null();
  if (arg_bool(info, 0) && rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  auto as_num = [](rlim_t v) { return v == RLIM_INFINITY ? INFINITY : static_cast<double>(v); };
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, as_num(rl.rlim_cur)));
  out.Set(1u, Napi::Number::New(env, as_num(rl.rlim_max)));
  return out;
#endif
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  auto* a = new Addon();
  env.SetInstanceData<Addon>(a);  // deleted (after stop) when the environment goes away
  Napi::Array syscalls = Napi::Array::New(env);
  for (int i = 0; i < static_cast<int>(myriad::Syscall::Count); i++)
    syscalls.Set(static_cast<uint32_t>(i), Napi::String::New(env, myriad::kSyscallNames[i]));
  exports.Set("syscalls", syscalls);
  exports.Set("platformThreads", Napi::Number::New(env, std::thread::hardware_concurrency()));
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("pump", Napi::Function::New(env, Pump));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("ref", Napi::Function::New(env, Ref));
  exports.Set("listen", Napi::Function::New(env, Listen));
  exports.Set("closeListener", Napi::Function::New(env, CloseListener));
  exports.Set("connect", Napi::Function::New(env, Connect));
  exports.Set("dialPlan", Napi::Function::New(env, StartDialPlan));
  exports.Set("dialPlanCredit", Napi::Function::New(env, DialPlanCredit));
  exports.Set("dialPlanCancel", Napi::Function::New(env, DialPlanCancel));
  exports.Set("write", Napi::Function::New(env, Write));
  exports.Set("end", Napi::Function::New(env, End));
  exports.Set("destroy", Napi::Function::New(env, IdVerb<&Engine::destroy>));
  exports.Set("pause", Napi::Function::New(env, IdVerb<&Engine::pause>));
  exports.Set("resume", Napi::Function::New(env, IdVerb<&Engine::resume>));
  exports.Set("setNoDelay", Napi::Function::New(env, SetNoDelay));
  exports.Set("setKeepAlive", Napi::Function::New(env, SetKeepAlive));
  exports.Set("setTimeout", Napi::Function::New(env, SetTimeout));
  exports.Set("setMaxBuffered", Napi::Function::New(env, SetMaxBuffered));
  exports.Set("broadcast", Napi::Function::New(env, Fanout<&Engine::broadcast>));
  exports.Set("groupBroadcast", Napi::Function::New(env, Fanout<&Engine::group_broadcast>));
  exports.Set("groupAdd", Napi::Function::New(env, GroupVerb<&Engine::group_add>));
  exports.Set("groupDelete", Napi::Function::New(env, GroupVerb<&Engine::group_delete>));
  exports.Set("groupClear", Napi::Function::New(env, GroupClear));
  exports.Set("endpoints", Napi::Function::New(env, Endpoints));
  exports.Set("buffered", Napi::Function::New(env, Buffered));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("errorName", Napi::Function::New(env, ErrorName));
  exports.Set("rlimitNofile", Napi::Function::New(env, RlimitNofile));
  return exports;
}

}  // namespace

NODE_API_MODULE(myriad, Module)
