// Address parsing: what the JS layer and the fuzzer feed the native parser.
#include <cstring>
#include <string>

#include "address.h"
#include "check.h"

using namespace myriad;

static bool hp(const char* s, Endpoint* e) { return parse_host_port(s, std::strlen(s), e); }

int main() {
  Endpoint e;
  CHECK(hp("127.0.0.1:9000", &e));
  CHECK_EQ(e.family, 4);
  CHECK_EQ(e.port, 9000);
  CHECK_EQ(format_ip(e), std::string("127.0.0.1"));
  CHECK(hp("[::1]:80", &e));
  CHECK_EQ(e.family, 6);
  CHECK_EQ(format_ip(e), std::string("::1"));
  CHECK(hp("[fe80::1%2]:1", &e));
  CHECK_EQ(e.scope_id, 2u);
  CHECK(hp("0.0.0.0:0", &e));
  CHECK(e.is_any());
  CHECK(hp("[::]:65535", &e) && e.is_any() && e.port == 65535);
  // malformed
  const char* bad[] = {"", ":", "1.2.3:80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1",
                       "[::1:80", "::1:80", "[::1]80", "[::1]:", "host:80", "127.0.0.1:80x", "[]:80",
                       "127.0.0.1:123456", "[::1]:8%0", "1.2.3.4.5:1", "[fe80::1%]:1"};
  for (const char* b : bad) {
    bool ok = hp(b, &e);
    if (ok) std::fprintf(stderr, "accepted bad input '%s'\n", b);
    CHECK(!ok);
  }
  // embedded NUL is never an address
  const char nul[] = {'1', '2', '7', '.', '0', '.', '0', '.', '1', '\0', ':', '1'};
  CHECK(!parse_host_port(nul, sizeof(nul), &e));
  // round trip through sockaddr
  CHECK(hp("[2001:db8::5]:443", &e));
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(e, &ss);
  CHECK(len > 0);
  Endpoint back;
  CHECK(from_sockaddr(reinterpret_cast<sockaddr*>(&ss), &back));
  CHECK_EQ(back.port, 443);
  CHECK_EQ(format_ip(back), std::string("2001:db8::5"));
  return check_result("address");
}
