// Dial plans (connectMany() carried out by the reactors), without Node: this thread plays the JS
// thread. Proves that a plan opens exactly its quota per source with at most `cap` in flight over
// two reactors, that a source this host does not have is dropped and its quota moves to the
// others, that a plan with no usable source fails every attempt (one counted in DialPlanDone),
// that credit raises the cap, that cancel stops it mid-way with every share still reporting
// done, and that every descriptor is back at the end. Under TSan: the plan's commands and events
// against two reactor threads.
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "check.h"
#include "engine.h"
#include "errors.h"
#include "sink.h"

using namespace myriad;
using myriad::test::Sink;

namespace {

struct PlanSeen {
  std::map<uint32_t, uint32_t> by_source;  // source tag -> connections
  std::vector<uint64_t> conns;
  std::map<std::string, uint32_t> errors;  // code -> attempts
  uint32_t unstarted_failed = 0;
  uint32_t done = 0;  // DialPlanDone events (one per share)
};

struct Harness {
  Sink sink;
  Engine engine{2, &sink};
  std::map<uint64_t, PlanSeen> plans;
  uint32_t port = 0;
  uint32_t listener = 0;
  size_t accepted = 0;
  std::map<uint64_t, bool> servers;  // accepted connection -> still open
  bool more = false;

  void pump(int wait_ms = 50) {
    test::deliver(sink, engine, more, wait_ms, [&](const Batch&, const Event& ev) {
      const auto id = static_cast<uint64_t>(ev.id);
      switch (static_cast<EventType>(static_cast<int>(ev.type))) {
        case EventType::ListenOk:
          listener = static_cast<uint32_t>(ev.a);
          port = static_cast<uint32_t>(ev.b);
          break;
        case EventType::Accept:
          accepted++;
          servers[id] = true;
          break;
        case EventType::End:  // a dialed side was destroyed: the server side ends too
          if (servers.count(id) != 0) engine.end(id, nullptr);
          break;
        case EventType::Close:
          if (servers.count(id) != 0) servers[id] = false;
          break;
        case EventType::Connected: {
          PlanSeen& p = plans[static_cast<uint64_t>(ev.a)];
          p.by_source[static_cast<uint32_t>(ev.b)]++;
          p.conns.push_back(id);
          break;
        }
        case EventType::ConnectFailed:
          plans[id].errors[error_name(static_cast<int>(ev.a)).code]++;
          break;
        case EventType::DialPlanDone:
          plans[id].done++;
          plans[id].unstarted_failed += static_cast<uint32_t>(ev.a);
          break;
        default:
          break;
      }
    });
  }

  template <typename Pred>
  bool until(Pred pred, int ms = 10000) {
    return test::pump_until(*this, pred, ms);
  }

  DialPlan plan(uint64_t id, const std::vector<const char*>& sources, const std::vector<uint32_t>& quota, uint32_t cap) {
    DialPlan p;
    p.id = id;
    CHECK(parse_ip("127.0.0.1", 9, static_cast<uint16_t>(port), &p.base.remote));
    p.pooled = !sources.empty();
    p.sources.resize(quota.size());
    for (size_t i = 0; i < sources.size(); i++) CHECK(parse_ip(sources[i], std::strlen(sources[i]), 0, &p.sources[i]));
    p.quota = quota;
    for (uint32_t q : quota) p.unstarted += q;
    p.cap = cap;
    return p;
  }

  void destroy_all(uint64_t plan_id) {
    for (uint64_t c : plans[plan_id].conns) engine.destroy(c);
  }
};

}  // namespace

int main() {
  Harness h;
  CHECK_EQ(h.engine.start(), 0);
  ListenRequest lr;
  CHECK(parse_ip("127.0.0.1", 9, 0, &lr.local));
  h.engine.listen(1, lr);
  CHECK(h.until([&] { return h.port != 0; }));
  const int fds_before = test::open_fds();

  // 1. Quotas per source, exactly, over two shares; cap 16 in all.
  CHECK_EQ(h.engine.dial_plan(h.plan(10, {"127.0.0.2", "127.0.0.3", "127.0.0.4"}, {300, 200, 1}, 16)), 2u);
  CHECK(h.until([&] { return h.plans[10].done == 2; }));
  CHECK_EQ(h.plans[10].conns.size(), 501u);
  CHECK_EQ(h.plans[10].by_source[1], 300u);
  CHECK_EQ(h.plans[10].by_source[2], 200u);
  CHECK_EQ(h.plans[10].by_source[3], 1u);
  CHECK(h.plans[10].errors.empty());
  CHECK(h.until([&] { return h.accepted == 501; }));
  EngineStats s = h.engine.stats();
  CHECK_EQ(s.dialed, 501u);
  h.destroy_all(10);

  // 2. A source this host does not have (bind: EADDRNOTAVAIL, nothing is sent) is dropped: its
  //    quota and the failed attempt go to the other source. Each share meets the bad source at
  //    most once.
  CHECK_EQ(h.engine.dial_plan(h.plan(20, {"203.0.113.77", "127.0.0.8"}, {100, 100}, 8)), 2u);
  CHECK(h.until([&] { return h.plans[20].done == 2; }));
  CHECK_EQ(h.plans[20].conns.size(), 200u);
  CHECK_EQ(h.plans[20].by_source[2], 200u);
  CHECK_EQ(h.plans[20].by_source.count(1), 0u);
  CHECK(h.plans[20].errors.empty());
  const uint64_t failures_after_2 = h.engine.stats().connect_failures;
  CHECK(failures_after_2 >= 1u && failures_after_2 <= 2u);
  h.destroy_all(20);

  // 3. No usable source at all: each share fails one attempt with its own error and the rest
  //    unstarted, at once, whatever the count.
  CHECK_EQ(h.engine.dial_plan(h.plan(30, {"203.0.113.77", "203.0.113.78"}, {500000, 500000}, 64)), 2u);
  CHECK(h.until([&] { return h.plans[30].done == 2; }));
  CHECK_EQ(h.plans[30].errors["EADDRNOTAVAIL"] + h.plans[30].unstarted_failed, 1000000u);
  CHECK(h.plans[30].errors["EADDRNOTAVAIL"] >= 2u && h.plans[30].errors["EADDRNOTAVAIL"] <= 4u);
  CHECK(h.plans[30].conns.empty());

  // 4. No pool (the kernel picks the source) to a closed port: every attempt fails on its own.
  {
    DialPlan p = h.plan(40, {}, {300}, 32);
    p.base.remote.port = 1;  // nothing listens there: refused at once, nothing leaves loopback
    CHECK_EQ(h.engine.dial_plan(std::move(p)), 2u);
    CHECK(h.until([&] { return h.plans[40].done == 2; }));
    CHECK_EQ(h.plans[40].errors["ECONNREFUSED"], 300u);
    CHECK_EQ(h.plans[40].unstarted_failed, 0u);
  }

  // 5. Cap 1 (one share), raised by credit; then cancelled part-way: every share still reports
  //    done, what was in flight still reports, and no more than that starts.
  CHECK_EQ(h.engine.dial_plan(h.plan(50, {"127.0.0.2"}, {100000}, 1)), 1u);
  CHECK(h.until([&] { return h.plans[50].conns.size() >= 20; }));
  h.engine.dial_plan_credit(50, 31);
  CHECK(h.until([&] { return h.plans[50].conns.size() >= 500; }));
  h.engine.dial_plan_cancel(50);
  CHECK(h.until([&] { return h.plans[50].done == 1; }));
  const size_t at_cancel = h.plans[50].conns.size();
  CHECK(at_cancel < 100000);
  for (int k = 0; k < 5; k++) h.pump(20);
  CHECK_EQ(h.plans[50].conns.size(), at_cancel);
  h.engine.dial_plan_cancel(50);  // again, and for an unknown plan: ignored
  h.engine.dial_plan_credit(12345, 10);
  h.destroy_all(50);

  // Every socket closed again: the dialed sides destroyed, the accepted sides ended in turn.
  CHECK(h.until([&] {
    for (auto& kv : h.servers)
      if (kv.second) return false;
    return true;
  }));
  CHECK(h.until([&] { return test::open_fds() == fds_before; }));

  // 6. A plan still running when the engine stops: its shares are freed (ASan: no leak).
  CHECK_EQ(h.engine.dial_plan(h.plan(60, {"127.0.0.2"}, {100000}, 4)), 2u);
  h.pump(20);
  h.engine.stop();
  return check_result("dial_plan");
}
