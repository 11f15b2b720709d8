// Dial plans (connectMany() carried out by the reactors), without Node: this thread plays the JS
// thread. Proves that a plan opens exactly its quota per source with at most `cap` in flight over
// two reactors, that a source this host does not have is dropped and its quota moves to the
// others, that a plan with no usable source fails every attempt (one counted in DialPlanDone),
// that credit raises the cap, that cancel stops it mid-way with every share still reporting
// done and the unstarted attempts given back at once, that every share's cap comes back (credit
// that reaches a finished share too), that fast failures (EMFILE) are spread over reactor turns,
// that a dropped source is tried again once its time is up, and that every descriptor is back at
// the end. Under TSan: the plan's commands and events against two reactor threads.
#ifndef _WIN32  // cases 8 and 9 use POSIX directly (rlimits, a raw listening socket)
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
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
  uint32_t caps = 0;  // the shares' caps, given back with DialPlanDone
  uint32_t dropped = 0;  // DialPlanReturned: unstarted attempts a cancel dropped
  uint32_t credit_back = 0;  // DialPlanReturned: credit that found its share done
  uint32_t most_failed_in_a_batch = 0;
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
    const Batch* last = nullptr;
    std::map<uint64_t, uint32_t> failed_here;  // plan -> ConnectFailed in the current batch
    test::deliver(sink, engine, more, wait_ms, [&](const Batch& b, const Event& ev) {
      if (&b != last) {
        last = &b;
        failed_here.clear();
      }
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
          plans[id].most_failed_in_a_batch = std::max(plans[id].most_failed_in_a_batch, ++failed_here[id]);
          break;
        case EventType::DialPlanDone:
          plans[id].done++;
          plans[id].unstarted_failed += static_cast<uint32_t>(ev.a);
          plans[id].caps += static_cast<uint32_t>(ev.b);
          break;
        case EventType::DialPlanReturned:
          plans[id].dropped += static_cast<uint32_t>(ev.a);
          plans[id].credit_back += static_cast<uint32_t>(ev.b);
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
  CHECK_EQ(h.plans[10].caps, 16u);  // each share's cap comes back
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
  // What had not started is given back with the cancel; the rest connected (in flight then).
  CHECK_EQ(h.plans[50].dropped + at_cancel, 100000u);
  CHECK_EQ(h.plans[50].caps + h.plans[50].credit_back, 32u);
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

  // 7. Credit that reaches a share after it finished (the engine had not drained its
  //    DialPlanDone yet) is given back, not lost; once drained, no share is sent credit.
  {
    DialPlan p = h.plan(70, {}, {1}, 1);
    p.base.remote.port = 1;  // refused at once
    const uint64_t failures = h.engine.stats().connect_failures;
    CHECK_EQ(h.engine.dial_plan(std::move(p)), 1u);
    for (int k = 0; k < 500 && h.engine.stats().connect_failures == failures; k++)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the share finishes in the same turn
    h.engine.dial_plan_credit(70, 5);
    CHECK(h.until([&] { return h.plans[70].done == 1 && h.plans[70].credit_back == 5; }));
    CHECK_EQ(h.plans[70].caps, 1u);
    CHECK_EQ(h.plans[70].errors["ECONNREFUSED"], 1u);
    h.engine.dial_plan_credit(70, 3);  // known to be done now: nothing is sent
    for (int k = 0; k < 3; k++) h.pump(20);
    CHECK_EQ(h.plans[70].credit_back, 5u);
  }

#ifndef _WIN32
  // 8. Attempts that fail at once (socket(): EMFILE) do not take a reactor's turn: at most
  //    DialPlan::kPlanFailuresPerTurn of a share fail per turn, in flight ones aside, and the
  //    share goes on over later turns until every attempt has failed.
  {
    rlimit old_limit{};
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
    rlimit low = old_limit;
    low.rlim_cur = static_cast<rlim_t>(test::open_fds() + 24);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    DialPlan p = h.plan(80, {}, {3000}, 3000);
    p.base.remote.port = 1;  // refused: the few sockets there are come back quickly
    CHECK_EQ(h.engine.dial_plan(std::move(p)), 2u);
    CHECK(h.until([&] { return h.plans[80].done == 2; }, 30000));
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
    CHECK_EQ(h.plans[80].errors["EMFILE"] + h.plans[80].errors["ECONNREFUSED"], 3000u);
    CHECK(h.plans[80].errors["EMFILE"] > 1000u);
    CHECK(h.plans[80].most_failed_in_a_batch <= 2 * (DialPlan::kPlanFailuresPerTurn + 24));
  }

  // 9. A dropped source is tried again once its time is up (then dropped again here: this host
  //    does not have it), while the call goes on from the other. Attempts to a listener whose
  //    queue is full hang until their 300 ms timeout, so the call lasts past the retry time.
  {
    const int silent = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(silent >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000001);
    socklen_t len = sizeof sa;
    CHECK_EQ(bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    CHECK_EQ(listen(silent, 0), 0);
    CHECK_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len), 0);
    DialPlan p = h.plan(90, {"203.0.113.77", "127.0.0.9"}, {4, 4}, 1);
    p.base.remote.port = ntohs(sa.sin_port);
    p.base.timeout_ms = 300;
    const uint64_t failures = h.engine.stats().connect_failures;
    CHECK_EQ(h.engine.dial_plan(std::move(p)), 1u);
    CHECK(h.until([&] { return h.plans[90].done == 1; }, 20000));
    PlanSeen& seen = h.plans[90];
    CHECK_EQ(seen.conns.size() + seen.errors["ETIMEDOUT"], 8u);  // every attempt, from the other
    CHECK_EQ(seen.by_source.count(1), 0u);
    CHECK_EQ(seen.errors.count("EADDRNOTAVAIL"), 0u);  // a source was usable throughout
    const uint64_t bad_tries = h.engine.stats().connect_failures - failures - seen.errors["ETIMEDOUT"];
    CHECK(bad_tries >= 2u);  // at the start, and again after a second
    for (uint64_t c : seen.conns) h.engine.destroy(c);
    close(silent);
  }
#endif

  // 6. A plan still running when the engine stops: its shares are freed (ASan: no leak).
  CHECK_EQ(h.engine.dial_plan(h.plan(60, {"127.0.0.2"}, {100000}, 4)), 2u);
  h.pump(20);
  h.engine.stop();
  return check_result("dial_plan");
}
