// fuzz_address.cc - libFuzzer target for the native address parsers (native/core/address.cc).
//
// Every input is fed to parse_host_port() as "host:port" text and, split after its first two
// bytes (the port), to parse_ip(). Besides "no crash, no sanitizer report", each accepted input
// must keep these invariants:
//   - family is 4 or 6, and an IPv4 endpoint has no zone;
//   - format_ip() gives a non-empty literal that parses back (parse_ip) to the same endpoint,
//     and "[v6]:port" / "v4:port" built from it parses back through parse_host_port() too;
//   - to_sockaddr() -> from_sockaddr() is the identity;
//   - the port parse_host_port() returned is the decimal number after the separator.
// Build and run: scripts/test-hardening.sh (clang -fsanitize=fuzzer,address,undefined).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "address.h"

using myriad::Endpoint;

namespace {

[[noreturn]] void fail(const char* what, const uint8_t* data, size_t size) {
  std::fprintf(stderr, "fuzz_address: invariant broken: %s; input (%zu bytes): '", what, size);
  for (size_t i = 0; i < size; i++) {
    const int c = data[i];
    if (c >= 0x20 && c < 0x7f) std::fputc(c, stderr);
    else std::fprintf(stderr, "\\x%02x", c);
  }
  std::fprintf(stderr, "'\n");
  std::abort();  // libFuzzer saves the input as a crash-* file
}

bool same(const Endpoint& a, const Endpoint& b) {
  return a.family == b.family && a.port == b.port && a.scope_id == b.scope_id &&
         std::memcmp(a.addr, b.addr, a.family == 4 ? 4 : 16) == 0;
}

void check_endpoint(const Endpoint& ep, const uint8_t* data, size_t size) {
  if (ep.family != 4 && ep.family != 6) fail("family is neither 4 nor 6", data, size);
  if (ep.family == 4 && ep.scope_id != 0) fail("IPv4 endpoint with a zone", data, size);
  const std::string text = myriad::format_ip(ep);
  if (text.empty()) fail("format_ip() gave nothing for an accepted endpoint", data, size);
  Endpoint back;
  if (!myriad::parse_ip(text.data(), text.size(), ep.port, &back)) fail("format_ip() output does not parse", data, size);
  if (!same(ep, back)) fail("parse_ip(format_ip(ep)) != ep", data, size);
  const std::string hp = ep.family == 6 ? "[" + text + "]:" + std::to_string(ep.port) : text + ":" + std::to_string(ep.port);
  Endpoint back2;
  if (!myriad::parse_host_port(hp.data(), hp.size(), &back2)) fail("host:port built from format_ip() does not parse", data, size);
  if (!same(ep, back2)) fail("parse_host_port(host:port of ep) != ep", data, size);
  sockaddr_storage ss;
  const socklen_t len = myriad::to_sockaddr(ep, &ss);
  if (len != (ep.family == 4 ? sizeof(sockaddr_in) : sizeof(sockaddr_in6))) fail("to_sockaddr() length", data, size);
  Endpoint back3;
  if (!myriad::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), &back3)) fail("from_sockaddr() refused to_sockaddr() output", data, size);
  if (!same(ep, back3)) fail("from_sockaddr(to_sockaddr(ep)) != ep", data, size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The parsers take (pointer, length): copy into an exact-size heap block so ASan sees any
  // read past the end (a fuzzer buffer may have slack after it).
  if (size == 0) {
    Endpoint none;
    if (myriad::parse_host_port("", 0, &none)) fail("accepted empty input", data, size);
    return 0;
  }
  char* text = static_cast<char*>(std::malloc(size));
  if (text == nullptr) return 0;
  std::memcpy(text, data, size);

  Endpoint ep;
  if (myriad::parse_host_port(text, size, &ep)) {
    check_endpoint(ep, data, size);
    // The port is the decimal number after the last ':' (1-5 digits).
    const char* colon = nullptr;
    for (size_t i = 0; i < size; i++)
      if (text[i] == ':') colon = text + i;
    if (colon == nullptr) fail("accepted without a ':'", data, size);
    const std::string digits(colon + 1, static_cast<size_t>(text + size - (colon + 1)));
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
      fail("accepted a malformed port", data, size);
    if (std::strtoul(digits.c_str(), nullptr, 10) != ep.port) fail("wrong port", data, size);
    // An unbracketed host has no ':' in it, a bracketed one is IPv6.
    if (text[0] == '[' && ep.family != 6) fail("bracketed non-IPv6 host accepted", data, size);
    if (text[0] != '[' && std::memchr(text, ':', static_cast<size_t>(colon - text)) != nullptr)
      fail("unbracketed host with ':' accepted", data, size);
  }

  if (size >= 2) {
    const uint16_t port = static_cast<uint16_t>(data[0] << 8 | data[1]);
    Endpoint ip;
    if (myriad::parse_ip(text + 2, size - 2, port, &ip)) {
      if (ip.port != port) fail("parse_ip() changed the port", data, size);
      check_endpoint(ip, data, size);
      // Without a zone, an IP literal is made of hex digits, ':' and '.' only.
      if (std::memchr(text + 2, '%', size - 2) == nullptr)
        for (size_t i = 2; i < size; i++) {
          const char c = text[i];
          if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
            fail("parse_ip() accepted a character no IP literal has", data, size);
        }
    }
  }
  std::free(text);
  return 0;
}
