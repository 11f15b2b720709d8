// events.h - what crosses between the JS thread and the reactors.
//
// Reactor -> JS: fixed-size Event records collected in a Batch together with an arena that holds
// the bytes of every Data event in it. The Node-API layer hands a whole batch to JS in one call:
// records as one Float64Array, arena as one Buffer (zero copy); Data events are (offset, length)
// into it. JS -> reactor: Command records pushed on the reactor's inbox.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "address.h"
#include "platform.h"
#include "shared_bytes.h"

namespace myriad {

enum class EventType : uint8_t {
  Accept = 1,        // id=conn, a=owner (server id)
  Connected = 2,     // id=conn, a=request id, b=source tag (connectMany: source index + 1; else 0)
  ConnectFailed = 3, // id=request id, a=errno, b=syscall + 256 * source tag
  Data = 4,          // id=conn, a=arena offset, b=length
  End = 5,           // id=conn (peer sent FIN)
  Drain = 6,         // id=conn (write queue empty after write() returned false)
  Error = 7,         // id=conn, a=errno, b=syscall (Close follows)
  Close = 8,         // id=conn, a=1 if an error closed it
  Timeout = 9,       // id=conn
  ListenOk = 10,     // id=request id, a=listener id, b=bound port
  ListenFailed = 11, // id=request id, a=errno, b=syscall
  ListenerClosed = 12, // id=listener id
  AcceptError = 13,  // id=listener id, a=errno (the listener pauses, then retries)
  DialPlanDone = 14, // id=request id of a connectMany() share, a=attempts failed unstarted (no usable
                     // source), b=the share's cap (JS takes it off the call's cap)
  DialPlanReturned = 15, // id=request id, a=unstarted attempts a cancel dropped, b=credit that
                         // found the share done (both no longer held by the call)
};

// Four doubles: a batch of records is copied into a Float64Array with a single memcpy.
struct Event {
  double type;
  double id;
  double a;
  double b;
};

struct Batch {
  std::vector<Event> events;
  uint8_t* arena = nullptr;  // malloc'd; ownership passes to the JS Buffer
  size_t arena_used = 0;
  size_t arena_cap = 0;
  std::vector<uint32_t> closed_slots;  // slots JS must see closed before they can be reused
  std::vector<uint64_t> plans_done;    // DialPlan shares finished (the engine credits them no more)
  uint32_t reactor = 0;

  Batch() = default;
  Batch(Batch&& o) noexcept { *this = static_cast<Batch&&>(o); }
  Batch& operator=(Batch&& o) noexcept {
    if (this != &o) {
      std::free(arena);
      events = static_cast<std::vector<Event>&&>(o.events);
      closed_slots = static_cast<std::vector<uint32_t>&&>(o.closed_slots);
      plans_done = static_cast<std::vector<uint64_t>&&>(o.plans_done);
      arena = o.arena; arena_used = o.arena_used; arena_cap = o.arena_cap; reactor = o.reactor;
      o.arena = nullptr; o.arena_used = o.arena_cap = 0;
    }
    return *this;
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  ~Batch() { std::free(arena); }
  // Releases the arena to the caller (the JS Buffer's finalizer frees it).
  uint8_t* take_arena() { uint8_t* a = arena; arena = nullptr; arena_cap = 0; return a; }
};

// What a broadcast does to a connection whose buffered bytes would pass its max_buffered.
enum class SlowPolicy : uint8_t {
  Close = 0,   // destroy it with ERR_SLOW_CONSUMER (the default: a reconnecting client resyncs;
               // a silently gappy stream corrupts application state)
  Drop = 1,    // skip this message for it (counted)
  Buffer = 2,  // queue anyway: memory is unbounded
};

// Options a connection gets from its server or dialer.
struct SocketOptions {
  bool nodelay = false;
  bool keepalive = false;
  uint32_t keepalive_delay_ms = 0;
  uint32_t idle_timeout_ms = 0;
  uint32_t max_buffered = 0;  // 0 = no cap
  SlowPolicy slow_policy = SlowPolicy::Close;
};

struct ListenRequest {
  Endpoint local;
  uint32_t owner = 0;  // server id chosen by JS; accepted connections carry it
  int backlog = 65535; // the kernel clamps it to net.core.somaxconn
  uint32_t accept_batch = 64;
  bool reuse_address = true;
  bool reuse_port = false;
  bool ipv6_only = false;
  SocketOptions conn;
};

struct ConnectRequest {
  Endpoint remote;
  Endpoint local;           // unset: the kernel chooses
  bool bind_no_port = true; // local address given without a port: IP_BIND_ADDRESS_NO_PORT
  uint16_t port_lo = 0, port_hi = 0;  // IP_LOCAL_PORT_RANGE, 0 = system range
  uint32_t timeout_ms = 0;
  uint32_t owner = 0;
  uint16_t source_tag = 0;  // a DialPlan's source index + 1; 0 for a single connect()
  SocketOptions conn;
};

// One connectMany() call's share on one reactor: quota[i] connections from sources[i], at most
// `cap` in flight. The reactor starts the next attempt the moment one settles, with no round trip
// to the JS thread: JS decides the plan (how many from which source), the reactor carries it out.
// A source that fails with EADDRNOTAVAIL/EADDRINUSE (no such address, out of ports) is dropped
// for kSourceRetryMs, as connect() skips one: the attempt and the source's unstarted quota move to
// the others, and come back to it when it is tried again. Once no source is usable the unstarted
// attempts fail together (DialPlanDone's count).
// Without a pool, `sources` is one unset endpoint (the kernel picks the source) and every error
// is the attempt's own.
// Fairness: at most kPlanFailuresPerTurn attempts of a share fail at once (in socket(), bind() or
// connect() itself) per reactor turn, since the cap alone would not bound those; the rest wait for
// the next turn.
struct DialPlan {
  static constexpr uint32_t kSourceRetryMs = 1000;  // lib/dialer.ts SKIP_MS
  static constexpr uint32_t kPlanFailuresPerTurn = 64;

  uint64_t id = 0;               // JS's request id for the call
  ConnectRequest base;           // destination and options; local and source_tag set per attempt
  std::vector<Endpoint> sources;
  std::vector<uint32_t> quota;   // attempts not started yet, per source
  std::vector<uint64_t> dropped_until;  // 0 = usable; else when (reactor ms) to try it again
  std::vector<uint32_t> moved_out;      // attempts a dropped source gave the others
  uint64_t next_restore_ms = UINT64_MAX;  // the earliest dropped_until; none dropped: MAX
  bool pooled = false;           // sources are the caller's pool (source errors move attempts)
  uint32_t unstarted = 0;        // sum of quota
  uint32_t in_flight = 0;
  uint32_t cap = 1;              // attempts in flight at most (JS raises it as slots free up)
  uint32_t failed_unstarted = 0; // given up for want of a usable source
  uint32_t cursor = 0;           // round-robin over the sources, so a burst spreads evenly
  uint64_t turn = 0;             // the reactor turn failed_this_turn counts
  uint32_t failed_this_turn = 0;
  bool cancelled = false;
  bool pumping = false;          // inside pump: failures that happen meanwhile do not recurse
  bool deferred = false;         // on the reactor's list to pump next turn
};

// A socket accepted on one reactor and handed to another (backends whose listening socket can be
// watched by one reactor only, as with IOCP). Carries copies: the listener may close meanwhile.
struct Adopted {
  sock_t fd;
  uint32_t owner;
  SocketOptions conn;
  Endpoint local;
  Endpoint remote;
};

enum class CommandType : uint8_t {
  Write, End, Destroy, Pause, Resume, SetNoDelay, SetKeepAlive, SetTimeout,
  Listen, AttachListener, DetachListener, Connect, Release, ResumeReading, Broadcast, Adopt,
  SetMaxBuffered, GroupAdd, GroupDelete, GroupBroadcast, GroupClear, DialPlanStart, DialPlanCredit,
  DialPlanCancel, Stop
};

struct Listener;

struct Command {
  CommandType type;
  uint32_t slot = 0;
  uint32_t gen = 0;
  uint64_t arg = 0;         // request id, timeout, flag, owner or group id
  uint64_t arg2 = 0;        // keep-alive delay, policy, or the connection id a broadcast skips
  SharedBytes* bytes = nullptr;      // Write/End/Broadcast: one reference owned by the command
  void* ptr = nullptr;               // Listen: ListenRequest*, Connect: ConnectRequest*,
                                     // Attach/Detach: Listener*, Release: std::vector<uint32_t>*,
                                     // Adopt: Adopted*, DialPlanStart: DialPlan*
};

}  // namespace myriad
