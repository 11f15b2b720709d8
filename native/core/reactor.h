// reactor.h - one reactor thread: the connections it owns, its inbox of commands from the JS
// thread, its outbox of event batches to the JS thread, its timer wheel and its counters.
//
// ---------------------------------------------------------------------------------------------
// THE BACKEND CONTRACT. reactor.cc holds everything that is the same on every platform: command
// handling, the connection state machine, events, timers, counters. A backend (one file per OS:
// linux/epoll_reactor.cc, win/iocp_reactor.cc) implements the methods marked [backend] below,
// and defines BackendReactor / BackendConn / BackendListener (its per-reactor, per-connection and
// per-listener state) in its own header, included here. The rules every backend keeps:
//
//  1. Only the reactor's own thread makes socket syscalls for the sockets it owns. The JS thread
//     talks to a reactor only through post() and reads only what post() publishes.
//  2. Kernel event data carries tokens (ids.h), never pointers; backend_poll() drops any event
//     whose token's generation no longer matches its slot.
//  3. backend_poll(timeout) waits at most `timeout` ms (-1 = until woken), handles at most a
//     bounded amount of work per wake-up (kMaxEventsPerWait events, kReadBudget bytes read per
//     connection, kWriteBudget bytes written per connection) and reports through the shared
//     handlers: on_accepted(), on_connected(), on_connect_failed(), on_readable-style reads via
//     read_space()/on_read(), on_write_progress(), fail_conn(). Edge-triggered readiness (epoll,
//     with a ready list for work left over) and completions (IOCP) both map onto these.
//  4. backend_wake() is callable from any thread and makes a sleeping backend_poll() return.
//  5. A connection's socket is closed only by backend_close(), which also forgets any pending
//     kernel state for it; after it the slot stays reserved (state kClosed) until JS releases it.
// ---------------------------------------------------------------------------------------------
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "address.h"
#include "errors.h"
#include "events.h"
#include "ids.h"
#include "platform.h"
#include "timer_wheel.h"
#include "write_queue.h"

#ifdef _WIN32
#include "win/iocp_backend.h"
#else
#include "linux/epoll_backend.h"
#endif

namespace myriad {

class Engine;

// Connection state bits.
enum ConnFlags : uint32_t {
  kLive = 1u << 0,          // slot in use and the socket open
  kConnecting = 1u << 1,    // dialed, connect() in progress
  kPaused = 1u << 2,        // JS called pause(): not reading
  kThrottled = 1u << 3,     // JS is behind on events: not reading until it catches up
  kReadEof = 1u << 4,       // peer sent FIN
  kEndRequested = 1u << 5,  // JS called end(): shut down writing once the queue is empty
  kWriteShut = 1u << 6,     // shutdown(SHUT_WR) done
  kClosed = 1u << 7,        // socket closed, slot waits for JS to release it
  kReported = 1u << 8,      // JS knows the id (Accept/Connected emitted)
  kTimeoutFired = 1u << 9,  // idle timeout fired; re-armed on the next activity
  kErrored = 1u << 10,      // closed by an error
  kDestroyRequested = 1u << 11,  // JS called destroy()
};

struct Conn {
  // Written by the reactor only (publish_fd), read by it freely; the JS thread reads it once, in
  // Engine::endpoints, atomically (peek_fd): see there.
  sock_t fd = kInvalidSock;
  // Atomic because the JS thread reads it in conn_for() while the reactor may bump it in
  // release_slot() for a stale id (a verb called with a released id: "ignored" by contract).
  // Found by native/core/test/test_broadcast_groups.cc under TSan. Reactor-side reads are
  // plain loads on x86; every change is in release_slot() (Engine::endpoints' fetch_add(0)
  // only reads it, ordered).
  std::atomic<uint32_t> gen{1};
  uint32_t slot = 0;
  uint32_t flags = 0;
  uint32_t owner = 0;       // server id (accepted) or dialer id (dialed)
  uint32_t timeout_ms = 0;  // idle timeout, 0 = none
  uint32_t max_buffered = 0;  // broadcasts' cap on buffered bytes, 0 = none
  SlowPolicy slow_policy = SlowPolicy::Close;
  uint16_t source_tag = 0;  // dialed by a DialPlan: its source index + 1 (fits the padding here)
  uint64_t last_active_ms = 0;
  uint64_t request_id = 0;  // connect request (or DialPlan id), while connecting
  TimerNode timer;
  WriteQueue wq;
  // Bytes handed over by write() and not yet taken by the kernel. The JS thread adds, the
  // reactor subtracts; write() returns the sum so JS can apply its high-water mark.
  std::atomic<uint64_t> buffered{0};
  std::atomic<bool> want_drain{false};
  Endpoint local;
  Endpoint remote;
  BackendConn be;
};

inline void publish_fd(Conn* c, sock_t fd) { __atomic_store_n(&c->fd, fd, __ATOMIC_SEQ_CST); }
inline sock_t peek_fd(const Conn* c) { return __atomic_load_n(&c->fd, __ATOMIC_SEQ_CST); }
// A dialed connection's local port, learnt late (on first read, or as it closes): the reactor
// stores it while the JS thread may read it in Engine::endpoints.
inline void store_port(Conn* c, uint16_t port) { __atomic_store_n(&c->local.port, port, __ATOMIC_RELEASE); }
inline uint16_t load_port(const Conn* c) { return __atomic_load_n(&c->local.port, __ATOMIC_ACQUIRE); }

struct Listener {
  uint32_t id = 0;
  sock_t fd = kInvalidSock;
  ListenRequest opts;
  std::atomic<uint32_t> attached{0};  // reactors that still watch fd
  bool closing = false;               // guarded by the engine's listener lock
  BackendListener be;
};

struct ReactorCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> dialed{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> accept_errors{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<uint64_t> events{0};   // events handed to JS
  std::atomic<uint64_t> wakeups{0};  // returns from the kernel wait
  std::atomic<uint64_t> live{0};    // established connections JS knows about
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> messages_queued{0};   // broadcast copies queued to a connection
  std::atomic<uint64_t> messages_dropped{0};  // skipped under SlowPolicy::Drop
  std::atomic<uint64_t> slow_closed{0};       // closed under SlowPolicy::Close
};

class Reactor {
 public:
  static constexpr int kMaxEventsPerWait = 256;
  static constexpr size_t kReadBudget = 64 * 1024;
  static constexpr size_t kWriteBudget = 1024 * 1024;
  static constexpr size_t kArenaSize = 256 * 1024;
  static constexpr size_t kMaxOutboxBytes = 32 * 1024 * 1024;  // then stop reading until JS drains
  // Accept storms (see accept_hold_ms()): kStormAccepts or more accepted connections within
  // one to two kStormSlotMs slots make a storm; then accept-only batches wait up to
  // kAcceptHoldMs, up to kFlushEvents events, before JS is woken.
  static constexpr uint64_t kStormSlotMs = 8;
  static constexpr uint32_t kStormAccepts = 16;
  static constexpr uint64_t kAcceptHoldMs = 2;
  static constexpr size_t kFlushEvents = 1024;
  static constexpr size_t kBatchReserve = 64;

  Reactor(Engine* engine, uint32_t index);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  int start();      // returns 0 or a portable errno
  void stop();      // posts Stop and joins, then closes every socket; idempotent
  // Posts Stop and joins, and leaves sockets and queued work where they are: for a process about
  // to exit, which hands them back to the OS. stop() may still follow (it then only cleans up).
  void halt();
  uint32_t index() const { return index_; }

  // Any thread.
  void post(Command&& c);
  void post_many(std::vector<Command>& cs);

  // JS thread. A slot is safe to read between its Accept/Connected event and JS's release of it.
  Conn* conn_for(uint32_t slot, uint32_t gen);
  // Moves waiting batches to `out`, oldest first, while `budget` (bytes of received data) lasts;
  // `at_least_one` takes the first batch whatever its size. Subtracts what it took from budget.
  void take_batches(std::vector<Batch>& out, size_t& budget, bool at_least_one);
  bool has_batches();
  ReactorCounters counters;
  // Bytes buffered now on this reactor's connections (reads the slots' atomics; JS thread).
  uint64_t bytes_buffered();

  // --- shared handlers the backend calls (reactor thread) ---
  Conn* alloc_conn(sock_t fd);  // nullptr when the table is full (socket left to the caller)
  void on_accepted(uint32_t owner, const SocketOptions& o, sock_t fd, const Endpoint& local,
                   const Endpoint& remote);
  void on_accept_error(Listener* l, int err);
  void on_connected(Conn* c);
  void on_connect_failed(Conn* c, int err, Syscall sc);
  // A connect that failed before it had a connection slot (socket() failed, table full).
  void on_dial_failed(const ConnectRequest& req, uint64_t request_id, int err, Syscall sc);
  uint8_t* read_space(size_t* len);      // where the next read goes (in the batch arena)
  void on_read(Conn* c, size_t n);       // n bytes landed at read_space(); n == 0 means EOF
  bool reading_allowed(Conn* c);         // false (and reading paused) while JS is far behind
  void arm_connect_timer(Conn* c, uint32_t timeout_ms);
  void on_write_progress(Conn* c, size_t n);
  void fail_conn(Conn* c, int err, Syscall sc);  // error event + close
  void emit(EventType type, double id, double a = 0, double b = 0);
  uint64_t now() const { return now_ms_; }
  Conn* slot(uint32_t s) { return s < nslots_ ? &chunk(s)[s % kChunk] : nullptr; }
  uint64_t id_of(const Conn* c) const { return make_conn_id(index_, c->slot, c->gen); }
  Listener* listener_at(uint32_t idx) { return idx < listeners_.size() ? listeners_[idx] : nullptr; }
  Engine* engine() { return engine_; }

 private:
  static constexpr uint32_t kChunk = 4096;
  static constexpr uint32_t kMaxChunks = kMaxSlots / kChunk;

  void run();
  void handle(Command& c);
  void handle_write(Conn* c, SharedBytes* bytes);
  void broadcast_one(Conn* c, SharedBytes* bytes);  // applies max_buffered / slow_policy
  void drop_group_memberships(uint32_t slot);
  void finish_write_side(Conn* c);
  void maybe_close(Conn* c);
  void close_conn(Conn* c, bool errored);
  void release_slot(uint32_t s);
  void touch(Conn* c);
  void arm_timer(Conn* c);
  void on_timer(Conn* c);
  void flush_batch();
  int accept_hold_ms();
  void count_accept();
  void resume_throttled();
  void setup_conn_options(Conn* c, const SocketOptions& o);
  void handle_listen(ListenRequest* req, uint64_t request_id);
  // DialPlans (connectMany() shares): see events.h.
  DialPlan* plan_of(uint64_t id);
  void plan_pump(DialPlan* p);  // starts attempts while the cap allows; finishes a share that is done
  void plan_attempt_failed(uint64_t request_id, uint16_t tag, int err, Syscall sc);
  bool plan_drop_source(DialPlan* p, uint32_t s);  // false: no source is usable now
  void plan_restore_sources(DialPlan* p, uint32_t except);  // those whose drop has run out
  int plan_next_source(DialPlan* p);
  void pump_deferred_plans();
  void drop_command(Command& c);  // releases what a command owns, unhandled
  Conn* chunk(uint32_t s) { return chunks_[s / kChunk].load(std::memory_order_acquire); }
  Conn* live_conn(uint32_t slot, uint32_t gen);

  // [backend] — implemented once per platform.
  int backend_init();
  void backend_destroy();
  void backend_wake();
  void backend_poll(int timeout_ms);
  int backend_listen(Listener* l, Syscall* failed);  // socket/bind/listen on l->opts; fills l->fd
  void backend_attach(Listener* l, uint32_t idx);  // idx = this reactor's token slot for l
  void backend_detach(Listener* l);
  // true: stop waking for new connections on this reactor's listeners (they wait in the
  // kernel's accept queue); false: watch them again. A backend may ignore it.
  void backend_hold_accepts(bool hold);
  void backend_connect(ConnectRequest* req, uint64_t request_id);
  void backend_flush(Conn* c);            // write what the queue holds, as far as the kernel takes
  void backend_update_interest(Conn* c);  // after a change of flags or queue: (re)arm or resume I/O
  void backend_shutdown_write(Conn* c);
  void backend_close(Conn* c);
  void backend_set_nodelay(Conn* c, bool on);
  void backend_set_keepalive(Conn* c, bool on, uint32_t delay_ms);
  friend class EpollAccess;
  friend class IocpAccess;

  Engine* engine_;
  uint32_t index_;
  std::thread thread_;
  bool started_ = false;
  bool halted_ = false;  // the thread is joined (halt()); stop() has not cleaned up yet
  uint64_t now_ms_ = 0;
  BackendReactor be_;

  // inbox
  std::mutex inbox_mu_;
  std::vector<Command> inbox_;
  std::vector<Command> inbox_work_;
  std::atomic<bool> wake_pending_{false};

  // outbox
  std::mutex outbox_mu_;
  std::vector<Batch> outbox_;
  std::atomic<size_t> outbox_bytes_{0};
  std::atomic<bool> has_throttled_{false};
  Batch batch_;  // being filled by this thread
  uint64_t batch_started_ms_ = 0;  // when its first event came
  bool batch_accepts_only_ = false;
  bool accepts_held_ = false;  // backend_hold_accepts(true) is in force
  bool draining_ = false;      // the hold is over: hand the batch over after this pass
  bool more_accepts_ = false;  // backend: a listener's pass stopped at accept_batch, more wait
  uint64_t accept_slot_ = 0;   // accept rate: accepts in the current and previous slot
  uint32_t accepts_in_slot_ = 0;
  uint32_t accepts_prev_slot_ = 0;
  uint8_t* spare_arena_ = nullptr;

  // connection table: chunks never move, so the JS thread can read a published slot
  std::atomic<Conn*> chunks_[kMaxChunks] = {};
  uint32_t nslots_ = 0;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> throttled_;

  // listeners this reactor watches (index = token slot)
  std::vector<Listener*> listeners_;

  TimerWheel timers_;

  // connectMany() shares this reactor is carrying out (a handful at most: a linear search).
  std::vector<DialPlan*> plans_;
  std::vector<uint64_t> plans_deferred_;  // ids of shares that used their failures this turn
  uint64_t turn_ = 0;                     // loop turns, for the shares' per-turn budget

  // Group membership of this reactor's connections: group id -> slots, and slot -> group ids
  // (so a closing connection leaves all its groups). Only members cost anything.
  std::unordered_map<uint32_t, std::unordered_set<uint32_t>> groups_;
  std::unordered_map<uint32_t, std::vector<uint32_t>> conn_groups_;
};

}  // namespace myriad
