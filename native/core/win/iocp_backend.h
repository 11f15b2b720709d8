// iocp_backend.h - the Windows backend's per-reactor, per-connection and per-listener state.
// See reactor.h for the contract; the code is in iocp_reactor.cc.
//
// The kernel holds OVERLAPPED structures, not connections: every operation handed to it is an
// IoOp (heap, pooled) that carries the token of its connection or listener and outlives the slot
// when it has to. A connection only points at its operations; when it closes, operations still
// in the kernel are marked orphaned and freed when their (cancelled) completion arrives, so a
// completion never touches a slot that was released and reused meanwhile.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "../platform.h"

namespace myriad {

struct Listener;
struct IoOp;
struct AcceptOp;

struct BackendConn {
  IoOp* recv = nullptr;     // the zero-byte WSARecv op (in the kernel while recv->inflight)
  IoOp* send = nullptr;     // the WSASend op (in the kernel while send->inflight)
  IoOp* connect = nullptr;  // ConnectEx, while connecting
  uint32_t send_bytes = 0;  // bytes the WSASend in flight carries
  bool associated = false;  // socket bound to this reactor's completion port
  bool skip = false;        // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set on the socket
  bool readable = false;    // the zero-byte receive completed: bytes (or EOF) wait to be read
  bool read_queued = false; // in BackendReactor::readq
  bool flush_queued = false;  // in BackendReactor::flushq (write budget ran out)
};

// Only the acceptor reactor (listener id % threads) touches this: it alone has the listening
// socket on its completion port and keeps `accept_batch` AcceptEx calls posted on it.
struct BackendListener {
  std::vector<AcceptOp*> ops;
  bool associated = false;
  uint32_t idx = 0;  // the acceptor's token slot for this listener
  // One AcceptError per retry period, however many of the posted AcceptEx calls hit it (as on
  // Linux, where the listener pauses once); the others retry quietly.
  uint64_t quiet_until_ms = 0;
};

struct BackendReactor {
  std::atomic<void*> port{nullptr};  // the completion port (HANDLE); any thread may wake it
  bool wsa_started = false;
  bool skip_ok = false;  // every installed TCP provider is IFS: skip-on-success can be used
  // Extension functions, per address family (0 = IPv4, 1 = IPv6), loaded on first use.
  void* acceptex[2] = {nullptr, nullptr};
  void* acceptex_addrs[2] = {nullptr, nullptr};
  void* connectex[2] = {nullptr, nullptr};
  // Every op the kernel may still reference (intrusive list), for shutdown.
  IoOp* inflight = nullptr;
  size_t inflight_count = 0;
  // Pooled connection ops (recv/send/connect share one layout).
  std::vector<IoOp*> pool;
  // Ops that completed at once on a skip-on-success socket (no packet comes), handled this turn.
  std::vector<IoOp*> done;
  // Connections with bytes waiting to be read / written past a budget, handled next wake-up.
  std::vector<uint64_t> readq;
  std::vector<uint64_t> flushq;
  // Accept ops waiting to be posted again after an error (EMFILE/ENOBUFS...).
  std::vector<AcceptOp*> retry;
  uint32_t next_adopter = 0;   // round-robin over the reactors for accepted sockets
  uint32_t port_cursor = 0;    // localPortRange: where the next explicit pick starts
};

}  // namespace myriad
