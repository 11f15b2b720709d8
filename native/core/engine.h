// engine.h - the public face of the native core: a set of reactors and the verbs the binding
// calls. Every verb is non-blocking: it validates, hands a command to the owning reactor and
// returns. Results come back as events, which the binding collects with drain().
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "events.h"
#include "reactor.h"

namespace myriad {

// The binding's hook: called from a reactor thread when events are waiting and no notification
// is outstanding. It must not block; the binding answers by calling drain() on the JS thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void notify() = 0;
};

struct EngineStats {
  uint64_t accepted = 0, dialed = 0, connect_failures = 0, accept_errors = 0, closed = 0;
  uint64_t bytes_read = 0, bytes_written = 0, live = 0;
  uint64_t broadcasts = 0, messages_queued = 0, messages_dropped = 0, slow_closed = 0, bytes_buffered = 0;
  struct PerReactor { uint64_t events, wakeups, batches, live; };
  std::vector<PerReactor> reactors;
};

class Engine {
 public:
  Engine(uint32_t threads, EventSink* sink);
  ~Engine();  // stops the reactors
  int start();
  void stop();
  // Joins the reactor threads and leaves every socket open: the last step of a process that is
  // exiting (see Reactor::halt). Verbs after it queue work nobody runs.
  void halt();
  uint32_t threads() const { return static_cast<uint32_t>(reactors_.size()); }
  Reactor* reactor_at(uint32_t i) { return i < reactors_.size() ? reactors_[i].get() : nullptr; }

  // Verbs (JS thread). A bad id (closed, unknown) is ignored: JS may race a close it has not seen.
  void listen(uint64_t request_id, const ListenRequest& req);
  void close_listener(uint32_t listener_id);
  void connect(uint64_t request_id, const ConnectRequest& req);
  // connectMany(): `plan` holds the whole call (quota per source, cap in flight); it is split
  // into one share per reactor (at most cap, at most the attempt count), each carried out by
  // its reactor alone. Returns the number of shares: each reports DialPlanDone once.
  uint32_t dial_plan(DialPlan&& plan);
  void dial_plan_credit(uint64_t plan_id, uint32_t more);  // `more` attempts in flight allowed
  void dial_plan_cancel(uint64_t plan_id);                 // start nothing more (JS settled it)
  // Queues bytes; returns the connection's buffered byte count after it (0 for a bad id).
  // When that reaches `high_water`, a Drain event follows once the queue has emptied.
  uint64_t write(uint64_t id, SharedBytes* bytes, uint64_t high_water);
  void end(uint64_t id, SharedBytes* last_bytes);  // last_bytes may be null
  void destroy(uint64_t id);
  void pause(uint64_t id);
  void resume(uint64_t id);
  void set_nodelay(uint64_t id, bool on);
  void set_keepalive(uint64_t id, bool on, uint32_t delay_ms);
  void set_timeout(uint64_t id, uint32_t ms);
  void set_max_buffered(uint64_t id, uint32_t bytes, SlowPolicy policy);
  bool endpoints(uint64_t id, Endpoint* local, Endpoint* remote);

  // Fan-out. The bytes are copied once (by the caller, into `bytes`) and shared by every write:
  // one command per reactor, whatever the member count. `except` = a connection id to skip (0 = none).
  void broadcast(uint32_t owner, SharedBytes* bytes, uint64_t except);
  void group_add(uint32_t group, uint64_t id);
  void group_delete(uint32_t group, uint64_t id);
  void group_broadcast(uint32_t group, SharedBytes* bytes, uint64_t except);
  void group_clear(uint32_t group);
  uint64_t buffered(uint64_t id);

  // Event delivery (JS thread). notify() fires once; from then on the JS thread owns delivery
  // until finish_delivery() says nothing is left:
  //   drain(out, budget)  takes waiting batches, oldest first per reactor, until about `budget`
  //                       bytes of received data are taken (always at least one batch);
  //   release(handled)    once JS has handled them, lets the reactors reuse the slots of the
  //                       connections those batches closed;
  //   finish_delivery()   true: more is waiting, call drain() again soon (no notify() will come);
  //                       false: all delivered, the next published batch notifies again.
  // Why a budget and no re-notify while delivering: a sink that re-queues itself while JS works
  // (a thread-safe function) is dispatched again in the same event-loop turn, so under a flood
  // the loop never reaches timers or I/O. The binding instead continues from setImmediate.
  void drain(std::vector<Batch>& out, size_t budget = SIZE_MAX);
  void release(std::vector<Batch>& handled);
  bool finish_delivery();

  EngineStats stats();

  // Reactor side.
  void notify_ready();
  void register_listener(Listener* l);  // assigns l->id
  void attach_everywhere(Listener* l);
  void forget_listener(Listener* l);  // last reactor detached: the socket is already closed

 private:
  Conn* conn(uint64_t id, Reactor** r);
  void post_to_conn(uint64_t id, Command&& c);
  void post_to_all(CommandType type, uint64_t arg, uint64_t arg2, SharedBytes* bytes, void* ptr = nullptr);
  void forget_plan_share(uint64_t plan_id, uint32_t reactor);  // its DialPlanDone is being drained
  std::atomic<uint64_t> broadcasts_{0};

  EventSink* sink_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::atomic<bool> notify_pending_{false};
  std::atomic<uint32_t> next_reactor_{0};
  // DialPlans not cancelled yet: which reactors carry a share still running (JS thread only;
  // drain() drops a share once its batch says it is done).
  std::unordered_map<uint64_t, std::vector<uint32_t>> plan_shares_;
  uint32_t plan_credit_turn_ = 0;
  size_t drain_from_ = 0;  // JS thread: the reactor the next drain() starts with (fairness)
  bool started_ = false;

  std::mutex listeners_mu_;
  uint32_t next_listener_id_ = 1;
  std::unordered_map<uint32_t, Listener*> listeners_;
};

}  // namespace myriad
