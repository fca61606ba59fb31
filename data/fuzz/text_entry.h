// The byte-level text loader's fuzz entry, shared by the libFuzzer target (fuzz_text.cpp) and the
// corpus-replay test in make test. Byte 0 gives the window length T = 1 + byte0 % 64, byte 1 the
// train fraction (1 + byte1) / 258 and the random-window seed; the rest is the corpus. Both parts
// of the split are cut into sequential and random windows and every window is read. Contract: a
// part shorter than T + 1 bytes is refused with std::invalid_argument; otherwise every token and
// target is the corpus byte it claims to be, the sequential windows score every target position
// exactly once (the rest are kIgnoreTarget), and random windows lie inside the part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "data/text.h"

namespace scalpel {
namespace data {

inline void fuzz_check_windows(const ByteCorpus& part, int64_t t, uint64_t seed) {
  if (part.size() < t + 1) {
    try {
      SequentialWindowDataset too_short(part, t);
    } catch (const std::invalid_argument&) {
      return;
    }
    __builtin_trap();  // a corpus shorter than one window must be refused
  }
  std::vector<int64_t> tokens(static_cast<size_t>(t)), targets(static_cast<size_t>(t));
  SequentialWindowDataset seq(part, t);
  int64_t scored = 0;
  for (int64_t i = 0; i < seq.size(); ++i) {
    seq.read_tokens(i, tokens.data(), targets.data());
    const int64_t o = seq.offset(i);
    if (o < 0 || o + t + 1 > part.size()) __builtin_trap();
    for (int64_t j = 0; j < t; ++j) {
      if (tokens[j] != part[o + j]) __builtin_trap();
      if (targets[j] == kIgnoreTarget) continue;
      if (targets[j] != part[o + j + 1]) __builtin_trap();
      ++scored;
    }
  }
  if (scored != seq.num_scored()) __builtin_trap();
  RandomWindowDataset rnd(part, t, 4, seed);
  for (int64_t i = 0; i < rnd.size(); ++i) {
    rnd.read_tokens(i, tokens.data(), targets.data());
    const int64_t o = rnd.offset(i);
    if (o < 0 || o + t + 1 > part.size()) __builtin_trap();
    for (int64_t j = 0; j < t; ++j) {
      if (tokens[j] != part[o + j] || targets[j] != part[o + j + 1]) __builtin_trap();
    }
  }
}

// Returns true when both parts were long enough to be windowed.
inline bool fuzz_text_windows(const uint8_t* data, size_t size) {
  if (size < 3) return false;
  const int64_t t = 1 + data[0] % 64;
  const double fraction = (1.0 + data[1]) / 258.0;
  const ByteCorpus corpus("fuzz.txt", std::vector<uint8_t>(data + 2, data + size));
  const auto parts = corpus.split(fraction);
  fuzz_check_windows(parts.first, t, data[1]);
  fuzz_check_windows(parts.second, t, data[1]);
  return parts.first.size() >= t + 1 && parts.second.size() >= t + 1;
}

}  // namespace data
}  // namespace scalpel
