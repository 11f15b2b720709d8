// epoll_backend.h - the Linux backend's per-reactor, per-connection and per-listener state.
// See reactor.h for the contract; the code is in epoll_reactor.cc.
#pragma once
#include <cstdint>
#include <vector>

#include "../events.h"

namespace myriad {

struct Listener;

// A connection's socket joins the epoll set once, edge-triggered for both directions, and never
// changes its registration (close() takes it out): no epoll_ctl per state change. An edge is
// reported once, so what it said is kept here until a syscall says otherwise. (A paused or
// throttled connection stays in the set: its input still wakes the reactor until the receive
// window fills, and a reset reaches it at once.)
struct BackendConn {
  bool registered = false;  // in the epoll set (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET)
  bool readable = false;    // input came (data, FIN, error) and no read has found it empty since
  bool writable = false;    // the last write was taken in full, or EPOLLOUT came since one was not
  bool queued = false;      // on BackendReactor::ready
  bool hup = false;         // EPOLLRDHUP/EPOLLHUP came: a FIN waits behind the data, if any
  bool urgent = false;      // EPOLLPRI came: a read may stop short at the urgent mark
};

struct BackendListener {
  // The options an accepted socket still needs set after accept4(): noDelay and keep-alive are
  // set on the listening socket once instead, and Linux copies them to every accepted socket.
  SocketOptions accepted;
};

struct BackendReactor {
  int epfd = -1;
  int wakefd = -1;  // eventfd: backend_wake() writes, the loop reads
  // Listeners this reactor took out of its epoll set after EMFILE/ENFILE/ENOBUFS/ENOMEM on
  // accept; they go back in at `resume_ms`, so a server keeps serving its connections and
  // resumes accepting when descriptors free up, without spinning on a readable listener.
  struct Paused {
    Listener* listener;
    uint32_t idx;
    uint64_t resume_ms;
  };
  std::vector<Paused> paused;
  // Listeners out of the epoll set during an accept storm's hold (backend_hold_accepts).
  struct Held {
    Listener* listener;
    uint32_t idx;
  };
  std::vector<Held> held;
  // Connections with work left after their turn (a read that filled its budget, a flush that
  // used its budget, reading switched back on with input waiting): served once per pass, in
  // order, so a busy connection cannot starve the others. Tokens (slot + generation).
  std::vector<uint64_t> ready;
  std::vector<uint64_t> pass;  // the ready list being served (swapped, to reuse both buffers)
};

}  // namespace myriad
