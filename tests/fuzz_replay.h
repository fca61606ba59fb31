// Replays a libFuzzer entry in make test: every file of a committed seed corpus, then seeded
// random mutations of each (byte overwrites, truncations, insertions), so the fuzz targets'
// contracts are checked on every build without clang. The same entries run under libFuzzer in
// make fuzz (scripts/run-fuzz.sh).
#pragma once

#include <gtest/gtest.h>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace scalpel {
namespace fuzz_replay {

struct Seed {
  std::string name;  // file name; "regress_*" seeds are inputs a fuzzer once found, to be rejected
  std::vector<uint8_t> bytes;
};

// Every file of `dir`, in sorted name order.
inline std::vector<Seed> read_corpus(const std::string& dir) {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir)) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  std::vector<Seed> seeds;
  for (const std::string& p : paths) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read corpus file " + p);
    seeds.push_back({std::filesystem::path(p).filename().string(),
                     std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>())});
  }
  return seeds;
}

// Calls fn on `count` mutations of `seed` (1-4 edits each), drawn from std::mt19937(rng_seed).
inline void for_each_mutation(const std::vector<uint8_t>& seed, uint32_t rng_seed, int count,
                              const std::function<void(const std::vector<uint8_t>&)>& fn) {
  std::mt19937 rng(rng_seed);
  for (int k = 0; k < count; ++k) {
    std::vector<uint8_t> m = seed;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = static_cast<uint8_t>(rng());
          break;
        case 1:
          m.resize(at + 1);
          break;
        default:
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), static_cast<uint8_t>(rng()));
          break;
      }
    }
    fn(m);
  }
}

struct ReplayCounts {
  int accepted = 0, total = 0;  // over the mutations
};

// Runs `entry(bytes, size) -> bool` on every seed, expecting `expected(seed)`, then on `count`
// mutations of seed i drawn from rng_base + i; counts the mutations the entry accepted.
template <class Entry, class Expected>
ReplayCounts replay_corpus(const std::vector<Seed>& seeds, uint32_t rng_base, int count, Entry entry,
                           Expected expected) {
  ReplayCounts c;
  for (size_t i = 0; i < seeds.size(); ++i) {
    const std::vector<uint8_t>& b = seeds[i].bytes;
    EXPECT_EQ(entry(b.data(), b.size()), expected(seeds[i])) << seeds[i].name;
    for_each_mutation(b, rng_base + static_cast<uint32_t>(i), count, [&](const std::vector<uint8_t>& m) {
      c.accepted += entry(m.data(), m.size());
      ++c.total;
    });
  }
  return c;
}

// True for a "<prefix>*" seed.
inline bool named(const Seed& s, const char* prefix) { return s.name.rfind(prefix, 0) == 0; }

}  // namespace fuzz_replay
}  // namespace scalpel
