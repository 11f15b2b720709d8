// platform.h - the few names that differ between the backends (socket handle type, clock),
// so that everything else in native/core/ is written once.
#pragma once
#include <cstdint>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX  // windows.h's min/max macros would break std::min/std::max
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600  // Vista+: GetQueuedCompletionStatusEx, SetFileCompletionNotificationModes
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
namespace myriad {
using sock_t = SOCKET;
constexpr sock_t kInvalidSock = INVALID_SOCKET;
}  // namespace myriad
#else
#include <netinet/in.h>
#include <sys/socket.h>
namespace myriad {
using sock_t = int;
constexpr sock_t kInvalidSock = -1;
}  // namespace myriad
#endif

namespace myriad {
// Monotonic milliseconds; the timer wheel and idle timeouts run on it.
uint64_t now_ms();
// close()/closesocket(), result checked and counted by the backend.
void close_socket(sock_t s);
}  // namespace myriad
