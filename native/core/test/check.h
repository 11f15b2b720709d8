// check.h - the smallest test harness: CHECK records a failure and goes on; main() returns
// non-zero if any check failed, which is all ctest needs.
#pragma once
#include <cstdio>

inline int& check_failures() {
  static int n = 0;
  return n;
}
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures()++;                                                      \
    }                                                                          \
  } while (0)
#define CHECK_EQ(a, b) CHECK((a) == (b))
inline int check_result(const char* name) {
  std::printf("%s: %s\n", name, check_failures() == 0 ? "ok" : "FAILED");
  return check_failures() == 0 ? 0 : 1;
}
