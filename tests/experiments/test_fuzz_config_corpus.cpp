// The config/flag fuzz entry (experiments/fuzz/config_entry.h) over its committed seed corpus and
// over seeded random mutations of it: every input parses or is rejected with an exception, and the
// well-formed seeds parse. The same entry runs under libFuzzer in make fuzz.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "experiments/fuzz/config_entry.h"
#include "experiments/runner/metrics.h"

namespace fs = std::filesystem;
using scalpel::experiments::fuzz_parse_config;

namespace {
bool parse_text(const std::string& s) {
  return fuzz_parse_config(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

TEST(FuzzConfigCorpus, SeedsParseOrAreRejectedAndMutationsNeverCrash) {
  int files = 0, parsed = 0;
  std::mt19937 rng(7);
  for (const auto& e : fs::directory_iterator(SCALPEL_CONFIG_FUZZ_CORPUS)) {
    const std::string s = scalpel::experiments::read_text(e.path().string());
    ++files;
    parsed += parse_text(s);
    for (int k = 0; k < 200; ++k) {
      std::string m = s;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < edits && !m.empty(); ++j) {
        const size_t at = rng() % m.size();
        switch (rng() % 3) {
          case 0:
            m[at] = static_cast<char>(rng() % 256);
            break;
          case 1:
            m.erase(at, 1);
            break;
          default:
            m.insert(at, 1, "\n-0123456789.e:,"[rng() % 16]);
            break;
        }
      }
      parse_text(m);  // must return (either way) without crashing
    }
  }
  EXPECT_EQ(files, 7);
  // The well-formed seeds (all but overflow and nan) parse.
  EXPECT_EQ(parsed, 5);
  EXPECT_FALSE(parse_text("--steps\n99999999999999999999"));
  EXPECT_TRUE(parse_text("--steps\n5"));
}
