// The write queue: partial writes, gathering, and shared buffers held by many queues at once
// (what a broadcast does) released exactly when the last queue is done with them.
#include <sys/uio.h>

#include <cstring>
#include <vector>

#include "check.h"
#include "write_queue.h"

using namespace myriad;

static int gather(WriteQueue& q, iovec* iov, int n) {
  return q.gather(iov, n, [](iovec* v, const uint8_t* p, size_t l) {
    v->iov_base = const_cast<uint8_t*>(p);
    v->iov_len = l;
  });
}

int main() {
  WriteQueue q;
  CHECK(q.empty());
  SharedBytes* a = SharedBytes::copy_of("hello ", 6);
  SharedBytes* b = SharedBytes::copy_of("world", 5);
  CHECK(q.push(a, 0));
  CHECK(q.push(b, 0));
  CHECK_EQ(q.bytes(), 11u);
  iovec iov[8];
  CHECK_EQ(gather(q, iov, 8), 2);
  CHECK_EQ(iov[0].iov_len, 6u);
  q.consume(4);  // partial: "o " + "world" left
  CHECK_EQ(q.bytes(), 7u);
  CHECK_EQ(gather(q, iov, 8), 2);
  CHECK(std::memcmp(iov[0].iov_base, "o ", 2) == 0);
  q.consume(2 + 3);
  CHECK_EQ(q.bytes(), 2u);
  CHECK_EQ(gather(q, iov, 8), 1);
  CHECK(std::memcmp(iov[0].iov_base, "ld", 2) == 0);
  q.consume(2);
  CHECK(q.empty());

  // One block shared by 1000 queues: freed when the last one lets go (ASan checks both ways).
  SharedBytes* shared = SharedBytes::copy_of("broadcast", 9, 1000);
  std::vector<WriteQueue> queues(1000);
  for (auto& wq : queues) CHECK(wq.push(shared, 0));
  for (size_t i = 0; i < queues.size(); i++) {
    if (i % 2 == 0) {
      queues[i].consume(4);
      queues[i].consume(5);
    } else {
      queues[i].clear();
    }
    CHECK(queues[i].empty());
  }

  // Empty blocks complete as soon as they reach the head.
  CHECK(q.push(SharedBytes::copy_of("", 0), 0));
  CHECK(q.push(SharedBytes::copy_of("x", 1), 0));
  q.consume(0);
  CHECK_EQ(q.bytes(), 1u);
  q.consume(1);
  CHECK(q.empty());
  // gather caps at max_iov
  for (int i = 0; i < 100; i++) CHECK(q.push(SharedBytes::copy_of("ab", 2), 0));
  CHECK_EQ(gather(q, iov, 8), 8);
  q.clear();
  return check_result("write_queue");
}
