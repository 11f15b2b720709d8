// The timer wheel: deadlines fire once, in time, across rotations; cancel works; re-arming from
// the callback works; a huge number of nodes is cheap.
#include <vector>

#include "check.h"
#include "timer_wheel.h"

using namespace myriad;

int main() {
  TimerWheel w;
  w.reset(1000);
  std::vector<TimerNode> nodes(5);
  for (uint32_t i = 0; i < nodes.size(); i++) nodes[i].owner = i;
  w.arm(&nodes[0], 1000 + 10);
  w.arm(&nodes[1], 1000 + 100);
  w.arm(&nodes[2], 1000 + 40000);  // more than one rotation (32.8 s)
  w.arm(&nodes[3], 1000 + 50);
  w.cancel(&nodes[3]);
  CHECK(!nodes[3].armed());
  std::vector<uint32_t> fired;
  auto run = [&](uint64_t now) { w.expire(now, [&](TimerNode* n) { fired.push_back(n->owner); }); };
  run(1005);
  CHECK(fired.empty());
  run(1020);
  CHECK(fired.size() == 1 && fired[0] == 0);
  CHECK(w.next_timeout_ms(1020) >= 0);
  run(1200);
  CHECK(fired.size() == 2 && fired[1] == 1);
  run(1000 + 33000);  // a full rotation later: node 2 not yet due
  CHECK_EQ(fired.size(), 2u);
  run(1000 + 40010);
  CHECK(fired.size() == 3 && fired[2] == 2);
  CHECK(w.empty());
  CHECK_EQ(w.next_timeout_ms(50000), -1);

  // Re-arm from inside the callback (lazy idle timeouts do this).
  int count = 0;
  w.arm(&nodes[4], 50000);
  w.expire(50100, [&](TimerNode* n) {
    if (++count < 3) w.arm(n, 50100 + 20 * count);
  });
  CHECK_EQ(count, 1);
  w.expire(50200, [&](TimerNode* n) {
    if (++count < 3) w.arm(n, 50200);
  });
  CHECK(count >= 2);

  // 200,000 timers all firing.
  std::vector<TimerNode> many(200000);
  w.reset(60000);
  for (size_t i = 0; i < many.size(); i++) w.arm(&many[i], 60000 + 100 + i % 1000);
  size_t n = 0;
  w.expire(62000, [&](TimerNode*) { n++; });
  CHECK_EQ(n, many.size());
  return check_result("timer_wheel");
}
