// iocp_reactor.cc - the Windows backend: one I/O completion port per reactor, completions taken in
// batches with GetQueuedCompletionStatusEx, AcceptEx kept posted `acceptBatch` deep by one reactor
// per listener (which hands accepted sockets round-robin to the others as Adopt commands),
// ConnectEx from an explicitly bound socket, zero-byte WSARecv to learn readability (an idle
// connection owns no receive buffer) followed by non-blocking recv into the reactor's arena, and
// one WSASend in flight per connection straight from its write queue. Implements the [backend]
// methods of reactor.h; all state-machine decisions stay in reactor.cc.
//
// Lifetimes. The kernel references OVERLAPPED structures until their completion is dequeued, even
// after closesocket() (pending operations then complete with ERROR_OPERATION_ABORTED). So every
// operation is an IoOp owned by the backend, carrying a token (ids.h), never a Conn*. A connection
// closing marks its in-flight ops orphaned (a pending send also takes the write queue with it: the
// kernel may still read those bytes); an orphaned op is freed when its completion arrives and
// never looks at the slot, which may belong to a new connection by then.
//
// Skip-on-success. Where every installed TCP provider is IFS (WSAEnumProtocols), connection
// sockets get FILE_SKIP_COMPLETION_PORT_ON_SUCCESS as libuv does: an operation that completes at
// once then queues no packet, and its result is handled here directly (sends) or on this
// wake-up's queues (reads, connects). Listening sockets keep the default: every AcceptEx
// completes through the port.
#include "../platform.h"

#include <mstcpip.h>
#include <mswsock.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "../engine.h"
#include "../errors.h"
#include "../reactor.h"

#ifndef SO_PORT_SCALABILITY
#define SO_PORT_SCALABILITY 0x3006
#endif
#ifndef SO_REUSE_UNICASTPORT
#define SO_REUSE_UNICASTPORT 0x3007
#endif
#ifndef SOMAXCONN_HINT
#define SOMAXCONN_HINT(b) (-(b))
#endif
#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

namespace myriad {

namespace {
constexpr uint64_t kAcceptRetryMs = 100;    // after an accept error that is not the peer's doing
constexpr uint32_t kMaxAcceptBatch = 4096;  // each posted AcceptEx holds a pre-created socket
constexpr int kAcceptResetRetries = 8;      // AcceptEx failing at once with WSAECONNRESET
constexpr int kMaxBufs = 64;                // WSABUFs per WSASend
constexpr size_t kMaxPooledOps = 4096;
constexpr uint64_t kShutdownDrainMs = 2000;
constexpr DWORD kAcceptAddrLen = sizeof(sockaddr_storage) + 16;  // AcceptEx wants 16 spare bytes
char g_zero_byte = 0;  // the buffer of every zero-byte WSARecv
}  // namespace

enum class OpKind : uint8_t { Recv, Send, Connect, Accept };

// One operation handed to the kernel. `ov` is the first member: a dequeued OVERLAPPED* is the op.
struct IoOp {
  OVERLAPPED ov;
  IoOp* prev = nullptr;  // BackendReactor::inflight list
  IoOp* next = nullptr;
  uint64_t token = 0;              // the connection's or listener's token
  SOCKET sock = INVALID_SOCKET;    // the socket it runs on
  OpKind kind = OpKind::Recv;
  bool inflight = false;  // its completion is still to come (from the port or the sync queue)
  bool orphan = false;    // its owner is gone: free it when the completion comes
  WriteQueue held;        // an orphaned send: the queue whose bytes the kernel may still read
};

struct AcceptOp : IoOp {
  Listener* listener = nullptr;  // valid while !orphan
  SOCKET accepted = INVALID_SOCKET;
  uint64_t retry_at = 0;
  int family = AF_INET;
  char addrs[2 * kAcceptAddrLen];
};

// An orphaned send takes the connection's write queue over by copying its two pointers and
// resetting the original; that is only sound while WriteQueue has no destructor of its own.
static_assert(std::is_trivially_copyable<WriteQueue>::value && std::is_trivially_destructible<WriteQueue>::value,
              "iocp_reactor.cc moves a WriteQueue by copying it: give WriteQueue a move/swap first");
static_assert(std::is_standard_layout<IoOp>::value, "IoOp must be standard-layout (OVERLAPPED* -> IoOp*)");

namespace {

int set_int_opt(SOCKET s, int level, int name, int value) {
  return setsockopt(s, level, name, reinterpret_cast<const char*>(&value), sizeof(value)) == 0 ? 0
                                                                                               : last_socket_error();
}

int set_keepalive(SOCKET s, bool on, uint32_t delay_ms) {
  int err = set_int_opt(s, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (err == 0 && on && delay_ms >= 1000) {
    tcp_keepalive ka;
    ka.onoff = 1;
    ka.keepalivetime = delay_ms;
    ka.keepaliveinterval = 1000;  // Windows' default probe interval
    DWORD got = 0;
    if (WSAIoctl(s, SIO_KEEPALIVE_VALS, &ka, sizeof(ka), nullptr, 0, &got, nullptr, nullptr) != 0)
      err = last_socket_error();
  }
  return err;
}


// An overlapped, non-inheritable TCP socket (WSAGetLastError() tells why on INVALID_SOCKET).
SOCKET new_socket(int family) {
  SOCKET s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
    // Before Windows 7 SP1 the flag is unknown: create, then clear inheritance by hand.
    s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
    if (s != INVALID_SOCKET && !SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0)) {
      const DWORD e = GetLastError();
      closesocket(s);
      WSASetLastError(static_cast<int>(e));
      return INVALID_SOCKET;
    }
  }
  return s;
}

// True when every installed TCP provider is IFS: then socket handles are real file handles and
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is safe (a non-IFS LSP may complete without the port).
bool all_tcp_providers_ifs() {
  static const bool ok = [] {
    INT protocols[] = {IPPROTO_TCP, 0};
    DWORD len = 0;
    if (WSAEnumProtocolsW(protocols, nullptr, &len) != SOCKET_ERROR || WSAGetLastError() != WSAENOBUFS || len == 0)
      return false;
    std::vector<WSAPROTOCOL_INFOW> infos(len / sizeof(WSAPROTOCOL_INFOW) + 1);
    len = static_cast<DWORD>(infos.size() * sizeof(WSAPROTOCOL_INFOW));
    const int n = WSAEnumProtocolsW(protocols, infos.data(), &len);
    if (n == SOCKET_ERROR || n <= 0) return false;
    for (int i = 0; i < n; i++)
      if ((infos[static_cast<size_t>(i)].dwServiceFlags1 & XP1_IFS_HANDLES) == 0) return false;
    return true;
  }();
  return ok;
}

void* load_extension(SOCKET s, GUID guid, int* err) {
  void* fn = nullptr;
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), &fn, sizeof(fn), &bytes, nullptr,
               nullptr) != 0) {
    *err = last_socket_error();
    return nullptr;
  }
  if (fn == nullptr) *err = portable_error(WSAEOPNOTSUPP);
  return fn;
}

int family_index(int family) { return family == AF_INET6 ? 1 : 0; }

IoOp* op_of(OVERLAPPED* ov) {
  return reinterpret_cast<IoOp*>(reinterpret_cast<char*>(ov) - offsetof(IoOp, ov));
}

// The status the kernel left in the OVERLAPPED (an NTSTATUS: negative = failure).
bool op_succeeded(const IoOp* op) { return static_cast<LONG>(op->ov.Internal) >= 0; }

// The Winsock error of a failed op, as a portable errno (0 if it succeeded after all). The socket
// must still be open: true for every op that is not orphaned.
int op_error(IoOp* op, DWORD* bytes) {
  DWORD flags = 0;
  if (WSAGetOverlappedResult(op->sock, &op->ov, bytes, FALSE, &flags)) return 0;
  return portable_error(WSAGetLastError());
}

bool accept_error_is_transient(int e) {
  // The connection died between the handshake and AcceptEx's completion: take the next one.
  return e == portable_error(WSAECONNRESET) || e == portable_error(WSAECONNABORTED) ||
         e == portable_error(WSAENETDOWN) || e == portable_error(WSAENETUNREACH) ||
         e == portable_error(WSAEHOSTUNREACH) || e == portable_error(WSAETIMEDOUT);
}

uint64_t token_of(const Conn* c) { return make_token(TokenKind::Conn, c->slot, c->gen); }

bool is_loopback(const Endpoint& ep) {
  if (ep.family == 4) return ep.addr[0] == 127;
  static const uint8_t kV6Loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(ep.addr, kV6Loopback, 16) == 0 ||
         (std::memcmp(ep.addr, kV4Mapped, 12) == 0 && ep.addr[12] == 127);
}

// Windows answers a SYN to a closed loopback port with RST, then retries the SYN for about two
// seconds before ConnectEx fails. Without SYN retransmissions it fails at once with
// ECONNREFUSED, as on Linux (libuv does the same). Windows 10 1709+; elsewhere the ioctl fails
// and the connect just takes the usual time: not an error.
void fast_loopback_refusal(SOCKET s) {
  TCP_INITIAL_RTO_PARAMETERS rto;
  rto.Rtt = TCP_INITIAL_RTO_UNSPECIFIED_RTT;
  rto.MaxSynRetransmissions = TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS;
  DWORD got = 0;
  (void)WSAIoctl(s, SIO_TCP_INITIAL_RTO, &rto, sizeof(rto), nullptr, 0, &got, nullptr, nullptr);
}

}  // namespace

bool socket_local_endpoint(sock_t s, Endpoint* out) {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return from_sockaddr(reinterpret_cast<sockaddr*>(&ss), out);
}

uint64_t now_ms() {
  static const uint64_t freq = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);  // cannot fail since Windows XP
    return static_cast<uint64_t>(f.QuadPart);
  }();
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  const uint64_t t = static_cast<uint64_t>(c.QuadPart);
  return t / freq * 1000u + (t % freq) * 1000u / freq;
}

void close_socket(sock_t s) {
  // closesocket fails only for a handle that is not a socket (a bug, not a condition to handle)
  // or for a blocking SO_LINGER close, which myriad never sets.
  if (s != INVALID_SOCKET) (void)closesocket(s);
}

// The backend's helpers: a friend of Reactor, so they reach be_ and the private [backend] methods.
class IocpAccess {
 public:
  // ---- op bookkeeping ----
  static IoOp* take_op(Reactor& r, OpKind kind, uint64_t token, SOCKET s) {
    IoOp* op;
    if (!r.be_.pool.empty()) {
      op = r.be_.pool.back();
      r.be_.pool.pop_back();
    } else {
      op = new (std::nothrow) IoOp();
      if (op == nullptr) return nullptr;
    }
    op->kind = kind;
    op->token = token;
    op->sock = s;
    op->inflight = false;
    op->orphan = false;
    return op;
  }

  static void put_op(Reactor& r, IoOp* op) {
    op->held.clear();
    if (r.be_.pool.size() < kMaxPooledOps)
      r.be_.pool.push_back(op);
    else
      delete op;
  }

  static void link(Reactor& r, IoOp* op) {
    op->inflight = true;
    op->prev = nullptr;
    op->next = r.be_.inflight;
    if (op->next != nullptr) op->next->prev = op;
    r.be_.inflight = op;
    r.be_.inflight_count++;
  }

  static void unlink(Reactor& r, IoOp* op) {
    if (!op->inflight) return;
    if (op->prev != nullptr)
      op->prev->next = op->next;
    else
      r.be_.inflight = op->next;
    if (op->next != nullptr) op->next->prev = op->prev;
    op->prev = op->next = nullptr;
    op->inflight = false;
    r.be_.inflight_count--;
  }

  // An op whose owner is gone, back from the kernel: free it and what it holds.
  static void discard(Reactor& r, IoOp* op) {
    unlink(r, op);
    if (op->kind == OpKind::Accept) {
      auto* a = static_cast<AcceptOp*>(op);
      close_socket(a->accepted);
      delete a;
    } else {
      put_op(r, op);
    }
  }

  // A closing connection lets go of one of its ops: pooled at once if idle, orphaned if the kernel
  // still has it (a send then keeps the write queue alive until its completion).
  static void release_conn_op(Reactor& r, IoOp*& ref, WriteQueue* wq) {
    IoOp* op = ref;
    ref = nullptr;
    if (op == nullptr) return;
    if (op->inflight) {
      op->orphan = true;
      if (wq != nullptr) {
        op->held = *wq;
        *wq = WriteQueue();
      }
    } else {
      put_op(r, op);
    }
  }

  static Conn* conn_of(Reactor& r, uint64_t t) {
    Conn* c = r.slot(token_slot(t));
    if (c == nullptr || (c->gen & 0xffffffu) != token_gen(t) || (c->flags & kLive) == 0) return nullptr;
    return c;
  }

  // ---- connections ----
  static bool associate(Reactor& r, Conn* c) {
    if (c->be.associated) return true;
    u_long on = 1;
    if (ioctlsocket(c->fd, FIONBIO, &on) != 0) {  // recv() after a zero-byte read must not block
      r.fail_conn(c, last_socket_error(), Syscall::Setsockopt);
      return false;
    }
    HANDLE port = static_cast<HANDLE>(r.be_.port.load(std::memory_order_relaxed));
    if (CreateIoCompletionPort(reinterpret_cast<HANDLE>(c->fd), port, static_cast<ULONG_PTR>(token_of(c)), 0) ==
        nullptr) {
      r.fail_conn(c, portable_error(static_cast<int>(GetLastError())), Syscall::EpollCtl);
      return false;
    }
    c->be.associated = true;
    // Failing leaves the default (a packet for every completion): correct, one trip slower.
    if (r.be_.skip_ok &&
        SetFileCompletionNotificationModes(reinterpret_cast<HANDLE>(c->fd),
                                           FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE))
      c->be.skip = true;
    return true;
  }

  static bool wants_read(const Conn* c) {
    return c->fd != kInvalidSock && (c->flags & (kConnecting | kReadEof | kPaused | kThrottled | kClosed)) == 0;
  }

  static void queue_read(Reactor& r, Conn* c) {
    if (c->be.read_queued) return;
    c->be.read_queued = true;
    r.be_.readq.push_back(token_of(c));
  }

  static void queue_flush(Reactor& r, Conn* c) {
    if (c->be.flush_queued) return;
    c->be.flush_queued = true;
    r.be_.flushq.push_back(token_of(c));
  }

  // Waits for readability with a zero-byte WSARecv: no buffer is committed while the peer is idle.
  static void post_recv(Reactor& r, Conn* c) {
    if (!wants_read(c) || c->be.readable || (c->be.recv != nullptr && c->be.recv->inflight)) return;
    if (c->be.recv == nullptr) {
      c->be.recv = take_op(r, OpKind::Recv, token_of(c), c->fd);
      if (c->be.recv == nullptr) {
        r.fail_conn(c, err_nomem(), Syscall::Read);
        return;
      }
    }
    IoOp* op = c->be.recv;
    std::memset(&op->ov, 0, sizeof(op->ov));
    WSABUF buf;
    buf.len = 0;
    buf.buf = &g_zero_byte;
    DWORD got = 0, flags = 0;
    if (WSARecv(c->fd, &buf, 1, &got, &flags, &op->ov, nullptr) == 0) {
      if (c->be.skip) {  // readable now, and no packet will say so
        c->be.readable = true;
        queue_read(r, c);
      } else {
        link(r, op);
      }
      return;
    }
    const int e = WSAGetLastError();
    if (e == WSA_IO_PENDING) {
      link(r, op);
      return;
    }
    r.fail_conn(c, portable_error(e), Syscall::Read);
  }

  // The socket is readable: one non-blocking recv of up to kReadBudget into the batch arena.
  static void try_read(Reactor& r, Conn* c) {
    if (!wants_read(c)) return;         // paused/throttled: `readable` stays set for the resume
    if (!r.reading_allowed(c)) return;  // throttles it
    size_t room = 0;
    uint8_t* p = r.read_space(&room);
    if (p == nullptr) {
      r.fail_conn(c, err_nomem(), Syscall::Read);
      return;
    }
    const int want = static_cast<int>(room);
    const int n = recv(c->fd, reinterpret_cast<char*>(p), want, 0);
    if (n > 0) {
      r.on_read(c, static_cast<size_t>(n));
      if ((c->flags & kClosed) != 0) return;
      if (n == want) {  // the budget is spent and more may wait: the next turn reads on
        queue_read(r, c);
        return;
      }
      c->be.readable = false;
      post_recv(r, c);
      return;
    }
    if (n == 0) {
      c->be.readable = false;
      r.on_read(c, 0);  // EOF
      return;
    }
    const int e = WSAGetLastError();
    if (e == WSAEWOULDBLOCK) {
      c->be.readable = false;
      post_recv(r, c);
      return;
    }
    r.fail_conn(c, portable_error(e), Syscall::Read);
  }

  // Where an explicit bind is needed anyway (ConnectEx requires a bound socket).
  static int bind_for_connect(Reactor& r, SOCKET s, int family, const ConnectRequest& req, Syscall* sc) {
    Endpoint ep;
    if (req.local.is_set())
      ep = req.local;
    else
      ep.family = family == AF_INET6 ? 6 : 4;  // the any address, port 0
    sockaddr_storage ss;
    if (req.port_lo != 0 && ep.port == 0) {
      // localPortRange: Windows has no per-socket range, so pick ports in it here, round-robin.
      const uint32_t lo = req.port_lo;
      const uint32_t hi = req.port_hi >= req.port_lo ? req.port_hi : req.port_lo;
      const uint32_t span = hi - lo + 1;
      const uint32_t start = r.be_.port_cursor % span;
      for (uint32_t k = 0; k < span; k++) {
        ep.port = static_cast<uint16_t>(lo + (start + k) % span);
        const int len = to_sockaddr(ep, &ss);
        if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
          r.be_.port_cursor = start + k + 1;
          return 0;
        }
        const int e = WSAGetLastError();
        if (e != WSAEADDRINUSE && e != WSAEACCES) {
          *sc = Syscall::Bind;
          return portable_error(e);
        }
      }
      *sc = Syscall::Bind;
      return err_addrnotavail();  // every port of the range is taken, as on Linux
    }
    if (ep.port != 0) {
      // Take a port in TIME_WAIT again, as on Linux.
      const int err = set_int_opt(s, SOL_SOCKET, SO_REUSEADDR, 1);
      if (err != 0) {
        *sc = Syscall::Setsockopt;
        return err;
      }
    } else if (!req.local.is_set() || req.bind_no_port) {
      // Port 0: let the port be chosen at connect time per destination (shared across
      // destinations) instead of reserved per address at bind time; the Windows analogue of
      // IP_BIND_ADDRESS_NO_PORT, and what connect() without an explicit bind does by default.
      // SO_REUSE_UNICASTPORT is Windows 10+; SO_PORT_SCALABILITY the older form. Both failing
      // (older systems, some LSPs) only means a port per socket, as before: not an error.
      if (set_int_opt(s, SOL_SOCKET, SO_REUSE_UNICASTPORT, 1) != 0)
        (void)set_int_opt(s, SOL_SOCKET, SO_PORT_SCALABILITY, 1);
    }
    const int len = to_sockaddr(ep, &ss);
    if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      *sc = Syscall::Bind;
      return last_socket_error();
    }
    return 0;
  }

  static void recv_done(Reactor& r, Conn* c, IoOp* op) {
    if (!op_succeeded(op)) {
      DWORD n = 0;
      const int err = op_error(op, &n);
      if (err != 0) {
        r.fail_conn(c, err, Syscall::Read);
        return;
      }
    }
    c->be.readable = true;
    try_read(r, c);
  }

  static void send_done(Reactor& r, Conn* c, IoOp* op, DWORD bytes) {
    DWORD n = bytes;
    if (!op_succeeded(op)) {
      const int err = op_error(op, &n);
      if (err != 0) {
        r.fail_conn(c, err, Syscall::Write);
        return;
      }
    }
    r.on_write_progress(c, n);
    if ((c->flags & kClosed) != 0) return;
    r.backend_flush(c);
  }

  static void connect_done(Reactor& r, Conn* c, IoOp* op) {
    c->be.connect = nullptr;
    int err = 0;
    if (!op_succeeded(op)) {
      DWORD n = 0;
      err = op_error(op, &n);
    }
    put_op(r, op);
    if (err != 0) {
      r.on_connect_failed(c, err, Syscall::Connect);
      return;
    }
    // Makes getsockname/shutdown/getpeername work on a ConnectEx socket.
    if (setsockopt(c->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0) != 0) {
      r.on_connect_failed(c, last_socket_error(), Syscall::Setsockopt);
      return;
    }
    if (!socket_local_endpoint(c->fd, &c->local)) {
      r.on_connect_failed(c, last_socket_error(), Syscall::Getsockname);
      return;
    }
    r.on_connected(c);
  }

  // ---- listeners ----
  static uint32_t acceptor_of(Reactor& r, const Listener* l) { return l->id % r.engine()->threads(); }

  static bool load_accept_fns(Reactor& r, SOCKET s, int family, int* err) {
    const int fi = family_index(family);
    if (r.be_.acceptex[fi] != nullptr && r.be_.acceptex_addrs[fi] != nullptr) return true;
    void* accept_fn = load_extension(s, WSAID_ACCEPTEX, err);
    if (accept_fn == nullptr) return false;
    void* addrs_fn = load_extension(s, WSAID_GETACCEPTEXSOCKADDRS, err);
    if (addrs_fn == nullptr) return false;
    r.be_.acceptex[fi] = accept_fn;
    r.be_.acceptex_addrs[fi] = addrs_fn;
    return true;
  }

  // An accept error that is not the peer's doing (EMFILE, ENOBUFS...): reported once per retry
  // period per listener; this op tries again after kAcceptRetryMs, the others keep waiting.
  static void accept_failed(Reactor& r, AcceptOp* a, int err) {
    Listener* l = a->listener;
    if (r.now_ms_ >= l->be.quiet_until_ms) {
      r.on_accept_error(l, err);
      l->be.quiet_until_ms = r.now_ms_ + kAcceptRetryMs;
    }
    schedule_retry(r, a);
  }

  static void schedule_retry(Reactor& r, AcceptOp* a) {
    a->retry_at = r.now_ms_ + kAcceptRetryMs;
    r.be_.retry.push_back(a);
  }

  static void post_accept(Reactor& r, AcceptOp* a) {
    Listener* l = a->listener;
    auto accept_ex = reinterpret_cast<LPFN_ACCEPTEX>(r.be_.acceptex[family_index(a->family)]);
    for (int tries = 0; tries < kAcceptResetRetries; tries++) {
      a->accepted = new_socket(a->family);
      if (a->accepted == INVALID_SOCKET) {
        accept_failed(r, a, last_socket_error());  // EMFILE/ENOBUFS: keep serving, retry later
        return;
      }
      std::memset(&a->ov, 0, sizeof(a->ov));
      DWORD got = 0;
      // Zero-length receive: complete on the handshake, not on the client's first bytes.
      if (accept_ex(l->fd, a->accepted, a->addrs, 0, kAcceptAddrLen, kAcceptAddrLen, &got, &a->ov)) {
        link(r, a);  // listening sockets are not in skip mode: the packet comes
        return;
      }
      const int e = WSAGetLastError();
      if (e == WSA_IO_PENDING) {
        link(r, a);
        return;
      }
      close_socket(a->accepted);
      a->accepted = INVALID_SOCKET;
      if (e == WSAECONNRESET) continue;  // that connection died in the backlog: the next one
      accept_failed(r, a, portable_error(e));
      return;
    }
    schedule_retry(r, a);
  }

  // An accepted socket goes to the reactors in turn, this one included.
  static void dispatch(Reactor& r, SOCKET s, uint32_t owner, const SocketOptions& o, const Endpoint& local,
                       const Endpoint& remote) {
    const uint32_t n = r.engine()->threads();
    const uint32_t target = (r.index() + r.be_.next_adopter++) % n;
    Reactor* t = target == r.index() ? nullptr : r.engine()->reactor_at(target);
    Adopted* ad = t == nullptr ? nullptr : new (std::nothrow) Adopted{s, owner, o, local, remote};
    if (ad == nullptr) {
      r.on_accepted(owner, o, s, local, remote);
      return;
    }
    Command cmd{};
    cmd.type = CommandType::Adopt;
    cmd.ptr = ad;
    t->post(std::move(cmd));
  }

  static void accept_done(Reactor& r, AcceptOp* a) {
    Listener* l = a->listener;
    SOCKET s = a->accepted;
    a->accepted = INVALID_SOCKET;
    if (!op_succeeded(a)) {
      DWORD n = 0;
      const int err = op_error(a, &n);
      close_socket(s);
      if (err == 0 || accept_error_is_transient(err))
        post_accept(r, a);
      else
        accept_failed(r, a, err);
      return;
    }
    // Makes getsockname/getpeername/shutdown work on the accepted socket. Failing means the
    // connection is already gone: drop it quietly, as Linux drops one whose getsockname fails.
    if (setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&l->fd), sizeof(l->fd)) !=
        0) {
      close_socket(s);
      post_accept(r, a);
      return;
    }
    auto addrs_fn = reinterpret_cast<LPFN_GETACCEPTEXSOCKADDRS>(r.be_.acceptex_addrs[family_index(a->family)]);
    sockaddr* la = nullptr;
    sockaddr* ra = nullptr;
    int llen = 0, rlen = 0;
    addrs_fn(a->addrs, 0, kAcceptAddrLen, kAcceptAddrLen, &la, &llen, &ra, &rlen);
    Endpoint local, remote;
    const bool ok = la != nullptr && ra != nullptr && from_sockaddr(la, &local) && from_sockaddr(ra, &remote);
    const uint32_t owner = l->opts.owner;
    const SocketOptions opts = l->opts.conn;
    post_accept(r, a);  // the batch stays posted; `a` is reused from here on
    if (!ok) {
      close_socket(s);
      return;
    }
    dispatch(r, s, owner, opts, local, remote);
  }

  // ---- completions ----
  static void complete(Reactor& r, IoOp* op, DWORD bytes) {
    unlink(r, op);
    if (op->orphan) {
      discard(r, op);
      return;
    }
    if (op->kind == OpKind::Accept) {
      accept_done(r, static_cast<AcceptOp*>(op));
      return;
    }
    Conn* c = conn_of(r, op->token);
    IoOp* current = c == nullptr                    ? nullptr
                    : op->kind == OpKind::Recv ? c->be.recv
                    : op->kind == OpKind::Send ? c->be.send
                                               : c->be.connect;
    if (current != op) {  // cannot happen: a closing connection orphans its ops
      discard(r, op);
      return;
    }
    switch (op->kind) {
      case OpKind::Recv: recv_done(r, c, op); break;
      case OpKind::Send: send_done(r, c, op, bytes); break;
      case OpKind::Connect: connect_done(r, c, op); break;
      case OpKind::Accept: break;
    }
  }

  static void run_queues(Reactor& r) {
    // Synchronous completions (skip-on-success), then connections with bytes left to read or
    // write after their budget, in arrival order. What these queue again waits for the next turn.
    if (!r.be_.done.empty()) {
      std::vector<IoOp*> done;
      done.swap(r.be_.done);
      for (IoOp* op : done) complete(r, op, static_cast<DWORD>(op->ov.InternalHigh));
    }
    const size_t nr = r.be_.readq.size();
    for (size_t i = 0; i < nr; i++) {
      Conn* c = conn_of(r, r.be_.readq[i]);
      if (c == nullptr || !c->be.read_queued) continue;
      c->be.read_queued = false;
      if (c->be.readable) try_read(r, c);
    }
    r.be_.readq.erase(r.be_.readq.begin(), r.be_.readq.begin() + static_cast<std::ptrdiff_t>(nr));
    const size_t nf = r.be_.flushq.size();
    for (size_t i = 0; i < nf; i++) {
      Conn* c = conn_of(r, r.be_.flushq[i]);
      if (c == nullptr || !c->be.flush_queued) continue;
      c->be.flush_queued = false;
      r.backend_flush(c);
    }
    r.be_.flushq.erase(r.be_.flushq.begin(), r.be_.flushq.begin() + static_cast<std::ptrdiff_t>(nf));
    for (size_t i = 0; i < r.be_.retry.size();) {
      AcceptOp* a = r.be_.retry[i];
      if (a->retry_at <= r.now_ms_) {
        r.be_.retry[i] = r.be_.retry.back();
        r.be_.retry.pop_back();
        post_accept(r, a);
      } else {
        i++;
      }
    }
  }
};

int Reactor::backend_init() {
  WSADATA wsa;
  const int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
  if (rc != 0) return portable_error(rc);
  be_.wsa_started = true;
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (port == nullptr) {
    const int err = portable_error(static_cast<int>(GetLastError()));
    WSACleanup();
    be_.wsa_started = false;
    return err;
  }
  be_.port.store(port, std::memory_order_release);
  be_.skip_ok = all_tcp_providers_ifs();
  return 0;
}

void Reactor::backend_destroy() {
  HANDLE port = static_cast<HANDLE>(be_.port.exchange(nullptr, std::memory_order_acq_rel));
  // Synchronous completions never reach the port: settle them first.
  for (IoOp* op : be_.done) IocpAccess::discard(*this, op);
  be_.done.clear();
  if (port != nullptr) {
    // Connection sockets are closed by now (their ops complete as cancelled); listening sockets
    // may still be open: cancel their AcceptEx calls. ERROR_NOT_FOUND means the op completed
    // and its packet is queued; either way a packet comes.
    for (IoOp* op = be_.inflight; op != nullptr; op = op->next) {
      if (!op->orphan) (void)CancelIoEx(reinterpret_cast<HANDLE>(op->sock), &op->ov);
      op->orphan = true;
    }
    const uint64_t deadline = now_ms() + kShutdownDrainMs;
    while (be_.inflight != nullptr && now_ms() < deadline) {
      OVERLAPPED_ENTRY ents[64];
      ULONG n = 0;
      if (!GetQueuedCompletionStatusEx(port, ents, 64, &n, 50, FALSE)) continue;  // WAIT_TIMEOUT
      for (ULONG i = 0; i < n; i++)
        if (ents[i].lpOverlapped != nullptr) IocpAccess::discard(*this, op_of(ents[i].lpOverlapped));
    }
    // Ops still out after the drain are leaked on purpose: the kernel may yet write to them.
    be_.inflight = nullptr;
    be_.inflight_count = 0;
    (void)CloseHandle(port);  // cannot fail for the handle CreateIoCompletionPort gave
  }
  for (AcceptOp* a : be_.retry) {  // waiting to be posted again: not in the kernel
    close_socket(a->accepted);
    delete a;
  }
  be_.retry.clear();
  for (IoOp* op : be_.pool) delete op;
  be_.pool.clear();
  be_.readq.clear();
  be_.flushq.clear();
  if (be_.wsa_started) {
    WSACleanup();
    be_.wsa_started = false;
  }
}

void Reactor::backend_wake() {
  HANDLE port = static_cast<HANDLE>(be_.port.load(std::memory_order_acquire));
  // Fails only for a port already closed (reactor stopped) or with no memory for the packet;
  // then the reactor still wakes for its next timer or completion.
  if (port != nullptr) (void)PostQueuedCompletionStatus(port, 0, make_token(TokenKind::Wake, 0, 0), nullptr);
}

void Reactor::backend_poll(int timeout_ms) {
  if (!be_.readq.empty() || !be_.flushq.empty() || !be_.done.empty()) {
    timeout_ms = 0;
  } else {
    for (AcceptOp* a : be_.retry) {
      const int wait = a->retry_at > now_ms_ ? static_cast<int>(a->retry_at - now_ms_) : 0;
      if (timeout_ms < 0 || wait < timeout_ms) timeout_ms = wait;
    }
  }
  HANDLE port = static_cast<HANDLE>(be_.port.load(std::memory_order_relaxed));
  OVERLAPPED_ENTRY ents[kMaxEventsPerWait];
  ULONG n = 0;
  // Fails with WAIT_TIMEOUT when nothing came; nothing else can fail for a valid port and array.
  if (!GetQueuedCompletionStatusEx(port, ents, kMaxEventsPerWait, &n,
                                   timeout_ms < 0 ? INFINITE : static_cast<DWORD>(timeout_ms), FALSE))
    n = 0;
  now_ms_ = now_ms();
  for (ULONG i = 0; i < n; i++) {
    if (ents[i].lpOverlapped == nullptr) continue;  // backend_wake()
    IocpAccess::complete(*this, op_of(ents[i].lpOverlapped), ents[i].dwNumberOfBytesTransferred);
  }
  IocpAccess::run_queues(*this);
}

int Reactor::backend_listen(Listener* l, Syscall* failed) {
  ListenRequest& o = l->opts;
  if (o.reuse_port) {
    // Windows has no load-balancing SO_REUSEPORT; SO_REUSEADDR there means something else.
    *failed = Syscall::Setsockopt;
    return portable_error(WSAEOPNOTSUPP);  // ENOTSUP
  }
  const int family = o.local.family == 6 ? AF_INET6 : AF_INET;
  SOCKET s = new_socket(family);
  if (s == INVALID_SOCKET) {
    *failed = Syscall::Socket;
    return last_socket_error();
  }
  // Windows' SO_REUSEADDR lets another socket bind a port that is in use and take over its
  // connections, so listeners are exclusive unless reuseAddress was asked for.
  int err = set_int_opt(s, SOL_SOCKET, o.reuse_address ? SO_REUSEADDR : SO_EXCLUSIVEADDRUSE, 1);
  if (err == 0 && family == AF_INET6) err = set_int_opt(s, IPPROTO_IPV6, IPV6_V6ONLY, o.ipv6_only ? 1 : 0);
  if (err != 0) {
    *failed = Syscall::Setsockopt;
    close_socket(s);
    return err;
  }
  // Winsock caps a plain backlog at 200; SOMAXCONN_HINT asks for up to 65535.
  int backlog = o.backlog;
  if (backlog <= 0)
    backlog = SOMAXCONN;
  else if (backlog > 200)
    backlog = SOMAXCONN_HINT(backlog < 65535 ? backlog : 65535);
  sockaddr_storage ss;
  const int len = to_sockaddr(o.local, &ss);
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    err = last_socket_error();
    *failed = Syscall::Bind;
  } else if (listen(s, backlog) != 0) {
    err = last_socket_error();
    *failed = Syscall::Listen;
  } else if (!socket_local_endpoint(s, &o.local)) {
    err = last_socket_error();
    *failed = Syscall::Getsockname;
  }
  if (err != 0) {
    close_socket(s);
    return err;
  }
  l->fd = s;
  return 0;
}

void Reactor::backend_attach(Listener* l, uint32_t idx) {
  // A socket belongs to one completion port: one reactor (the acceptor) runs AcceptEx on it.
  if (IocpAccess::acceptor_of(*this, l) != index_) return;
  l->be.idx = idx;
  const int family = l->opts.local.family == 6 ? AF_INET6 : AF_INET;
  int err = 0;
  if (!IocpAccess::load_accept_fns(*this, l->fd, family, &err)) {
    on_accept_error(l, err);
    return;
  }
  if (!l->be.associated) {
    HANDLE port = static_cast<HANDLE>(be_.port.load(std::memory_order_relaxed));
    if (CreateIoCompletionPort(reinterpret_cast<HANDLE>(l->fd), port,
                               static_cast<ULONG_PTR>(make_token(TokenKind::Listener, idx, 0)), 0) == nullptr) {
      on_accept_error(l, portable_error(static_cast<int>(GetLastError())));
      return;
    }
    l->be.associated = true;
  }
  uint32_t batch = l->opts.accept_batch;
  if (batch < 1) batch = 1;
  if (batch > kMaxAcceptBatch) batch = kMaxAcceptBatch;
  for (uint32_t k = 0; k < batch; k++) {
    auto* a = new (std::nothrow) AcceptOp();
    if (a == nullptr) {
      on_accept_error(l, err_nomem());
      break;
    }
    a->kind = OpKind::Accept;
    a->token = make_token(TokenKind::Listener, idx, 0);
    a->sock = l->fd;
    a->listener = l;
    a->family = family;
    l->be.ops.push_back(a);
    IocpAccess::post_accept(*this, a);
  }
}

void Reactor::backend_hold_accepts(bool) {
  // AcceptEx calls stay posted: their completions queue on the port and arrive in one batch.
}

void Reactor::backend_detach(Listener* l) {
  if (IocpAccess::acceptor_of(*this, l) != index_) return;
  for (AcceptOp* a : l->be.ops) {
    bool waiting = false;
    for (size_t i = 0; i < be_.retry.size(); i++)
      if (be_.retry[i] == a) {
        be_.retry[i] = be_.retry.back();
        be_.retry.pop_back();
        waiting = true;
        break;
      }
    if (a->inflight && !waiting) {
      // Its completion (cancelled, or an accepted socket to close) frees it. ERROR_NOT_FOUND:
      // already completed, the packet is queued.
      a->orphan = true;
      (void)CancelIoEx(reinterpret_cast<HANDLE>(l->fd), &a->ov);
    } else {
      close_socket(a->accepted);
      delete a;
    }
  }
  l->be.ops.clear();
}

void Reactor::backend_connect(ConnectRequest* req, uint64_t request_id) {
  const int family = req->remote.family == 6 ? AF_INET6 : AF_INET;
  SOCKET s = new_socket(family);
  if (s == INVALID_SOCKET) {
    on_dial_failed(*req, request_id, last_socket_error(), Syscall::Socket);
    return;
  }
  Conn* c = alloc_conn(s);
  if (c == nullptr) {
    close_socket(s);
    on_dial_failed(*req, request_id, err_nobufs(), Syscall::Socket);
    return;
  }
  c->request_id = request_id;
  c->source_tag = req->source_tag;
  c->flags |= kConnecting;
  c->owner = req->owner;
  c->remote = req->remote;
  c->timeout_ms = req->conn.idle_timeout_ms;  // armed once connected
  c->max_buffered = req->conn.max_buffered;
  c->slow_policy = req->conn.slow_policy;

  int err = 0;
  Syscall sc = Syscall::Setsockopt;
  if (req->conn.nodelay) err = set_int_opt(s, IPPROTO_TCP, TCP_NODELAY, 1);
  if (err == 0 && req->conn.keepalive) err = set_keepalive(s, true, req->conn.keepalive_delay_ms);
  if (err == 0) err = IocpAccess::bind_for_connect(*this, s, family, *req, &sc);
  if (err != 0) {
    on_connect_failed(c, err, sc);
    return;
  }
  if (is_loopback(req->remote)) fast_loopback_refusal(s);
  if (!IocpAccess::associate(*this, c)) return;  // reported as a failed connect
  void* fn = be_.connectex[family_index(family)];
  if (fn == nullptr) {
    fn = load_extension(s, WSAID_CONNECTEX, &err);
    if (fn == nullptr) {
      on_connect_failed(c, err, Syscall::Connect);
      return;
    }
    be_.connectex[family_index(family)] = fn;
  }
  IoOp* op = IocpAccess::take_op(*this, OpKind::Connect, token_of(c), s);
  if (op == nullptr) {
    on_connect_failed(c, err_nomem(), Syscall::Connect);
    return;
  }
  c->be.connect = op;
  sockaddr_storage ss;
  const int len = to_sockaddr(req->remote, &ss);
  std::memset(&op->ov, 0, sizeof(op->ov));
  DWORD sent = 0;
  if (reinterpret_cast<LPFN_CONNECTEX>(fn)(s, reinterpret_cast<sockaddr*>(&ss), len, nullptr, 0, &sent, &op->ov)) {
    IocpAccess::link(*this, op);
    if (c->be.skip) {  // done already, and no packet comes: finish it on this wake-up
      op->ov.Internal = 0;
      op->ov.InternalHigh = 0;
      be_.done.push_back(op);
    }
  } else {
    const int e = WSAGetLastError();
    if (e != WSA_IO_PENDING) {
      on_connect_failed(c, portable_error(e), Syscall::Connect);
      return;
    }
    IocpAccess::link(*this, op);
  }
  if (req->timeout_ms != 0) arm_connect_timer(c, req->timeout_ms);
}

void Reactor::backend_flush(Conn* c) {
  if ((c->flags & (kClosed | kConnecting)) != 0 || c->fd == kInvalidSock) return;
  if (c->be.send != nullptr && c->be.send->inflight) return;  // one WSASend at a time
  if (!IocpAccess::associate(*this, c)) return;
  size_t budget = kWriteBudget;
  while (!c->wq.empty()) {
    if (budget == 0) {  // the rest on the next turn
      IocpAccess::queue_flush(*this, c);
      return;
    }
    WSABUF bufs[kMaxBufs];
    const int n = c->wq.gather(bufs, kMaxBufs, [](WSABUF* b, const uint8_t* p, size_t len) {
      b->buf = reinterpret_cast<char*>(const_cast<uint8_t*>(p));
      b->len = static_cast<ULONG>(len);
    });
    // One send carries at most the budget: the kernel pins the pages of a pending send.
    size_t want = 0;
    int used = 0;
    for (; used < n && want < budget; used++) {
      if (bufs[used].len > budget - want) bufs[used].len = static_cast<ULONG>(budget - want);
      want += bufs[used].len;
    }
    if (want == 0) break;  // empty writes never reach the queue
    if (c->be.send == nullptr) {
      c->be.send = IocpAccess::take_op(*this, OpKind::Send, token_of(c), c->fd);
      if (c->be.send == nullptr) {
        fail_conn(c, err_nomem(), Syscall::Write);
        return;
      }
    }
    IoOp* op = c->be.send;
    std::memset(&op->ov, 0, sizeof(op->ov));
    DWORD sent = 0;
    // The buffers are the queue's chunks: they stay put until on_write_progress consumes them.
    if (WSASend(c->fd, bufs, static_cast<DWORD>(used), &sent, 0, &op->ov, nullptr) == 0) {
      if (c->be.skip) {  // done, and no packet comes
        on_write_progress(c, sent);
        if ((c->flags & kClosed) != 0) return;
        if (sent == 0) {
          IocpAccess::queue_flush(*this, c);
          return;
        }
        budget = budget > sent ? budget - sent : 0;
        continue;
      }
      c->be.send_bytes = static_cast<uint32_t>(want);
      IocpAccess::link(*this, op);
      return;
    }
    const int e = WSAGetLastError();
    if (e == WSA_IO_PENDING) {
      c->be.send_bytes = static_cast<uint32_t>(want);
      IocpAccess::link(*this, op);
      return;
    }
    fail_conn(c, portable_error(e), Syscall::Write);
    return;
  }
}

void Reactor::backend_update_interest(Conn* c) {
  if ((c->flags & kClosed) != 0 || c->fd == kInvalidSock) return;
  if (!IocpAccess::associate(*this, c)) return;
  if (!IocpAccess::wants_read(c)) return;  // a zero-byte read in flight may stay: it holds nothing
  if (c->be.readable)
    IocpAccess::queue_read(*this, c);
  else
    IocpAccess::post_recv(*this, c);
}

void Reactor::backend_shutdown_write(Conn* c) {
  if (shutdown(c->fd, SD_SEND) != 0) {
    const int e = WSAGetLastError();
    if (e == WSAENOTCONN)
      close_conn(c, false);  // the peer is already gone: nothing left to shut down
    else
      fail_conn(c, portable_error(e), Syscall::Shutdown);
  }
}

void Reactor::backend_close(Conn* c) {
  // closesocket cancels the socket's pending ops; their completions come back orphaned. The
  // slot forgets the socket first (see Engine::endpoints).
  const sock_t s = c->fd;
  publish_fd(c, kInvalidSock);
  close_socket(s);
  IocpAccess::release_conn_op(*this, c->be.recv, nullptr);
  IocpAccess::release_conn_op(*this, c->be.send, &c->wq);
  IocpAccess::release_conn_op(*this, c->be.connect, nullptr);
  c->be = BackendConn();
}

void Reactor::backend_set_nodelay(Conn* c, bool on) {
  const int err = set_int_opt(c->fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
  if (err != 0) fail_conn(c, err, Syscall::Setsockopt);
}

void Reactor::backend_set_keepalive(Conn* c, bool on, uint32_t delay_ms) {
  const int err = set_keepalive(c->fd, on, delay_ms);
  if (err != 0) fail_conn(c, err, Syscall::Setsockopt);
}

}  // namespace myriad
