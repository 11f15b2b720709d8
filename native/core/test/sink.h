// The EventSink every core test uses: notify() comes from a reactor thread, wait() from the test's
// own thread, which then drains the engine the way lib/engine.ts does.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "engine.h"

namespace myriad::test {

struct Sink : EventSink {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  void notify() override {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
    cv.notify_one();
  }
  // true if notified within ms (or before the call); false on time-out.
  bool wait(int ms) {
    std::unique_lock<std::mutex> lock(mu);
    bool ok = cv.wait_for(lock, std::chrono::milliseconds(ms), [this] { return ready; });
    ready = false;
    return ok;
  }
};

// Pumps h (h.pump(20): wait up to 20 ms, then handle every waiting batch) until pred() holds;
// false if it still does not after ms.
template <typename Harness, typename Pred>
bool pump_until(Harness& h, Pred pred, int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    h.pump(20);
  }
  return true;
}

}  // namespace myriad::test
