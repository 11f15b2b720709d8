// shared_bytes.h - an immutable, reference-counted byte block. One conn.write() makes one; one
// broadcast makes one for every member, and each member's write queue holds a reference until
// its last partial write has gone out.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace myriad {

class SharedBytes {
 public:
  // Copies len bytes from src. Returns nullptr when out of memory.
  static SharedBytes* copy_of(const void* src, size_t len, uint32_t refs = 1) {
    SharedBytes* b = allocate(len, 0, refs);
    if (b != nullptr && len != 0) std::memcpy(b->data(), src, len);
    return b;
  }
  // Uninitialised room for len bytes plus `slack` (for a writer that appends a terminator).
  static SharedBytes* allocate(size_t len, size_t slack, uint32_t refs = 1) {
    if (len > UINT32_MAX) return nullptr;
    void* mem = std::malloc(sizeof(SharedBytes) + len + slack + 1);
    if (mem == nullptr) return nullptr;
    return new (mem) SharedBytes(static_cast<uint32_t>(len), refs);
  }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
  uint32_t size() const { return len_; }
  void retain(uint32_t n = 1) { refs_.fetch_add(n, std::memory_order_relaxed); }
  void release() {
    // acq_rel: the thread that frees must see every other thread's last use of the bytes.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      this->~SharedBytes();
      std::free(this);
    }
  }

 private:
  SharedBytes(uint32_t len, uint32_t refs) : refs_(refs), len_(len) {}
  std::atomic<uint32_t> refs_;
  uint32_t len_;
};

}  // namespace myriad
