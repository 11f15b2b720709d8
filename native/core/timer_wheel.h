// timer_wheel.h - a hashed timing wheel for idle and connect timeouts. Hundreds of thousands of
// connections each with a timeout cost one intrusive node each and O(1) to arm or cancel; the
// reactor advances the wheel once per loop. Activity does not touch the wheel: the owner keeps
// its own "last active" time and re-arms lazily when an expired node turns out not to be due.
#pragma once
#include <cstdint>
#include <vector>

namespace myriad {

struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  uint64_t deadline_ms = 0;
  uint32_t owner = 0;  // the owner's slot, so an expired node leads back to its connection
  bool armed() const { return prev != nullptr; }
};

class TimerWheel {
 public:
  static constexpr uint64_t kTickMs = 8;
  static constexpr uint32_t kSlots = 4096;  // one rotation = 32.8 s

  TimerWheel();
  void reset(uint64_t now_ms);
  void arm(TimerNode* node, uint64_t deadline_ms);
  void cancel(TimerNode* node);
  bool empty() const { return count_ == 0; }
  // Milliseconds until the next tick that may hold an expired node, or -1 if nothing is armed.
  int next_timeout_ms(uint64_t now_ms) const;
  // Pops every node whose deadline has passed, up to `now`, and hands it to fn(node) (disarmed).
  // fn may re-arm the node.
  template <typename Fn>
  void expire(uint64_t now_ms, Fn fn) {
    while (current_tick_ * kTickMs <= now_ms) {
      TimerNode& head = slots_[current_tick_ % kSlots];
      // Detach the slot's list first, so nodes fn re-arms into this slot are not seen twice.
      TimerNode pending;
      pending.prev = pending.next = &pending;
      if (head.next != &head) {
        pending.next = head.next;
        pending.prev = head.prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head.next = head.prev = &head;
      }
      while (pending.next != &pending) {
        TimerNode* n = pending.next;
        unlink(n);
        if (n->deadline_ms <= now_ms) {
          count_--;
          fn(n);
        } else {
          link(n);  // a later rotation of this slot
        }
      }
      current_tick_++;
    }
  }

 private:
  void link(TimerNode* node);
  static void unlink(TimerNode* node);
  std::vector<TimerNode> slots_;  // list heads (circular, sentinel)
  uint64_t current_tick_ = 0;     // next tick to process
  uint64_t count_ = 0;
};

}  // namespace myriad
