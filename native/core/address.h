// address.h - compact IPv4/IPv6 endpoints. A connection stores two of these (24 bytes each)
// instead of two sockaddr_storage (128 bytes each), and the JS layer formats them only when asked.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "platform.h"

namespace myriad {

struct Endpoint {
  uint8_t family = 0;     // 0 = unset, 4 or 6
  uint16_t port = 0;      // host byte order
  uint8_t addr[16] = {};  // network byte order; IPv4 uses the first 4 bytes
  uint32_t scope_id = 0;  // IPv6 link-local zone

  bool is_set() const { return family != 0; }
  bool is_any() const;  // 0.0.0.0 or ::
  bool same_as(const Endpoint& o) const;  // family, address, port and zone
  bool same_address(const Endpoint& o) const;  // family, address and zone (any port)
};

// Parses an IP literal ("127.0.0.1", "::1", "fe80::1%2"; no brackets, no names) and a port.
// Returns false for anything else: the JS layer validates first, and this is the parser the
// fuzzer drives.
bool parse_ip(const char* text, size_t len, uint16_t port, Endpoint* out);
// Parses "host:port", "[v6]:port" (what tests and the fuzzer feed). False on malformed input.
bool parse_host_port(const char* text, size_t len, Endpoint* out);

// To and from the kernel's representation. to_sockaddr returns the length to pass to bind/connect.
socklen_t to_sockaddr(const Endpoint& ep, sockaddr_storage* out);
bool from_sockaddr(const sockaddr* sa, Endpoint* out);

// The socket's own endpoint (getsockname). Implemented by the backend.
bool socket_local_endpoint(sock_t s, Endpoint* out);

// Text form of the address (no port, no brackets), as node:net reports remoteAddress.
std::string format_ip(const Endpoint& ep);

}  // namespace myriad
