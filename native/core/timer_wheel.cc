#include "timer_wheel.h"

namespace myriad {

TimerWheel::TimerWheel() : slots_(kSlots) {
  for (TimerNode& h : slots_) h.prev = h.next = &h;
}

void TimerWheel::reset(uint64_t now_ms) { current_tick_ = now_ms / kTickMs; }

void TimerWheel::link(TimerNode* node) {
  uint64_t tick = (node->deadline_ms + kTickMs - 1) / kTickMs;
  if (tick < current_tick_) tick = current_tick_;
  TimerNode& head = slots_[tick % kSlots];
  node->next = &head;
  node->prev = head.prev;
  head.prev->next = node;
  head.prev = node;
}

void TimerWheel::unlink(TimerNode* node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = nullptr;
}

void TimerWheel::arm(TimerNode* node, uint64_t deadline_ms) {
  if (node->armed()) cancel(node);
  node->deadline_ms = deadline_ms;
  link(node);
  count_++;
}

void TimerWheel::cancel(TimerNode* node) {
  if (!node->armed()) return;
  unlink(node);
  count_--;
}

int TimerWheel::next_timeout_ms(uint64_t now_ms) const {
  if (count_ == 0) return -1;
  uint64_t next = current_tick_ * kTickMs;
  return next <= now_ms ? 0 : static_cast<int>(next - now_ms);
}

}  // namespace myriad
