// The EventSink every core test uses: notify() comes from a reactor thread, wait() from the test's
// own thread, which then drains the engine the way lib/engine.ts does.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#ifdef __linux__
#include <dirent.h>
#endif

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

// One delivery the way lib/engine.ts makes it: wait for a notification (unless `more` says
// batches already wait), hand every event of every waiting batch to on(batch, event), release
// the batches, and note in `more` whether more is waiting.
template <typename On>
void deliver(Sink& sink, Engine& engine, bool& more, int wait_ms, On&& on) {
  if (!more) sink.wait(wait_ms);
  std::vector<Batch> batches;
  engine.drain(batches);
  for (Batch& b : batches)
    for (const Event& ev : b.events) on(b, ev);
  engine.release(batches);
  more = engine.finish_delivery();
}

// Descriptors this process has open (Linux: /proc/self/fd); 0 elsewhere.
inline int open_fds() {
#ifdef __linux__
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) n++;
    closedir(d);
  }
  return n;
#else
  return 0;
#endif
}

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
