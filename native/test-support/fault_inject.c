/* fault_inject.c - an LD_PRELOAD shim that makes accept4(), sendmsg() and recv() fail with a
 * chosen errno, for the fault tests (test/fault-*.test.ts). Only calls on AF_INET/AF_INET6
 * sockets are touched, so Node's own IPC channel (a unix socket) keeps working.
 *
 * Build:  cc -shared -fPIC -O2 -o fault_inject.so native/test-support/fault_inject.c -ldl
 *         (test/fault-helpers.ts builds it on demand into build-fault/).
 *
 * Control, per call C in ACCEPT, SENDMSG, RECV (every variable optional but the first):
 *   MYRIAD_FAULT_C=ENOBUFS      the errno to inject (a name from the table below, or a number)
 *   MYRIAD_FAULT_C_AFTER=N      let the first N eligible calls through (default 0)
 *   MYRIAD_FAULT_C_COUNT=M      inject at most M times, then let everything through (default: no cap)
 *   MYRIAD_FAULT_C_P=0.25       inject with this probability per eligible call (default 1)
 *   MYRIAD_FAULT_SEED=S         seed for the probability draws (default 1; printed)
 *   MYRIAD_FAULT_ARM_FILE=PATH  inject only while PATH exists (a test arms and disarms faults
 *                               at the moment it chooses by creating and removing the file)
 * An eligible call is one on an inet socket, made while armed. An injected call does nothing
 * (no connection is taken off the backlog, no byte is sent or read) and returns -1 with errno.
 * Each injection up to the 5th per call is logged to stderr ("myriad-fault: ..."), and a summary
 * line "myriad-fault: injected accept4=N sendmsg=N recv=N" is printed at exit, so a test can
 * prove the faults really happened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

enum { K_ACCEPT, K_SENDMSG, K_RECV, K_COUNT };
static const char* const kNames[K_COUNT] = {"accept4", "sendmsg", "recv"};
static const char* const kEnv[K_COUNT] = {"MYRIAD_FAULT_ACCEPT", "MYRIAD_FAULT_SENDMSG", "MYRIAD_FAULT_RECV"};

struct rule {
  int err;             /* 0 = off */
  uint64_t after;
  uint64_t count;      /* UINT64_MAX = no cap */
  double p;
  atomic_uint_fast64_t eligible;
  atomic_uint_fast64_t injected;
};

static struct rule rules[K_COUNT];
static uint64_t seed = 1;
static const char* arm_file;
static atomic_int ready;

static const struct { const char* name; int value; } kErrnos[] = {
    {"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"ENOBUFS", ENOBUFS}, {"ENOMEM", ENOMEM},
    {"ECONNRESET", ECONNRESET}, {"ECONNABORTED", ECONNABORTED}, {"EPIPE", EPIPE},
    {"EAGAIN", EAGAIN}, {"EINTR", EINTR}, {"EIO", EIO}, {"ETIMEDOUT", ETIMEDOUT},
    {"EPERM", EPERM}, {"EPROTO", EPROTO}, {"ENETDOWN", ENETDOWN},
};

static int parse_errno(const char* s) {
  for (size_t i = 0; i < sizeof(kErrnos) / sizeof(kErrnos[0]); i++)
    if (strcmp(s, kErrnos[i].name) == 0) return kErrnos[i].value;
  return atoi(s);
}

static const char* errno_name(int e) {
  for (size_t i = 0; i < sizeof(kErrnos) / sizeof(kErrnos[0]); i++)
    if (kErrnos[i].value == e) return kErrnos[i].name;
  return "?";
}

static void summary(void) {
  char line[160];
  int n = snprintf(line, sizeof(line), "myriad-fault: injected accept4=%llu sendmsg=%llu recv=%llu\n",
                   (unsigned long long)atomic_load(&rules[K_ACCEPT].injected),
                   (unsigned long long)atomic_load(&rules[K_SENDMSG].injected),
                   (unsigned long long)atomic_load(&rules[K_RECV].injected));
  if (n > 0) (void)!write(2, line, (size_t)n);
}

__attribute__((constructor)) static void init(void) {
  const char* s = getenv("MYRIAD_FAULT_SEED");
  if (s != NULL) seed = strtoull(s, NULL, 10);
  arm_file = getenv("MYRIAD_FAULT_ARM_FILE");
  int any = 0;
  for (int k = 0; k < K_COUNT; k++) {
    char name[64];
    struct rule* r = &rules[k];
    const char* v = getenv(kEnv[k]);
    r->err = v != NULL ? parse_errno(v) : 0;
    snprintf(name, sizeof(name), "%s_AFTER", kEnv[k]);
    r->after = (v = getenv(name)) != NULL ? strtoull(v, NULL, 10) : 0;
    snprintf(name, sizeof(name), "%s_COUNT", kEnv[k]);
    r->count = (v = getenv(name)) != NULL ? strtoull(v, NULL, 10) : UINT64_MAX;
    snprintf(name, sizeof(name), "%s_P", kEnv[k]);
    r->p = (v = getenv(name)) != NULL ? atof(v) : 1.0;
    if (r->err != 0) {
      any = 1;
      fprintf(stderr, "myriad-fault: %s -> %s (after %llu, count %llu, p %g, seed %llu%s%s)\n", kNames[k],
              errno_name(r->err), (unsigned long long)r->after, (unsigned long long)r->count, r->p,
              (unsigned long long)seed, arm_file ? ", armed by " : "", arm_file ? arm_file : "");
    }
  }
  if (any) atexit(summary);
  atomic_store(&ready, 1);
}

static int is_inet(int fd) {
  int domain = 0;
  socklen_t len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return 0;
  return domain == AF_INET || domain == AF_INET6;
}

/* splitmix64 over (seed, draw number): deterministic per seed, lock-free across threads. */
static double draw(uint64_t n) {
  uint64_t z = seed + n * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* Returns the errno to inject for this call, or 0 to let it through. */
static int should_fail(int k, int fd) {
  struct rule* r = &rules[k];
  if (!atomic_load(&ready) || r->err == 0 || !is_inet(fd)) return 0;
  if (arm_file != NULL && access(arm_file, F_OK) != 0) return 0;
  const uint64_t n = atomic_fetch_add(&r->eligible, 1);
  if (n < r->after) return 0;
  if (r->p < 1.0 && draw(n * K_COUNT + (uint64_t)k) >= r->p) return 0;
  uint64_t done = atomic_load(&r->injected);
  do {
    if (done >= r->count) return 0;
  } while (!atomic_compare_exchange_weak(&r->injected, &done, done + 1));
  if (done < 5) fprintf(stderr, "myriad-fault: %s fd=%d -> %s (#%llu)\n", kNames[k], fd, errno_name(r->err),
                        (unsigned long long)done + 1);
  return r->err;
}

typedef int (*accept4_fn)(int, struct sockaddr*, socklen_t*, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr*, int);
typedef ssize_t (*recv_fn)(int, void*, size_t, int);

int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  static accept4_fn real;
  if (real == NULL) real = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
  const int e = should_fail(K_ACCEPT, fd);
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(fd, addr, len, flags);
}

ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  static sendmsg_fn real;
  if (real == NULL) real = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
  const int e = should_fail(K_SENDMSG, fd);
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(fd, msg, flags);
}

ssize_t recv(int fd, void* buf, size_t len, int flags) {
  static recv_fn real;
  if (real == NULL) real = (recv_fn)dlsym(RTLD_NEXT, "recv");
  const int e = should_fail(K_RECV, fd);
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(fd, buf, len, flags);
}
