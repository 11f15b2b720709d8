// ids.h - connection ids and kernel tokens.
//
// A connection id names (generation, reactor, slot) in one integer below 2^53, so JavaScript holds
// it as a plain number:  id = generation * 2^24 + reactor * 2^20 + slot.
// The kernel's per-socket data (epoll_data.u64, the IOCP completion key) carries a token of the
// same shape plus a kind, never a pointer: an event that arrives after its connection closed and its
// slot was reused carries the old generation and is dropped.
#pragma once
#include <cstdint>

namespace myriad {

constexpr uint32_t kSlotBits = 20;
constexpr uint32_t kMaxSlots = 1u << kSlotBits;  // per reactor
constexpr uint32_t kReactorBits = 4;
constexpr uint32_t kMaxReactors = 1u << kReactorBits;
constexpr uint32_t kGenBits = 29;  // 29 + 24 = 53
constexpr uint32_t kGenMask = (1u << kGenBits) - 1;

struct ConnRef {
  uint32_t reactor;
  uint32_t slot;
  uint32_t gen;
};

inline uint64_t make_conn_id(uint32_t reactor, uint32_t slot, uint32_t gen) {
  return (static_cast<uint64_t>(gen) << (kSlotBits + kReactorBits)) |
         (static_cast<uint64_t>(reactor) << kSlotBits) | slot;
}
inline ConnRef split_conn_id(uint64_t id) {
  return ConnRef{static_cast<uint32_t>((id >> kSlotBits) & (kMaxReactors - 1)),
                 static_cast<uint32_t>(id & (kMaxSlots - 1)),
                 static_cast<uint32_t>((id >> (kSlotBits + kReactorBits)) & kGenMask)};
}
inline bool valid_conn_id(double id) {
  return id >= 0 && id < 9007199254740992.0 && static_cast<double>(static_cast<uint64_t>(id)) == id;
}

// Kernel token: kind in the top byte, the low 24 bits of the generation, then the slot. 24 bits of
// generation are plenty to tell a stale event from a live one: a slot would have to be reused 16M
// times between an event's arrival and its handling.
enum class TokenKind : uint8_t { Conn = 1, Listener = 2, Wake = 3 };
inline uint64_t make_token(TokenKind kind, uint32_t slot, uint32_t gen) {
  return (static_cast<uint64_t>(kind) << 56) | (static_cast<uint64_t>(gen & 0xffffffu) << 32) | slot;
}
inline TokenKind token_kind(uint64_t t) { return static_cast<TokenKind>(t >> 56); }
inline uint32_t token_slot(uint64_t t) { return static_cast<uint32_t>(t); }
inline uint32_t token_gen(uint64_t t) { return static_cast<uint32_t>((t >> 32) & 0xffffffu); }

}  // namespace myriad
