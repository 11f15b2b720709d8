// address.cc - endpoint parsing and conversion (inet_pton/inet_ntop do the real work).
#include "address.h"

#include <cstring>

#ifndef _WIN32
#include <arpa/inet.h>
#include <net/if.h>
#endif

namespace myriad {

bool Endpoint::is_any() const {
  const size_t n = family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; i++)
    if (addr[i] != 0) return false;
  return true;
}

bool Endpoint::same_as(const Endpoint& o) const { return port == o.port && same_address(o); }

bool Endpoint::same_address(const Endpoint& o) const {
  if (family != o.family || scope_id != o.scope_id) return false;
  const size_t n = family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; i++)
    if (addr[i] != o.addr[i]) return false;
  return true;
}

bool parse_ip(const char* text, size_t len, uint16_t port, Endpoint* out) {
  char buf[64];
  if (len == 0 || len >= sizeof(buf) || std::memchr(text, '\0', len) != nullptr) return false;
  std::memcpy(buf, text, len);
  buf[len] = '\0';
  Endpoint ep;
  ep.port = port;
  if (inet_pton(AF_INET, buf, ep.addr) == 1) {
    ep.family = 4;
    *out = ep;
    return true;
  }
  char* zone = std::strchr(buf, '%');
  if (zone != nullptr) {
    *zone++ = '\0';
    if (*zone == '\0') return false;
    char* end = nullptr;
    unsigned long id = std::strtoul(zone, &end, 10);
    if (end != nullptr && *end == '\0' && id <= 0xffffffffUL) {
      ep.scope_id = static_cast<uint32_t>(id);
    } else {
#ifndef _WIN32
      ep.scope_id = if_nametoindex(zone);
      if (ep.scope_id == 0) return false;
#else
      return false;
#endif
    }
  }
  if (inet_pton(AF_INET6, buf, ep.addr) != 1) return false;
  ep.family = 6;
  *out = ep;
  return true;
}

bool parse_host_port(const char* text, size_t len, Endpoint* out) {
  if (len == 0) return false;
  const char* host;
  size_t host_len;
  const char* rest;
  if (text[0] == '[') {
    const char* close = static_cast<const char*>(std::memchr(text, ']', len));
    if (close == nullptr) return false;
    host = text + 1;
    host_len = static_cast<size_t>(close - host);
    rest = close + 1;
    if (rest >= text + len || *rest != ':') return false;
  } else {
    // The last ':' separates the port; a bare IPv6 literal must be bracketed.
    const char* colon = nullptr;
    for (const char* p = text; p < text + len; p++)
      if (*p == ':') {
        if (colon != nullptr) return false;
        colon = p;
      }
    if (colon == nullptr) return false;
    host = text;
    host_len = static_cast<size_t>(colon - text);
    rest = colon;
  }
  const char* digits = rest + 1;
  const char* end = text + len;
  if (digits >= end || end - digits > 5) return false;
  uint32_t port = 0;
  for (const char* p = digits; p < end; p++) {
    if (*p < '0' || *p > '9') return false;
    port = port * 10 + static_cast<uint32_t>(*p - '0');
  }
  if (port > 65535) return false;
  // Brackets are for IPv6 only: "[127.0.0.1]:80" is malformed, as lib/address.ts says too.
  // (Found by native/fuzz/fuzz_address.cc: the bracketed form used to accept IPv4.)
  Endpoint ep;
  if (!parse_ip(host, host_len, static_cast<uint16_t>(port), &ep)) return false;
  if (text[0] == '[' && ep.family != 6) return false;
  *out = ep;
  return true;
}

socklen_t to_sockaddr(const Endpoint& ep, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  if (ep.family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(ep.port);
    std::memcpy(&sin->sin_addr, ep.addr, 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(ep.port);
  std::memcpy(&sin6->sin6_addr, ep.addr, 16);
  sin6->sin6_scope_id = ep.scope_id;
  return sizeof(sockaddr_in6);
}

bool from_sockaddr(const sockaddr* sa, Endpoint* out) {
  Endpoint ep;
  if (sa->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof(sin));
    ep.family = 4;
    ep.port = ntohs(sin.sin_port);
    std::memcpy(ep.addr, &sin.sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof(sin6));
    ep.family = 6;
    ep.port = ntohs(sin6.sin6_port);
    std::memcpy(ep.addr, &sin6.sin6_addr, 16);
    ep.scope_id = sin6.sin6_scope_id;
  } else {
    return false;
  }
  *out = ep;
  return true;
}

std::string format_ip(const Endpoint& ep) {
  char buf[INET6_ADDRSTRLEN + 16];
  if (ep.family == 0) return std::string();
  if (inet_ntop(ep.family == 4 ? AF_INET : AF_INET6, ep.addr, buf, sizeof(buf)) == nullptr)
    return std::string();
  std::string s(buf);
  if (ep.family == 6 && ep.scope_id != 0) s += "%" + std::to_string(ep.scope_id);
  return s;
}

}  // namespace myriad
