// Replays the committed libFuzzer corpus of native/fuzz/fuzz_address.cc through the same target
// in the core's plain, ASan+UBSan and TSan builds, so every input the fuzzer ever kept (and every
// regression seed, e.g. regress-bracketed-ipv4) is checked on each CI run even where clang's
// libFuzzer is not installed. The target aborts on a broken invariant.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
#include "../../fuzz/fuzz_address.cc"

int main() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(__FILE__).parent_path() / ".." / ".." / "fuzz" / "corpus" / "address";
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    n++;
  }
  std::printf("fuzz_corpus_replay: %zu inputs from %s\n", n, dir.string().c_str());
  CHECK(n >= 10);  // the corpus is there (a wrong path would pass vacuously)
  return check_result("fuzz_corpus_replay");
}
