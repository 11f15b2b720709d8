// epoll_backend.h - the Linux backend's per-reactor, per-connection and per-listener state.
// See reactor.h for the contract; the code is in epoll_reactor.cc.
#pragma once
#include <cstdint>
#include <vector>

#include "../events.h"

namespace myriad {

struct Listener;

struct BackendConn {
  uint32_t events = 0;  // the epoll mask registered now; 0 = not in the epoll set
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
};

}  // namespace myriad
