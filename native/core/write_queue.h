// write_queue.h - a connection's pending output: a singly linked list of (shared bytes, offset).
// Nodes are allocated only for bytes the kernel did not take at once, so the common case (socket
// buffer has room) allocates nothing beyond the SharedBytes itself.
#pragma once
#include <cstddef>
#include <cstdint>

#include "shared_bytes.h"

namespace myriad {

struct WriteChunk {
  WriteChunk* next;
  SharedBytes* bytes;
  uint32_t offset;  // first unsent byte
};

class WriteQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  // Takes over one reference to bytes; `offset` bytes of it were already sent.
  bool push(SharedBytes* bytes, uint32_t offset);
  // Fills up to max_iov (pointer, length) pairs from the head; returns how many.
  template <typename IoVec, typename Fill>
  int gather(IoVec* iov, int max_iov, Fill fill) const {
    int n = 0;
    for (WriteChunk* c = head_; c != nullptr && n < max_iov; c = c->next, n++)
      fill(&iov[n], c->bytes->data() + c->offset, c->bytes->size() - c->offset);
    return n;
  }
  // Drops `sent` bytes from the head, releasing fully sent chunks.
  void consume(size_t sent);
  // Releases everything (destroy, close).
  void clear();
  // Bytes still queued (walks the list; used only by tests and slow paths).
  size_t bytes() const;

 private:
  WriteChunk* head_ = nullptr;
  WriteChunk* tail_ = nullptr;
};

}  // namespace myriad
