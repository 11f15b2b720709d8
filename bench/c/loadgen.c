// loadgen.c - single-threaded epoll TCP load generator (Linux). Sockets are nonblocking and
// edge-triggered; source IPs and targets are used round-robin, each socket bound with
// IP_BIND_ADDRESS_NO_PORT + port 0 so the kernel picks the port at connect() per 4-tuple.
//   connect: open N (at most -i connecting at once), print the JSON once all settle, then hold
//            until SIGTERM or --hold-seconds.
//   churn:   for -T s keep -c connections cycling: connect, shutdown(WR), wait for server FIN, close.
//   recv:    open N; for k = 1..R print a line when every connection has >= k*B bytes, with the
//            time since the round's first byte arrived.
//   echo:    open N; each keeps P S-byte messages outstanding; count echoes over -T s after --warmup.
// Output: human lines, then ONE JSON line at the end of the measurement.
// Build: gcc -O2 -Wall -Wextra -o loadgen loadgen.c
//
// myriad bench copy: the anchors' loadgen (../shared/anchors/loadgen.c) plus echo latency. Each
// connection keeps a ring of the send times of its outstanding messages (at most P); an echoed
// message completes the oldest one (TCP keeps order). Latencies inside the measurement window go
// into a 1-us histogram; the JSON line gains lat_p50_us, lat_p99_us, lat_max_us. And a "window:"
// line when the echo measurement window opens (for CPU sampling). And, in connect mode, the
// CLOCK_MONOTONIC times of its start and of its last connection (start_mono_s, end_mono_s), so
// several processes' wall time can be read across them, and its CPU time by then (cpu_user_s,
// cpu_sys_s). Nothing else differs.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { M_CONNECT, M_CHURN, M_RECV, M_ECHO };
enum { S_FREE, S_CONNECTING, S_ESTAB, S_CLOSING };
struct conn { uint8_t state; uint32_t owed; uint64_t rx; uint64_t tx; uint32_t rhead, rcount; };

static struct sockaddr_in tgt[64], src[256];
static int ntgt, nsrc, mode = M_CONNECT, epfd;
static long N = 1000, inflight_max = 1000, conc = 256, P = 1, S = 64, B = 64, rounds = 1;
static double hold_s = -1, dur_s = 5, warm_s = 1, timeout_s = 120;
static struct conn *C;  // indexed by fd
static long opened, connecting, estab, failed, completed, estab_at_first_err = -1, live;
static int first_err;
static long err_by[256];
static double t_start, t_all = -1, t_win0 = -1;
static struct rusage ru_all;  // the process's CPU time when the last connection was established
static uint64_t msgs, msgs_win0;
static double *rfirst, *rdone; static long *rcount;
static volatile sig_atomic_t stop;
static char zbuf[65536], rbuf[65536];  // zeros we send; scratch for what we read
// Echo latency: per-fd ring of send times (P slots each), histogram in microseconds.
#define LAT_BUCKETS 1000000
static double *ring; static uint32_t *lat_hist; static uint64_t lat_n, lat_over; static double lat_max;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void die(const char *m) { perror(m); exit(2); }
static void on_sig(int s) { (void)s; stop = 1; }

static int parse_addr(const char *s, struct sockaddr_in *a, int need_port) {
  char h[64]; const char *c = strrchr(s, ':'); int port = 0;
  if (c) { snprintf(h, sizeof h, "%.*s", (int)(c - s), s); port = atoi(c + 1); } else snprintf(h, sizeof h, "%s", s);
  if (need_port && !c) return -1;
  memset(a, 0, sizeof *a); a->sin_family = AF_INET; a->sin_port = htons(port);
  return inet_pton(AF_INET, h, &a->sin_addr) == 1 ? 0 : -1;
}

static void note_err(int e) {
  if (estab_at_first_err < 0) { estab_at_first_err = estab; first_err = e; }
  err_by[e & 255]++; failed++;
}

static void close_conn(int fd) {
  if (C[fd].state == S_CONNECTING) connecting--;
  if (C[fd].state == S_ESTAB || C[fd].state == S_CLOSING) live--;
  C[fd].state = S_FREE; close(fd);
}

// Open one nonblocking connection: source IPs and targets round-robin, kernel picks the port at connect().
static int open_one(void) {
  long i = opened++;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) { note_err(errno); return -1; }
  int one = 1;
  if (mode == M_ECHO) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (nsrc) {
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0) die("IP_BIND_ADDRESS_NO_PORT");
    if (bind(fd, (struct sockaddr *)&src[i % nsrc], sizeof src[0]) < 0) { note_err(errno); close(fd); return -1; }
  }
  if (connect(fd, (struct sockaddr *)&tgt[i % ntgt], sizeof tgt[0]) < 0 && errno != EINPROGRESS) {
    note_err(errno); close(fd); return -1;
  }
  C[fd] = (struct conn){ .state = S_CONNECTING };
  connecting++;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd };
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  return 0;
}

static void flush_owed(int fd) {  // echo: send what we owe (new requests) until EAGAIN
  while (C[fd].owed) {
    size_t n = C[fd].owed < sizeof zbuf ? C[fd].owed : sizeof zbuf;
    ssize_t w = write(fd, zbuf, n);
    if (w < 0) { if (errno != EAGAIN) close_conn(fd); return; }
    C[fd].owed -= w;
    uint64_t msgs_out = (C[fd].tx + w) / S - C[fd].tx / S;  // messages whose last byte left now
    C[fd].tx += w;
    if (msgs_out) {
      double t = now();
      for (uint64_t k = 0; k < msgs_out && C[fd].rcount < (uint32_t)P; k++) {
        ring[(size_t)fd * P + (C[fd].rhead + C[fd].rcount) % P] = t; C[fd].rcount++;
      }
    }
  }
}

static void lat_record(int fd, uint64_t done, double t) {
  for (uint64_t k = 0; k < done && C[fd].rcount; k++) {
    double t0 = ring[(size_t)fd * P + C[fd].rhead];
    C[fd].rhead = (C[fd].rhead + 1) % P; C[fd].rcount--;
    if (t_win0 < 0) continue;  // warm-up: not counted
    double us = (t - t0) * 1e6;
    if (us > lat_max) lat_max = us;
    if (us < 0) us = 0;
    if (us >= LAT_BUCKETS) lat_over++; else lat_hist[(long)us]++;
    lat_n++;
  }
}

static double lat_pct(double q) {
  uint64_t want = (uint64_t)(q * lat_n), seen = 0;
  for (long i = 0; i < LAT_BUCKETS; i++) { seen += lat_hist[i]; if (seen > want) return i + 0.5; }
  return lat_max;
}

static void on_rx(int fd, uint64_t old, uint64_t nw, double t) {
  if (mode == M_ECHO) {
    uint64_t done = nw / S - old / S;  // whole echoed messages completed
    msgs += done; C[fd].owed += done * S;
    lat_record(fd, done, t);
  } else if (mode == M_RECV) {
    for (long k = 1; k <= rounds; k++) {
      uint64_t lo = (uint64_t)(k - 1) * B, hi = (uint64_t)k * B;
      if (old <= lo && nw > lo && rfirst[k] < 0) rfirst[k] = t;
      if (old < hi && nw >= hi && ++rcount[k] == N) {
        rdone[k] = t;
        printf("round %ld: all %ld conns have >= %lu bytes, %.3f ms after the round's first byte\n", k, N,
               (unsigned long)hi, (t - rfirst[k]) * 1e3);
        fflush(stdout);
      }
    }
  }
}

static void on_event(int fd, uint32_t ev) {
  struct conn *c = &C[fd];
  if (c->state == S_CONNECTING) {
    if (ev & (EPOLLERR | EPOLLHUP)) {
      int e = 0; socklen_t l = sizeof e;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
      note_err(e ? e : ECONNRESET); close_conn(fd); return;
    }
    if (!(ev & EPOLLOUT)) return;
    c->state = S_ESTAB; connecting--; live++; estab++; c->tx = 0; c->rhead = c->rcount = 0;
    if (estab == N && t_all < 0) { t_all = now(); getrusage(RUSAGE_SELF, &ru_all); }
    if (mode == M_CHURN) { shutdown(fd, SHUT_WR); c->state = S_CLOSING; }
    if (mode == M_ECHO) { c->owed = P * S; flush_owed(fd); if (c->state == S_FREE) return; }
  } else if (ev & EPOLLOUT && mode == M_ECHO) flush_owed(fd);
  if (c->state == S_FREE || !(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  double t = now();
  for (;;) {  // edge-triggered: drain until EAGAIN
    ssize_t r = read(fd, rbuf, sizeof rbuf);
    if (r > 0) { uint64_t o = c->rx; c->rx += r; on_rx(fd, o, c->rx, t); continue; }
    if (r < 0 && errno == EAGAIN) break;
    if (mode == M_CHURN && r == 0) completed++;  // server's FIN after ours: a full open/close cycle
    close_conn(fd); return;
  }
  if (mode == M_ECHO) flush_owed(fd);
}

static const char *mname[] = { "connect", "churn", "recv", "echo" };

static void report(int timed_out) {
  double t = now();
  printf("{\"tool\":\"loadgen\",\"mode\":\"%s\",\"n\":%ld,\"targets\":%d,\"sources\":%d,\"opened\":%ld,"
         "\"established\":%ld,\"failed\":%ld,\"open_now\":%ld", mname[mode], N, ntgt, nsrc, opened, estab, failed, live);
  if (failed) {
    printf(",\"first_error\":\"%s\",\"established_at_first_error\":%ld,\"errors\":{", strerrorname_np(first_err),
           estab_at_first_err);
    for (int e = 0, k = 0; e < 256; e++)
      if (err_by[e]) printf("%s\"%s\":%ld", k++ ? "," : "", strerrorname_np(e), err_by[e]);
    printf("}");
  }
  if (mode == M_CONNECT) printf(",\"time_s\":%.4f", t - t_start);
  if (mode == M_CONNECT && t_all > 0)
    printf(",\"time_to_all_established_s\":%.4f,\"conns_per_s\":%.0f,\"start_mono_s\":%.6f,\"end_mono_s\":%.6f,"
           "\"cpu_user_s\":%.4f,\"cpu_sys_s\":%.4f", t_all - t_start, N / (t_all - t_start), t_start, t_all,
           ru_all.ru_utime.tv_sec + ru_all.ru_utime.tv_usec / 1e6, ru_all.ru_stime.tv_sec + ru_all.ru_stime.tv_usec / 1e6);
  if (mode == M_CHURN)
    printf(",\"concurrency\":%ld,\"secs\":%.3f,\"completed\":%ld,\"conns_per_s\":%.0f", conc, t - t_start, completed,
           completed / (t - t_start));
  if (mode == M_RECV) {
    printf(",\"bytes_per_round\":%ld,\"rounds_ms\":[", B);
    for (long k = 1; k <= rounds; k++)
      printf(k > 1 ? ",%.3f" : "%.3f", rdone[k] > 0 ? (rdone[k] - rfirst[k]) * 1e3 : -1.0);
    printf("]");
  }
  if (mode == M_ECHO && t_win0 > 0)
    printf(",\"pipeline\":%ld,\"size\":%ld,\"secs\":%.3f,\"msgs\":%lu,\"msgs_per_s\":%.0f", P, S, t - t_win0,
           (unsigned long)(msgs - msgs_win0), (msgs - msgs_win0) / (t - t_win0));
  if (mode == M_ECHO && lat_n)
    printf(",\"lat_samples\":%lu,\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_max_us\":%.1f", (unsigned long)lat_n,
           lat_pct(0.50), lat_pct(0.99), lat_max);
  printf(",\"timed_out\":%s}\n", timed_out ? "true" : "false");
  fflush(stdout);
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen -t host:port [-t ...] -n N [-s ip,ip,...] [-i max_inflight] -m connect|churn|recv|echo\n"
                  "  [--hold-seconds H] [-T secs] [-c concurrency] [-b bytes] [-R rounds] [-P pipeline] [-S size]\n"
                  "  [--warmup secs] [--timeout secs]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static struct option lo[] = { { "hold-seconds", 1, 0, 'H' }, { "warmup", 1, 0, 'W' }, { "timeout", 1, 0, 'X' }, { 0 } };
  for (int o; (o = getopt_long(argc, argv, "t:n:s:i:m:T:c:b:R:P:S:", lo, 0)) != -1;) switch (o) {
    case 't': if (ntgt == 64 || parse_addr(optarg, &tgt[ntgt++], 1)) usage(); break;
    case 's': for (char *p = strtok(optarg, ","); p; p = strtok(0, ","))
                if (nsrc == 256 || parse_addr(p, &src[nsrc++], 0)) usage();
              break;
    case 'n': N = atol(optarg); break;
    case 'i': inflight_max = atol(optarg); break;
    case 'm': for (mode = 0; mode < 4 && strcmp(optarg, mname[mode]); mode++) {} if (mode == 4) usage(); break;
    case 'T': dur_s = atof(optarg); break;
    case 'c': conc = atol(optarg); break;
    case 'b': B = atol(optarg); break;
    case 'R': rounds = atol(optarg); break;
    case 'P': P = atol(optarg); break;
    case 'S': S = atol(optarg); break;
    case 'H': hold_s = atof(optarg); break;
    case 'W': warm_s = atof(optarg); break;
    case 'X': timeout_s = atof(optarg); break;
    default: usage();
  }
  if (!ntgt || N <= 0 || P * S > (long)sizeof zbuf) usage();
  struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
  if (!(C = calloc(rl.rlim_cur, sizeof *C))) die("calloc");
  if (mode == M_ECHO && (!(ring = calloc(rl.rlim_cur * P, sizeof *ring)) || !(lat_hist = calloc(LAT_BUCKETS, sizeof *lat_hist))))
    die("calloc");
  rfirst = malloc((rounds + 1) * sizeof(double)); rdone = malloc((rounds + 1) * sizeof(double));
  rcount = calloc(rounds + 1, sizeof(long));
  for (long k = 0; k <= rounds; k++) rfirst[k] = rdone[k] = -1;
  signal(SIGPIPE, SIG_IGN); signal(SIGINT, on_sig); signal(SIGTERM, on_sig);
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
  static struct epoll_event evs[1024];
  t_start = now();
  double t_end = -1; int reported = 0, timed_out = 0;
  for (;;) {
    double t = now();
    if (stop) break;
    if (t - t_start > timeout_s) { timed_out = 1; break; }
    if (mode == M_CHURN) {
      if (t - t_start >= dur_s) break;
      while (connecting < inflight_max && live + connecting < conc && open_one() == 0) {}
    } else {
      while (opened < N && connecting < inflight_max) open_one();
      int settled = estab + failed >= N;  // every attempt resolved
      if (mode == M_CONNECT && settled && !reported) {
        reported = 1; report(0);
        if (hold_s == 0) break;
        if (hold_s > 0) t_end = t + hold_s;
      }
      if (mode == M_CONNECT && t_end > 0 && t >= t_end) break;
      if (mode == M_ECHO && settled && t_win0 < 0 && t_all > 0 && t - t_all >= warm_s) {
        t_win0 = t; msgs_win0 = msgs;
        printf("window: measuring for %.1f s\n", dur_s); fflush(stdout);  // lets a caller sample CPU time from here
      }
      if (mode == M_ECHO && t_win0 > 0 && t - t_win0 >= dur_s) break;
      if (mode == M_RECV && rdone[rounds] > 0) break;
      if (mode != M_CONNECT && settled && failed) break;  // cannot complete the workload
    }
    int n = epoll_wait(epfd, evs, 1024, 50);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) on_event(evs[i].data.fd, evs[i].events);
  }
  if (mode != M_CONNECT || !reported) report(timed_out);
  return timed_out && !reported ? 3 : 0;
}
