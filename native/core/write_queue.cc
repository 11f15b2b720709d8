#include "write_queue.h"

#include <cstdlib>

namespace myriad {

bool WriteQueue::push(SharedBytes* bytes, uint32_t offset) {
  auto* c = static_cast<WriteChunk*>(std::malloc(sizeof(WriteChunk)));
  if (c == nullptr) return false;
  c->next = nullptr;
  c->bytes = bytes;
  c->offset = offset;
  if (tail_ != nullptr)
    tail_->next = c;
  else
    head_ = c;
  tail_ = c;
  return true;
}

void WriteQueue::consume(size_t sent) {
  while (head_ != nullptr && sent > 0) {
    size_t left = head_->bytes->size() - head_->offset;
    if (sent < left) {
      head_->offset += static_cast<uint32_t>(sent);
      return;
    }
    sent -= left;
    WriteChunk* done = head_;
    head_ = done->next;
    if (head_ == nullptr) tail_ = nullptr;
    done->bytes->release();
    std::free(done);
  }
  // Zero-length chunks (an empty write) are complete as soon as they reach the head.
  while (head_ != nullptr && head_->offset == head_->bytes->size()) {
    WriteChunk* done = head_;
    head_ = done->next;
    if (head_ == nullptr) tail_ = nullptr;
    done->bytes->release();
    std::free(done);
  }
}

void WriteQueue::clear() {
  while (head_ != nullptr) {
    WriteChunk* done = head_;
    head_ = done->next;
    done->bytes->release();
    std::free(done);
  }
  tail_ = nullptr;
}

size_t WriteQueue::bytes() const {
  size_t n = 0;
  for (WriteChunk* c = head_; c != nullptr; c = c->next) n += c->bytes->size() - c->offset;
  return n;
}

}  // namespace myriad
