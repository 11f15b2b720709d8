// Accept storms: a burst of connections is accepted in full, handed over in far fewer batches than
// connections (the reactor holds accept-only batches during a storm and stops waking for each
// new connection meanwhile), the listener is watched again afterwards (a lone connection after
// the storm is accepted), a listener closed during a storm closes cleanly, and the options the
// server asked for (noDelay, keep-alive) are on every accepted socket, inherited from the listener.
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"
#include "sink.h"
#include "engine.h"

#ifndef _WIN32
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>
#endif

using namespace myriad;
using myriad::test::Sink;

namespace {

struct Harness {
  Sink sink;
  Engine engine;
  std::vector<uint64_t> accepted;
  size_t accept_batches = 0;  // batches that held at least one Accept
  uint32_t port = 0, listener = 0;
  bool listener_closed = false, more = false;

  explicit Harness(uint32_t threads) : engine(threads, &sink) {}

  void pump(int wait_ms) {
    if (!more) sink.wait(wait_ms);
    std::vector<Batch> batches;
    engine.drain(batches);
    for (Batch& b : batches) {
      bool any = false;
      for (const Event& ev : b.events) {
        switch (static_cast<EventType>(static_cast<int>(ev.type))) {
          case EventType::ListenOk:
            listener = static_cast<uint32_t>(ev.a);
            port = static_cast<uint32_t>(ev.b);
            break;
          case EventType::Accept:
            accepted.push_back(static_cast<uint64_t>(ev.id));
            any = true;
            break;
          case EventType::ListenerClosed:
            listener_closed = true;
            break;
          default:
            break;
        }
      }
      accept_batches += any;
    }
    engine.release(batches);
    more = engine.finish_delivery();
  }

  template <typename Pred>
  bool until(Pred pred, int ms = 20000) {
    return test::pump_until(*this, pred, ms);
  }
};

#ifndef _WIN32
// A non-blocking client socket connecting to 127.0.0.1:port; -1 if it could not start.
int dial(uint32_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  Endpoint ep;
  sockaddr_storage ss;
  if (!parse_ip("127.0.0.1", 9, static_cast<uint16_t>(port), &ep)) return -1;
  const socklen_t len = to_sockaddr(ep, &ss);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

int int_opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  return getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}
#endif

}  // namespace

int main() {
#ifdef _WIN32
  return check_result("accept_storm (not on Windows)");
#else
  Harness h(1);
  CHECK_EQ(h.engine.start(), 0);
  ListenRequest lr;
  CHECK(parse_ip("127.0.0.1", 9, 0, &lr.local));
  lr.owner = 3;
  lr.accept_batch = 16;  // smaller than the storm's backlog: accepting continues past the cap
  lr.conn.nodelay = true;
  lr.conn.keepalive = true;
  lr.conn.keepalive_delay_ms = 42000;
  h.engine.listen(1, lr);
  CHECK(h.until([&] { return h.port != 0; }));

  // The storm: 3,000 connections as fast as this thread opens them.
  const size_t kStorm = 3000;
  std::vector<int> clients;
  for (size_t i = 0; i < kStorm; i++) {
    const int fd = h.port != 0 ? dial(h.port) : -1;
    CHECK(fd >= 0);
    if (fd >= 0) clients.push_back(fd);
    if (i % 64 == 0) h.pump(0);
  }
  CHECK(h.until([&] { return h.accepted.size() == clients.size(); }));
  std::printf("storm: %zu accepted in %zu batches\n", h.accepted.size(), h.accept_batches);
  CHECK(h.accept_batches * 4 <= h.accepted.size());

  // Every accepted socket has the listener's options.
  size_t wrong = 0;
  Reactor* r = h.engine.reactor_at(0);
  for (uint64_t id : h.accepted) {
    const ConnRef ref = split_conn_id(id);
    Conn* c = r->conn_for(ref.slot, ref.gen);
    if (c == nullptr || int_opt(c->fd, IPPROTO_TCP, TCP_NODELAY) != 1 ||
        int_opt(c->fd, SOL_SOCKET, SO_KEEPALIVE) != 1 || int_opt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE) != 42)
      wrong++;
  }
  CHECK_EQ(wrong, 0u);

  // After the storm the listener is watched again: a lone connection is accepted.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  h.pump(0);
  const size_t before = h.accepted.size();
  const int lone = dial(h.port);
  CHECK(lone >= 0);
  CHECK(h.until([&] { return h.accepted.size() == before + 1; }, 5000));
  if (lone >= 0) clients.push_back(lone);

  // A listener closed in the middle of a storm closes cleanly (its backlog is reset).
  for (int k = 0; k < 500; k++) {
    const int fd = dial(h.port);
    if (fd >= 0) clients.push_back(fd);
    if (k == 250) h.engine.close_listener(h.listener);
  }
  CHECK(h.until([&] { return h.listener_closed; }));
  h.pump(50);

  for (uint64_t id : h.accepted) h.engine.destroy(id);
  for (int fd : clients) close(fd);
  h.engine.stop();
  return check_result("accept_storm");
#endif
}
