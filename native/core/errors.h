// errors.h - the one error table. Every OS failure that leaves native/core is a libuv-style errno
// (negative; on Linux simply -errno, on Windows libuv's fixed UV__E* values) so JS gets the same
// `code`/`errno` pair node:net would give on that platform. `Syscall` names the call that failed.
#pragma once
#include <cstdint>

namespace myriad {

// Names of the system calls an error can come from. The JS layer indexes kSyscallNames by value.
enum class Syscall : uint8_t {
  None = 0, Socket, Bind, Listen, Accept, Connect, Read, Write, Shutdown, Setsockopt, Getsockname,
  EpollCtl, Count
};
extern const char* const kSyscallNames[static_cast<int>(Syscall::Count)];

// Converts the calling thread's last socket error (errno / WSAGetLastError()) or a given platform
// code into the portable negative errno.
int last_socket_error();
int portable_error(int platform_code);

struct ErrorName {
  const char* code;     // "ECONNREFUSED"
  const char* message;  // "connection refused" (libuv's wording)
};
// Name and message for a portable errno; unknown values give {"UNKNOWN", "unknown error"}.
ErrorName error_name(int portable_errno);

// Not an OS error: a reactor closed a connection because a broadcast would have passed its
// max_buffered (SlowPolicy::Close). Outside every errno range; JS names it ERR_SLOW_CONSUMER.
constexpr int kErrSlowConsumer = -100001;

// A handful of portable values the core itself compares against.
int err_again();
int err_inprogress();
int err_addrnotavail();
int err_addrinuse();
int err_timedout();
int err_canceled();
int err_connreset();
int err_connrefused();
int err_mfile();
int err_nfile();
int err_nobufs();
int err_nomem();

}  // namespace myriad
