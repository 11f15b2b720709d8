// Fan-out in the core (reactor.cc: Broadcast / GroupBroadcast / GroupAdd / GroupDelete /
// GroupClear, broadcast_one and the slow-consumer policies), driven through the whole engine
// without Node: this thread plays the JS thread while two reactors run. Under ThreadSanitizer it
// is the test of one SharedBytes block referenced from both reactors and hundreds of write
// queues at once, and of membership bookkeeping while connections close under a broadcast.
//
//  1. Order: a random mix (fixed seed, printed) of server broadcasts, group broadcasts (with and
//     without `except`), direct writes, joins and leaves reaches each of 240 clients as exactly the
//     bytes a model of the membership predicts, in order.
//  2. Slow consumers: three paused clients whose server side is capped at 64 KiB get 'drop' (a
//     strict, in-order subsequence of whole messages arrives, matching messagesDropped), 'close'
//     (ERR_SLOW_CONSUMER, counted) and 'buffer' (everything arrives).
//  3. Broadcast while closing: broadcasts race destroy/end from both sides and a group clear;
//     every client sees a prefix of its stream, nothing crashes or leaks (ASan), and new
//     connections that reuse the slots are in no old group.
//  4. Counters balance: accepted + dialed = closed + live.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "check.h"
#include "sink.h"
#include "engine.h"
#include "errors.h"

using namespace myriad;
using myriad::test::Sink;

namespace {

struct Client {
  std::string received;
  bool closed = false;
  bool ended = false;
  uint64_t server = 0;  // the accepted connection on the other end
};

struct ServerSide {
  bool live = true;
  int error = 0;
  uint16_t remote_port = 0;
};

struct Harness {
  Sink sink;
  Engine engine{2, &sink};
  std::map<uint64_t, Client> clients;
  std::map<uint64_t, ServerSide> servers;
  uint32_t port = 0;
  uint32_t listener = 0;
  bool more = false;  // finish_delivery() said more is waiting: drain without waiting
  bool listener_closed = false;

  void pump(int wait_ms = 20) {
    test::deliver(sink, engine, more, wait_ms, [&](const Batch& b, const Event& ev) {
      const auto id = static_cast<uint64_t>(ev.id);
      switch (static_cast<EventType>(static_cast<int>(ev.type))) {
        case EventType::ListenOk:
          listener = static_cast<uint32_t>(ev.a);
          port = static_cast<uint32_t>(ev.b);
          break;
        case EventType::Accept: {
          ServerSide& s = servers[id];
          Endpoint local, remote;
          CHECK(engine.endpoints(id, &local, &remote));
          s.remote_port = remote.port;
          break;
        }
        case EventType::Connected:
          clients[id];
          break;
        case EventType::Data: {
          auto it = clients.find(id);
          if (it != clients.end())
            it->second.received.append(reinterpret_cast<const char*>(b.arena) + static_cast<size_t>(ev.a),
                                       static_cast<size_t>(ev.b));
          break;
        }
        case EventType::End:
          if (clients.count(id)) {
            clients[id].ended = true;
            engine.end(id, nullptr);
          } else {
            engine.end(id, nullptr);
          }
          break;
        case EventType::Error:
          if (servers.count(id)) servers[id].error = static_cast<int>(ev.a);
          break;
        case EventType::Close:
          if (clients.count(id)) clients[id].closed = true;
          else if (servers.count(id)) servers[id].live = false;
          break;
        case EventType::ListenerClosed:
          listener_closed = true;
          break;
        default:
          break;
      }
    });
  }

  template <typename Pred>
  bool until(Pred pred, int ms = 20000) {
    return test::pump_until(*this, pred, ms);
  }

  // Dials n clients and pairs each with its accepted connection (by port).
  std::vector<uint64_t> dial(int n, uint64_t first_request) {
    std::set<uint64_t> before;
    for (auto& kv : clients) before.insert(kv.first);
    const size_t servers_before = servers.size();
    for (int i = 0; i < n; i++) {
      ConnectRequest cr;
      CHECK(parse_ip("127.0.0.1", 9, static_cast<uint16_t>(port), &cr.remote));
      engine.connect(first_request + static_cast<uint64_t>(i), cr);
    }
    CHECK(until([&] { return clients.size() == before.size() + static_cast<size_t>(n) &&
                             servers.size() == servers_before + static_cast<size_t>(n); }));
    std::map<uint16_t, uint64_t> by_port;
    for (auto& kv : servers)
      if (kv.second.live) by_port[kv.second.remote_port] = kv.first;
    std::vector<uint64_t> fresh;
    for (auto& kv : clients) {
      if (before.count(kv.first)) continue;
      Endpoint local, remote;
      CHECK(engine.endpoints(kv.first, &local, &remote));
      auto it = by_port.find(local.port);
      CHECK(it != by_port.end());
      if (it != by_port.end()) kv.second.server = it->second;
      fresh.push_back(kv.first);
    }
    return fresh;
  }
};

SharedBytes* bytes_of(const std::string& s) { return SharedBytes::copy_of(s.data(), s.size()); }

std::string message(std::mt19937& rng, const char* tag, int k) {
  std::string m = std::string(tag) + ":" + std::to_string(k) + ":";
  // Mostly small; now and then large enough that the kernel takes it in pieces (partial writes).
  const size_t pad = rng() % 20 == 0 ? 20000 + rng() % 60000 : rng() % 300;
  m.append(pad, static_cast<char>('a' + k % 26));
  m += ';';
  return m;
}

bool is_prefix(const std::string& p, const std::string& whole) {
  return p.size() <= whole.size() && whole.compare(0, p.size(), p) == 0;
}

}  // namespace

int main() {
  const char* env_seed = std::getenv("MYRIAD_TEST_SEED");
  const uint32_t seed = env_seed != nullptr ? static_cast<uint32_t>(std::strtoul(env_seed, nullptr, 10)) : 20240611u;
  std::printf("broadcast_groups: seed %u (MYRIAD_TEST_SEED=%u replays it)\n", seed, seed);
  std::mt19937 rng(seed);

  Harness h;
  CHECK_EQ(h.engine.start(), 0);
  ListenRequest lr;
  CHECK(parse_ip("127.0.0.1", 9, 0, &lr.local));
  lr.owner = 7;
  lr.conn.max_buffered = 0;  // phase 1: no cap
  h.engine.listen(1, lr);
  CHECK(h.until([&] { return h.port != 0; }));

  // ---------------------------------------------------------------- 1. order
  const int kConns = 240;
  std::vector<uint64_t> ids = h.dial(kConns, 100);
  CHECK_EQ(ids.size(), static_cast<size_t>(kConns));
  std::map<uint64_t, std::string> expect;           // client id -> bytes it must receive
  std::map<uint32_t, std::set<uint64_t>> model;     // group -> server ids
  std::map<uint64_t, uint64_t> client_of;           // server id -> client id
  for (uint64_t c : ids) client_of[h.clients[c].server] = c;
  for (size_t i = 0; i < ids.size(); i++) {
    const uint64_t s = h.clients[ids[i]].server;
    for (uint32_t g : {1u, 2u, 3u})
      if (g == 1 || (g == 2 && i % 2 == 0) || (g == 3 && i % 3 == 0)) {
        h.engine.group_add(g, s);
        model[g].insert(s);
      }
  }
  const int kOps = 400;
  for (int k = 0; k < kOps; k++) {
    const int op = static_cast<int>(rng() % 10);
    const uint64_t some = h.clients[ids[rng() % ids.size()]].server;
    if (op <= 3) {  // group broadcast, sometimes with except
      const uint32_t g = 1 + rng() % 3;
      const uint64_t except = rng() % 3 == 0 ? some : 0;
      const std::string m = message(rng, "g", k);
      h.engine.group_broadcast(g, bytes_of(m), except);
      for (uint64_t s : model[g])
        if (s != except) expect[client_of[s]] += m;
    } else if (op <= 5) {  // server broadcast
      const uint64_t except = rng() % 4 == 0 ? some : 0;
      const std::string m = message(rng, "s", k);
      h.engine.broadcast(7, bytes_of(m), except);
      for (auto& kv : client_of)
        if (kv.first != except) expect[kv.second] += m;
    } else if (op <= 7) {  // a direct write keeps its place among broadcasts
      const std::string m = message(rng, "w", k);
      h.engine.write(some, bytes_of(m), 1 << 30);
      expect[client_of[some]] += m;
    } else if (op == 8) {  // join (a second join is a no-op)
      const uint32_t g = 2 + rng() % 2;
      h.engine.group_add(g, some);
      model[g].insert(some);
    } else {  // leave (leaving a group one is not in is a no-op)
      const uint32_t g = 2 + rng() % 2;
      h.engine.group_delete(g, some);
      model[g].erase(some);
    }
    if (k % 50 == 0) h.pump(0);  // interleave event handling with the commands, as JS does
  }
  CHECK(h.until([&] {
    for (uint64_t c : ids)
      if (h.clients[c].received.size() < expect[c].size()) return false;
    return true;
  }, 60000));
  int wrong = 0;
  for (uint64_t c : ids)
    if (h.clients[c].received != expect[c]) {
      if (wrong++ == 0)
        std::fprintf(stderr, "client %llu: got %zu bytes, want %zu\n", static_cast<unsigned long long>(c),
                     h.clients[c].received.size(), expect[c].size());
    }
  CHECK_EQ(wrong, 0);
  EngineStats st = h.engine.stats();
  CHECK_EQ(st.messages_dropped, 0u);
  CHECK_EQ(st.slow_closed, 0u);
  CHECK(st.messages_queued > 0);

  // ---------------------------------------------------------------- 2. slow consumers
  // Three clients stop reading; their server sides are capped at 64 KiB with each policy.
  const uint64_t c_drop = ids[0], c_close = ids[1], c_buffer = ids[2];
  const SlowPolicy policies[] = {SlowPolicy::Drop, SlowPolicy::Close, SlowPolicy::Buffer};
  const uint64_t slow[] = {c_drop, c_close, c_buffer};
  for (int i = 0; i < 3; i++) {
    h.clients[slow[i]].received.clear();
    h.engine.pause(slow[i]);
    h.engine.set_max_buffered(h.clients[slow[i]].server, 64 * 1024, policies[i]);
    h.engine.group_add(4, h.clients[slow[i]].server);
  }
  const uint64_t dropped_before = h.engine.stats().messages_dropped;
  const int kSlowMessages = 600;
  std::vector<std::string> slow_msgs;
  std::string slow_all;
  for (int k = 0; k < kSlowMessages; k++) {
    char head[32];
    std::snprintf(head, sizeof(head), "<%05d|", k);
    std::string m = head + std::string(16 * 1024 - 8, static_cast<char>('A' + k % 26)) + ">";
    slow_msgs.push_back(m);
    slow_all += m;
    h.engine.group_broadcast(4, bytes_of(m), 0);
    if (k % 100 == 0) h.pump(0);
  }
  // The 'close' one is closed by the policy, with ERR_SLOW_CONSUMER.
  const uint64_t s_close = h.clients[c_close].server;
  CHECK(h.until([&] { return !h.servers[s_close].live; }));
  CHECK_EQ(h.servers[s_close].error, kErrSlowConsumer);
  for (uint64_t c : {c_drop, c_buffer}) h.engine.resume(c);
  h.engine.resume(c_close);
  CHECK(h.until([&] { return h.clients[c_buffer].received.size() >= slow_all.size(); }, 60000));
  CHECK(h.clients[c_buffer].received == slow_all);
  // 'drop': whole messages, in order, exactly the ones not counted as dropped.
  const uint64_t dropped = h.engine.stats().messages_dropped - dropped_before;
  CHECK(dropped > 0);
  CHECK(h.until([&] { return h.clients[c_drop].received.size() >= (kSlowMessages - dropped) * slow_msgs[0].size(); }, 60000));
  {
    const std::string& got = h.clients[c_drop].received;
    size_t pos = 0, n = 0;
    int last = -1;
    bool whole = true;
    while (pos < got.size()) {
      const int k = std::atoi(got.c_str() + pos + 1);
      if (got[pos] != '<' || k <= last || k >= kSlowMessages || got.compare(pos, slow_msgs[k].size(), slow_msgs[k]) != 0) {
        whole = false;
        break;
      }
      last = k;
      pos += slow_msgs[k].size();
      n++;
    }
    CHECK(whole);
    CHECK_EQ(n + dropped, static_cast<uint64_t>(kSlowMessages));
  }
  CHECK(h.until([&] { return h.clients[c_close].closed; }));
  CHECK(is_prefix(h.clients[c_close].received, slow_all));
  CHECK(h.engine.stats().slow_closed >= 1u);

  // ---------------------------------------------------------------- 3. broadcast while closing
  // Every live client's stream restarts here: from now on each must see a prefix of its model.
  std::vector<uint64_t> live;
  for (uint64_t c : ids)
    if (!h.clients[c].closed && h.servers[h.clients[c].server].live) live.push_back(c);
  for (uint64_t c : live) {
    h.clients[c].received.clear();
    expect[c].clear();
  }
  h.engine.group_clear(4);
  for (uint64_t c : live) h.engine.set_max_buffered(h.clients[c].server, 0, SlowPolicy::Buffer);

  std::set<uint64_t> closing;
  for (int k = 0; k < 300; k++) {
    const int op = static_cast<int>(rng() % 12);
    const uint64_t c = live[rng() % live.size()];
    const uint64_t s = h.clients[c].server;
    if (op <= 4) {
      const uint32_t g = 1 + rng() % 3;
      const std::string m = message(rng, "G", k);
      h.engine.group_broadcast(g, bytes_of(m), 0);
      for (uint64_t x : model[g])
        if (client_of.count(x)) expect[client_of[x]] += m;
    } else if (op <= 7) {
      const std::string m = message(rng, "S", k);
      h.engine.broadcast(7, bytes_of(m), 0);
      for (uint64_t x : live) expect[x] += m;
    } else if (op == 8) {
      h.engine.destroy(s);  // server side, mid-broadcast
      closing.insert(c);
    } else if (op == 9) {
      h.engine.destroy(c);  // client side: the server conn sees a reset or EOF while writing
      closing.insert(c);
    } else if (op == 10) {
      h.engine.end(s, nullptr);  // later broadcasts skip an ending connection
      closing.insert(c);
    } else if (k > 150) {
      const uint32_t g = 1 + rng() % 3;
      h.engine.group_clear(g);
      model[g].clear();
    }
    if (k % 25 == 0) h.pump(0);
  }
  // Nobody closed: exactly the model. Closed mid-stream (either side): a prefix of it.
  CHECK(h.until([&] {
    for (uint64_t c : live)
      if (closing.count(c) == 0 && h.clients[c].received.size() < expect[c].size()) return false;
    for (uint64_t c : closing)
      if (!h.clients[c].closed) return false;
    return true;
  }, 60000));
  int wrong3 = 0, not_prefix = 0;
  for (uint64_t c : live) {
    if (closing.count(c) == 0 && h.clients[c].received != expect[c]) wrong3++;
    if (!is_prefix(h.clients[c].received, expect[c])) not_prefix++;
  }
  CHECK_EQ(wrong3, 0);
  CHECK_EQ(not_prefix, 0);
  CHECK(!closing.empty());

  // Close everything from the client side; every server conn must report closed.
  for (uint64_t c : live)
    if (!h.clients[c].closed) h.engine.destroy(c);
  CHECK(h.until([&] {
    for (auto& kv : h.servers)
      if (kv.second.live) return false;
    for (auto& kv : h.clients)
      if (!kv.second.closed) return false;
    return true;
  }));

  // New connections reuse the slots with new generations and belong to no old group.
  std::vector<uint64_t> fresh = h.dial(60, 50000);
  for (uint32_t g : {1u, 2u, 3u, 4u}) h.engine.group_broadcast(g, bytes_of("stale-group;"), 0);
  h.engine.broadcast(7, bytes_of("server;"), 0);
  CHECK(h.until([&] {
    for (uint64_t c : fresh)
      if (h.clients[c].received.size() < 7) return false;
    return true;
  }));
  for (int i = 0; i < 10; i++) h.pump(5);
  int stale = 0;
  for (uint64_t c : fresh)
    if (h.clients[c].received != "server;") stale++;
  CHECK_EQ(stale, 0);

  // ---------------------------------------------------------------- 4. counters balance
  for (uint64_t c : fresh) h.engine.destroy(c);
  CHECK(h.until([&] {
    for (auto& kv : h.servers)
      if (kv.second.live) return false;
    return true;
  }));
  for (int i = 0; i < 10; i++) h.pump(5);
  st = h.engine.stats();
  CHECK_EQ(st.accepted + st.dialed, st.closed + st.live);
  CHECK_EQ(st.live, 0u);
  CHECK_EQ(st.accepted, static_cast<uint64_t>(kConns + 60));
  CHECK_EQ(st.bytes_buffered, 0u);
  h.engine.close_listener(h.listener);
  CHECK(h.until([&] { return h.listener_closed; }));
  h.engine.stop();
  return check_result("broadcast_groups");
}
