// errors.cc - the error table (names and messages follow libuv's uv_err_name/uv_strerror, so a
// myriad error reads exactly like the node:net error for the same failure).
#include "errors.h"

#include <cerrno>

#ifdef _WIN32
#include "platform.h"
#endif

namespace myriad {

const char* const kSyscallNames[static_cast<int>(Syscall::Count)] = {
    "", "socket", "bind", "listen", "accept", "connect", "read", "write", "shutdown", "setsockopt",
    "getsockname",
#ifdef _WIN32
    "CreateIoCompletionPort"  // Syscall::EpollCtl: registering a socket with the reactor's kernel queue
#else
    "epoll_ctl"
#endif
};

// X(name, libuv message, windows-libuv-value). On POSIX the value is -errno of the same name.
// The Windows values are libuv's UV__E* constants (include/uv/errno.h), checked against
// util.getSystemErrorMap() of the Windows node.exe. libuv has no EINPROGRESS on Windows: -4100 lies
// outside its range (-4095..-3000), so it can never name another error there.
#define MYRIAD_ERRORS(X)                                              \
  X(EACCES, "permission denied", -4092)                               \
  X(EADDRINUSE, "address already in use", -4091)                      \
  X(EADDRNOTAVAIL, "address not available", -4090)                    \
  X(EAFNOSUPPORT, "address family not supported", -4089)              \
  X(EAGAIN, "resource temporarily unavailable", -4088)                \
  X(EALREADY, "connection already in progress", -4084)                \
  X(EBADF, "bad file descriptor", -4083)                              \
  X(EBUSY, "resource busy or locked", -4082)                          \
  X(ECANCELED, "operation canceled", -4081)                           \
  X(ECONNABORTED, "software caused connection abort", -4079)          \
  X(ECONNREFUSED, "connection refused", -4078)                        \
  X(ECONNRESET, "connection reset by peer", -4077)                    \
  X(EHOSTUNREACH, "host is unreachable", -4073)                       \
  X(EINTR, "interrupted system call", -4072)                          \
  X(EINVAL, "invalid argument", -4071)                                \
  X(EISCONN, "socket is already connected", -4069)                    \
  X(EMFILE, "too many open files", -4066)                             \
  X(EMSGSIZE, "message too long", -4065)                              \
  X(ENETDOWN, "network is down", -4063)                               \
  X(ENETUNREACH, "network is unreachable", -4062)                     \
  X(ENFILE, "file table overflow", -4061)                             \
  X(ENOBUFS, "no buffer space available", -4060)                      \
  X(ENOMEM, "not enough memory", -4057)                               \
  X(ENOPROTOOPT, "protocol not available", -4035)                     \
  X(ENOTCONN, "socket is not connected", -4053)                       \
  X(ENOTSOCK, "socket operation on non-socket", -4050)                \
  X(ENOTSUP, "operation not supported on socket", -4049)              \
  X(EPERM, "operation not permitted", -4048)                          \
  X(EPIPE, "broken pipe", -4047)                                      \
  X(EPROTONOSUPPORT, "protocol not supported", -4045)                 \
  X(ETIMEDOUT, "connection timed out", -4039)                         \
  X(EINPROGRESS, "operation in progress", -4100)

#ifndef _WIN32
#define MYRIAD_PORTABLE(name) (-(name))
#define MYRIAD_ROW_VALUE(name, win) (-(name))
#else
#define MYRIAD_PORTABLE(name) (MYRIAD_WIN_##name)
// Inside X() the name is macro-expanded first (mingw's <errno.h> defines ECONNREFUSED & co as
// numbers), so a row's Windows value is taken from the row itself.
#define MYRIAD_ROW_VALUE(name, win) (win)
#define X(name, msg, win) constexpr int MYRIAD_WIN_##name = (win);
MYRIAD_ERRORS(X)
#undef X
#endif

ErrorName error_name(int e) {
#define X(name, msg, win) \
  if (e == MYRIAD_ROW_VALUE(name, win)) return ErrorName{#name, msg};
  MYRIAD_ERRORS(X)
#undef X
  return ErrorName{"UNKNOWN", "unknown error"};
}

int err_again() { return MYRIAD_PORTABLE(EAGAIN); }
int err_inprogress() { return MYRIAD_PORTABLE(EINPROGRESS); }
int err_addrnotavail() { return MYRIAD_PORTABLE(EADDRNOTAVAIL); }
int err_addrinuse() { return MYRIAD_PORTABLE(EADDRINUSE); }
int err_timedout() { return MYRIAD_PORTABLE(ETIMEDOUT); }
int err_canceled() { return MYRIAD_PORTABLE(ECANCELED); }
int err_connreset() { return MYRIAD_PORTABLE(ECONNRESET); }
int err_connrefused() { return MYRIAD_PORTABLE(ECONNREFUSED); }
int err_mfile() { return MYRIAD_PORTABLE(EMFILE); }
int err_nfile() { return MYRIAD_PORTABLE(ENFILE); }
int err_nobufs() { return MYRIAD_PORTABLE(ENOBUFS); }
int err_nomem() { return MYRIAD_PORTABLE(ENOMEM); }

#ifndef _WIN32
int portable_error(int platform_code) { return -platform_code; }
int last_socket_error() { return -errno; }
#else
// Winsock and Win32 codes (completions report Win32 codes, calls report WSA codes), mapped as
// libuv's uv_translate_sys_error maps them, so an error reads as node:net's does on Windows.
int portable_error(int c) {
  switch (c) {
    case 0: return 0;
    case WSAEACCES: case ERROR_ACCESS_DENIED: case ERROR_NOACCESS: return MYRIAD_PORTABLE(EACCES);
    case WSAEADDRINUSE: case ERROR_ADDRESS_ALREADY_ASSOCIATED: return MYRIAD_PORTABLE(EADDRINUSE);
    case WSAEADDRNOTAVAIL: return MYRIAD_PORTABLE(EADDRNOTAVAIL);
    case WSAEAFNOSUPPORT: return MYRIAD_PORTABLE(EAFNOSUPPORT);
    case WSAEWOULDBLOCK: return MYRIAD_PORTABLE(EAGAIN);
    case WSAEALREADY: return MYRIAD_PORTABLE(EALREADY);
    case WSAEBADF: case ERROR_INVALID_HANDLE: case ERROR_INVALID_FLAGS: return MYRIAD_PORTABLE(EBADF);
    case ERROR_OPERATION_ABORTED: case WSAEINTR:  // (= WSA_OPERATION_ABORTED); libuv: WSAEINTR too
      return MYRIAD_PORTABLE(ECANCELED);
    case WSAECONNABORTED: case ERROR_CONNECTION_ABORTED: return MYRIAD_PORTABLE(ECONNABORTED);
    case WSAECONNREFUSED: case ERROR_CONNECTION_REFUSED: return MYRIAD_PORTABLE(ECONNREFUSED);
    case WSAECONNRESET: case WSAENETRESET: case ERROR_NETNAME_DELETED: return MYRIAD_PORTABLE(ECONNRESET);
    case WSAEHOSTUNREACH: case ERROR_HOST_UNREACHABLE: return MYRIAD_PORTABLE(EHOSTUNREACH);
    case WSAEINVAL: case ERROR_INVALID_PARAMETER: case ERROR_INSUFFICIENT_BUFFER:
    case ERROR_INVALID_DATA: case WSAEPFNOSUPPORT:
      return MYRIAD_PORTABLE(EINVAL);
    case WSAEISCONN: return MYRIAD_PORTABLE(EISCONN);
    case WSAEMFILE: case ERROR_TOO_MANY_OPEN_FILES: return MYRIAD_PORTABLE(EMFILE);
    case WSAEMSGSIZE: return MYRIAD_PORTABLE(EMSGSIZE);
    case WSAENETDOWN: return MYRIAD_PORTABLE(ENETDOWN);
    case WSAENETUNREACH: case ERROR_NETWORK_UNREACHABLE: return MYRIAD_PORTABLE(ENETUNREACH);
    case WSAENOBUFS: return MYRIAD_PORTABLE(ENOBUFS);
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY:  // (= WSA_NOT_ENOUGH_MEMORY)
      return MYRIAD_PORTABLE(ENOMEM);
    case WSAENOPROTOOPT: return MYRIAD_PORTABLE(ENOPROTOOPT);
    case WSAENOTCONN: case ERROR_NOT_CONNECTED: return MYRIAD_PORTABLE(ENOTCONN);
    case WSAENOTSOCK: return MYRIAD_PORTABLE(ENOTSOCK);
    case WSAEOPNOTSUPP: case ERROR_NOT_SUPPORTED: return MYRIAD_PORTABLE(ENOTSUP);
    case ERROR_PRIVILEGE_NOT_HELD: return MYRIAD_PORTABLE(EPERM);
    case WSAESHUTDOWN: case ERROR_BROKEN_PIPE: case ERROR_BAD_PIPE: case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
      return MYRIAD_PORTABLE(EPIPE);
    case WSAEPROTONOSUPPORT: return MYRIAD_PORTABLE(EPROTONOSUPPORT);
    case WSAETIMEDOUT: case ERROR_SEM_TIMEOUT: return MYRIAD_PORTABLE(ETIMEDOUT);
    case WSAEINPROGRESS: case ERROR_IO_PENDING: return MYRIAD_PORTABLE(EINPROGRESS);
    default: return -4094;  // UV_UNKNOWN
  }
}
int last_socket_error() { return portable_error(WSAGetLastError()); }
#endif

}  // namespace myriad
