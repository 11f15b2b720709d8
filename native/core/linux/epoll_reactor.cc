// epoll_reactor.cc - the Linux backend: epoll (connections edge-triggered, registered once;
// listeners level-triggered with EPOLLEXCLUSIVE), non-blocking sockets, accept4 in batches,
// sendmsg with gathered buffers and MSG_NOSIGNAL. Implements the [backend] methods of
// reactor.h; all state-machine decisions stay in reactor.cc.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "../engine.h"
#include "../errors.h"
#include "../reactor.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif

namespace myriad {

namespace {
constexpr uint64_t kAcceptRetryMs = 100;
constexpr int kMaxIov = 64;

int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : -errno;
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
  return -err;
}


bool accept_error_is_transient(int e) {
  // The connection died in the backlog, or a protocol error on one connection: try the next.
  return e == ECONNABORTED || e == EPROTO || e == EPERM || e == ENETDOWN || e == ENOPROTOOPT ||
         e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH;
}
}  // namespace

bool socket_local_endpoint(sock_t fd, Endpoint* out) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  return from_sockaddr(reinterpret_cast<sockaddr*>(&ss), out);
}

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

void close_socket(sock_t s) {
  // Linux releases the descriptor even when close() reports EINTR: never retry.
  if (s >= 0) (void)close(s);
}

// What the connection handling shares between an epoll event and a pass of the ready list.
class EpollAccess {
 public:
  static bool reading_on(const Conn* c) {
    return (c->flags & (kConnecting | kReadEof | kPaused | kThrottled)) == 0;
  }

  // Queues c for the next pass if it has work it could do now: input waiting with reading on,
  // or queued data with a socket that takes it.
  static void schedule(Reactor& r, Conn* c) {
    if (c->be.queued || (c->flags & kClosed) != 0) return;
    if ((c->be.readable && reading_on(c)) || (c->be.writable && !c->wq.empty())) {
      c->be.queued = true;
      r.be_.ready.push_back(make_token(TokenKind::Conn, c->slot, c->gen));
    }
  }

  // One turn of an established connection: at most one read (kReadBudget), then a flush if the
  // socket takes writes; what is left waits for the next pass (schedule).
  static void serve(Reactor& r, Conn* c) {
    if (c->be.readable && reading_on(c) && r.reading_allowed(c)) {
      size_t room = 0;
      uint8_t* p = r.read_space(&room);
      if (p == nullptr) {
        r.fail_conn(c, err_nomem(), Syscall::Read);
        return;
      }
      const ssize_t n = recv(c->fd, p, room, 0);
      if (n >= 0) {
        // Less than asked for: the socket is empty now, and new input will be a new edge. A FIN
        // that came with the data is not: recv() returns the data first, and 0 only next time.
        // Nor is data behind an urgent mark (MSG_OOB), where recv() stops short: read on until
        // EAGAIN says empty.
        if (n == 0 || (static_cast<size_t>(n) < room && !c->be.hup && !c->be.urgent)) c->be.readable = false;
        r.on_read(c, static_cast<size_t>(n));
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->be.readable = false;
        c->be.urgent = false;
      } else if (errno != EINTR) {
        r.fail_conn(c, -errno, Syscall::Read);
        return;
      }
      if ((c->flags & kClosed) != 0) return;
    }
    if (c->be.writable && !c->wq.empty()) {
      r.backend_flush(c);  // schedules what its budget left
      return;
    }
    schedule(r, c);
  }

  static Conn* live(Reactor& r, uint64_t token) {
    Conn* c = r.slot(token_slot(token));
    if (c == nullptr || (c->gen & 0xffffffu) != token_gen(token) || (c->flags & kLive) == 0) return nullptr;
    return c;
  }
};

int Reactor::backend_init() {
  be_.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (be_.epfd < 0) return -errno;
  be_.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (be_.wakefd < 0) {
    int err = -errno;
    close_socket(be_.epfd);
    be_.epfd = -1;
    return err;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = make_token(TokenKind::Wake, 0, 0);
  if (epoll_ctl(be_.epfd, EPOLL_CTL_ADD, be_.wakefd, &ev) != 0) {
    int err = -errno;
    backend_destroy();
    return err;
  }
  return 0;
}

void Reactor::backend_destroy() {
  close_socket(be_.wakefd);
  close_socket(be_.epfd);
  be_.wakefd = be_.epfd = -1;
}

void Reactor::backend_wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the reactor will wake anyway.
  while (write(be_.wakefd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void Reactor::backend_poll(int timeout_ms) {
  // Paused listeners come back when their time is up.
  for (size_t i = 0; i < be_.paused.size();) {
    auto& p = be_.paused[i];
    if (p.resume_ms <= now_ms_) {
      if (listener_at(p.idx) == p.listener) backend_attach(p.listener, p.idx);
      be_.paused[i] = be_.paused.back();
      be_.paused.pop_back();
    } else {
      const int wait = static_cast<int>(p.resume_ms - now_ms_);
      if (timeout_ms < 0 || wait < timeout_ms) timeout_ms = wait;
      i++;
    }
  }

  // Connections left with work wait for no event: look, serve what came, then serve them.
  be_.pass.clear();
  be_.pass.swap(be_.ready);
  if (!be_.pass.empty()) timeout_ms = 0;

  epoll_event evs[kMaxEventsPerWait];
  const int n = epoll_wait(be_.epfd, evs, kMaxEventsPerWait, timeout_ms);
  now_ms_ = now_ms();
  // n < 0: EINTR; nothing else can fail on a valid epoll fd and buffer.
  for (int i = 0; i < n; i++) {
    const uint64_t token = evs[i].data.u64;
    const uint32_t mask = evs[i].events;
    switch (token_kind(token)) {
      case TokenKind::Wake: {
        uint64_t count;
        while (read(be_.wakefd, &count, sizeof(count)) < 0 && errno == EINTR) {
        }
        break;
      }
      case TokenKind::Listener: {
        Listener* l = listener_at(token_slot(token));
        if (l == nullptr) break;
        const uint32_t batch = l->opts.accept_batch;
        uint32_t k = 0;
        for (; k < batch; k++) {
          sockaddr_storage ss;
          socklen_t len = sizeof(ss);
          int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            const int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) break;
            if (e == EINTR || accept_error_is_transient(e)) continue;
            on_accept_error(l, -e);
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
              backend_detach(l);
              be_.paused.push_back(BackendReactor::Paused{l, token_slot(token), now_ms_ + kAcceptRetryMs});
            }
            break;
          }
          Endpoint remote, local = l->opts.local;
          from_sockaddr(reinterpret_cast<sockaddr*>(&ss), &remote);
          if (local.is_any() && !socket_local_endpoint(fd, &local)) {
            // getsockname fails only when the connection is already gone: drop it.
            close_socket(fd);
            continue;
          }
          on_accepted(l->opts.owner, l->be.accepted, fd, local, remote);
        }
        if (k == batch) more_accepts_ = true;  // stopped at the cap, not at EAGAIN
        break;
      }
      case TokenKind::Conn: {
        Conn* c = EpollAccess::live(*this, token);
        if (c == nullptr) break;
        if ((mask & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) c->be.readable = true;
        if ((mask & EPOLLOUT) != 0) c->be.writable = true;
        if ((mask & (EPOLLRDHUP | EPOLLHUP)) != 0) c->be.hup = true;
        if ((mask & EPOLLPRI) != 0) c->be.urgent = true;
        if ((c->flags & kConnecting) != 0) {
          if ((mask & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) break;
          // A failed connect always sets the socket's error, which epoll reports as EPOLLERR:
          // EPOLLOUT alone means the handshake is done, and saves a getsockopt per connect.
          const int err = (mask & (EPOLLERR | EPOLLHUP)) != 0 ? socket_error(c->fd) : 0;
          // The local endpoint is asked for here only when the self-connect check needs it:
          // the address is the kernel's choice, or the same as the destination's with the port
          // the kernel's. Otherwise its port is read when JS first asks (Engine::endpoints):
          // a getsockname per connect saved where a storm runs tens of thousands a second.
          const bool lookup = !c->local.is_set() || c->local.is_any() ||
                              (c->local.port == 0 && c->local.same_address(c->remote));
          if (err != 0) {
            on_connect_failed(c, err, Syscall::Connect);
          } else if (lookup && !socket_local_endpoint(c->fd, &c->local)) {
            on_connect_failed(c, -errno, Syscall::Getsockname);
          } else {
            c->be.writable = true;  // connected: the socket takes writes
            on_connected(c);        // schedules a turn if data or writes already wait
          }
          break;
        }
        if ((mask & EPOLLERR) != 0) {
          const int err = socket_error(c->fd);
          if (err != 0) {
            fail_conn(c, err, (c->wq.empty() ? Syscall::Read : Syscall::Write));
            break;
          }
        }
        if (!c->be.queued) EpollAccess::serve(*this, c);  // else its turn in the pass comes
        break;
      }
    }
  }

  for (uint64_t token : be_.pass) {
    Conn* c = EpollAccess::live(*this, token);
    if (c == nullptr || !c->be.queued) continue;
    c->be.queued = false;
    EpollAccess::serve(*this, c);
  }
}

int Reactor::backend_listen(Listener* l, Syscall* failed) {
  ListenRequest& o = l->opts;
  const int family = o.local.family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failed = Syscall::Socket;
    return -errno;
  }
  int err = 0;
  if (o.reuse_address) err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (err == 0 && o.reuse_port) err = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (err == 0 && family == AF_INET6) err = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, o.ipv6_only ? 1 : 0);
  if (err != 0) {
    *failed = Syscall::Setsockopt;
    close_socket(fd);
    return err;
  }
  // Accepted sockets inherit TCP_NODELAY, SO_KEEPALIVE and TCP_KEEPIDLE from the listener
  // (the kernel clones the listener's socket): set once here, not once per accepted socket.
  // Should the listener refuse one, accepted sockets get it one by one as before.
  l->be.accepted = o.conn;
  if (o.conn.nodelay && set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1) == 0) l->be.accepted.nodelay = false;
  if (o.conn.keepalive && set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1) == 0 &&
      (o.conn.keepalive_delay_ms < 1000 ||
       set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(o.conn.keepalive_delay_ms / 1000)) == 0))
    l->be.accepted.keepalive = false;
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(o.local, &ss);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    err = -errno;
    *failed = Syscall::Bind;
  } else if (listen(fd, o.backlog) != 0) {
    err = -errno;
    *failed = Syscall::Listen;
  } else if (!socket_local_endpoint(fd, &o.local)) {
    err = -errno;
    *failed = Syscall::Getsockname;
  }
  if (err != 0) {
    close_socket(fd);
    return err;
  }
  l->fd = fd;
  return 0;
}

void Reactor::backend_attach(Listener* l, uint32_t idx) {
  epoll_event ev{};
  // EPOLLEXCLUSIVE: one reactor wakes per incoming connection, not all of them.
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u64 = make_token(TokenKind::Listener, idx, 0);
  if (epoll_ctl(be_.epfd, EPOLL_CTL_ADD, l->fd, &ev) != 0) on_accept_error(l, -errno);
}

void Reactor::backend_detach(Listener* l) {
  // ENOENT: it was paused or held (already out of the set). Nothing else can fail for a valid fd.
  (void)epoll_ctl(be_.epfd, EPOLL_CTL_DEL, l->fd, nullptr);
  for (size_t i = 0; i < be_.paused.size(); i++)
    if (be_.paused[i].listener == l) {
      be_.paused[i] = be_.paused.back();
      be_.paused.pop_back();
      break;
    }
  for (size_t i = 0; i < be_.held.size(); i++)
    if (be_.held[i].listener == l) {
      be_.held[i] = be_.held.back();
      be_.held.pop_back();
      break;
    }
}

void Reactor::backend_hold_accepts(bool hold) {
  if (!hold) {
    for (const BackendReactor::Held& h : be_.held)
      if (listener_at(h.idx) == h.listener) backend_attach(h.listener, h.idx);
    be_.held.clear();
    return;
  }
  for (uint32_t idx = 0; idx < listeners_.size(); idx++) {
    Listener* l = listeners_[idx];
    if (l == nullptr) continue;
    bool paused = false;
    for (const BackendReactor::Paused& p : be_.paused) paused = paused || p.listener == l;
    // ENOENT (not in the set) is the only failure for a valid fd: then there is nothing to hold.
    if (!paused && epoll_ctl(be_.epfd, EPOLL_CTL_DEL, l->fd, nullptr) == 0)
      be_.held.push_back(BackendReactor::Held{l, idx});
  }
}

void Reactor::backend_connect(ConnectRequest* req, uint64_t request_id) {
  const int family = req->remote.family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    on_dial_failed(*req, request_id, -errno, Syscall::Socket);
    return;
  }
  Conn* c = alloc_conn(fd);
  if (c == nullptr) {
    close_socket(fd);
    on_dial_failed(*req, request_id, err_nobufs(), Syscall::Socket);
    return;
  }
  c->request_id = request_id;
  c->source_tag = req->source_tag;
  c->flags |= kConnecting;
  c->owner = req->owner;
  c->remote = req->remote;
  c->local = req->local;  // the bound address, port 0 until known (see connect completion)
  c->timeout_ms = req->conn.idle_timeout_ms;  // armed once connected
  c->max_buffered = req->conn.max_buffered;
  c->slow_policy = req->conn.slow_policy;

  int err = 0;
  Syscall sc = Syscall::Setsockopt;
  if (req->local.is_set()) {
    if (req->local.port != 0)
      err = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);  // take a port in TIME_WAIT again
    else if (req->bind_no_port)
      err = set_int_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);  // port picked per 4-tuple
  }
  if (err == 0 && req->port_lo != 0)
    err = set_int_opt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE,
                      static_cast<int>((static_cast<uint32_t>(req->port_hi) << 16) | req->port_lo));
  if (err == 0 && req->conn.nodelay) err = set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  if (err == 0 && req->conn.keepalive) {
    err = set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (err == 0 && req->conn.keepalive_delay_ms >= 1000)
      err = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(req->conn.keepalive_delay_ms / 1000));
  }
  if (err == 0 && req->local.is_set()) {
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(req->local, &ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      err = -errno;
      sc = Syscall::Bind;
    }
  }
  if (err == 0) {
    sockaddr_storage ss;
    socklen_t len = to_sockaddr(req->remote, &ss);
    sc = Syscall::Connect;
    if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) err = -errno;
  }
  if (err != 0) {
    on_connect_failed(c, err, sc);
    return;
  }
  if (req->timeout_ms != 0) arm_connect_timer(c, req->timeout_ms);
  backend_update_interest(c);  // EPOLLOUT tells when the handshake is done
}

void Reactor::backend_flush(Conn* c) {
  if (!c->be.writable) return;  // the buffer was full: EPOLLOUT's edge brings the next turn
  size_t budget = kWriteBudget;
  while (!c->wq.empty() && budget > 0) {
    iovec iov[kMaxIov];
    const int n = c->wq.gather(iov, kMaxIov, [](iovec* v, const uint8_t* p, size_t len) {
      v->iov_base = const_cast<uint8_t*>(p);
      v->iov_len = len;
    });
    size_t want = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    const ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->be.writable = false;
        break;
      }
      fail_conn(c, -errno, Syscall::Write);
      return;
    }
    on_write_progress(c, static_cast<size_t>(w));
    if ((c->flags & kClosed) != 0) return;
    if (static_cast<size_t>(w) < want) {
      c->be.writable = false;  // the socket buffer is full: EPOLLOUT comes when it has room
      break;
    }
    budget = budget > static_cast<size_t>(w) ? budget - static_cast<size_t>(w) : 0;
  }
  EpollAccess::schedule(*this, c);  // the budget ran out with data left: the next pass goes on
}

void Reactor::backend_update_interest(Conn* c) {
  if ((c->flags & kClosed) != 0 || c->fd < 0) return;
  if (c->be.registered) {
    // Reading or writing may have just become possible (connected, resumed, caught up).
    EpollAccess::schedule(*this, c);
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = make_token(TokenKind::Conn, c->slot, c->gen);
  if (epoll_ctl(be_.epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    fail_conn(c, -errno, Syscall::EpollCtl);
    return;
  }
  // What is ready already is reported by the next epoll_wait. An accepted socket can take
  // writes at once (a full buffer would say so with EAGAIN, and epoll with an edge later).
  c->be.registered = true;
  c->be.writable = (c->flags & kConnecting) == 0;
}

void Reactor::backend_shutdown_write(Conn* c) {
  if (shutdown(c->fd, SHUT_WR) != 0) {
    if (errno == ENOTCONN)
      close_conn(c, false);  // the peer is already gone: nothing left to shut down
    else
      fail_conn(c, -errno, Syscall::Shutdown);
  }
}

void Reactor::backend_close(Conn* c) {
  // close() also takes the descriptor out of the epoll set (we never dup sockets). The slot
  // forgets the descriptor first: Engine::endpoints trusts a getsockname only if fd is unchanged.
  const sock_t fd = c->fd;
  publish_fd(c, kInvalidSock);
  close_socket(fd);
  c->be = BackendConn{};  // a token still on the ready list fails the generation check
}

void Reactor::backend_set_nodelay(Conn* c, bool on) {
  int err = set_int_opt(c->fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
  if (err != 0) fail_conn(c, err, Syscall::Setsockopt);
}

void Reactor::backend_set_keepalive(Conn* c, bool on, uint32_t delay_ms) {
  int err = set_int_opt(c->fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (err == 0 && on && delay_ms >= 1000)
    err = set_int_opt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(delay_ms / 1000));
  if (err != 0) fail_conn(c, err, Syscall::Setsockopt);
}

}  // namespace myriad
