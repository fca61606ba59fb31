// The checkpoint reader's fuzz entry (core/fuzz/state_dict_entry.h) over its seed corpus and
// seeded mutations of it: valid seeds parse and round-trip, and every mutation is either parsed
// (round trip byte-identical, checked inside the entry) or rejected with std::runtime_error.
#include <gtest/gtest.h>

#include "core/fuzz/state_dict_entry.h"
#include "fuzz_replay.h"

using namespace scalpel;

namespace {
bool entry(const std::vector<uint8_t>& b) { return fuzz_read_state_dict(b.data(), b.size()); }
}  // namespace

TEST(FuzzStateDictCorpus, SeedsParseAndMutationsAreParsedOrRejected) {
  const auto seeds = fuzz_replay::read_corpus(SCALPEL_SOURCE_DIR "/core/fuzz/corpus");
  ASSERT_EQ(seeds.size(), 8u);
  // "regress_*" seeds are inputs the fuzzer once found: refused now.
  const auto c = fuzz_replay::replay_corpus(seeds, 11, 400, fuzz_read_state_dict, [](const fuzz_replay::Seed& s) {
    return !fuzz_replay::named(s, "regress_");
  });
  // With the CRCs re-patched some mutations are still valid checkpoints (a changed float or name),
  // so the round-trip check is exercised; most are rejected.
  EXPECT_GT(c.accepted, 0);
  EXPECT_LT(c.accepted, c.total);
}

TEST(FuzzStateDictCorpus, ChecksumPatchingIsWhatLetsAMutationThrough) {
  const auto seeds = fuzz_replay::read_corpus(SCALPEL_SOURCE_DIR "/core/fuzz/corpus");
  ASSERT_EQ(seeds[4].name, "v2_full");
  std::vector<uint8_t> seed = seeds[4].bytes;
  ASSERT_EQ(seed[0], 1);
  seed[60] ^= 0x01;  // inside the first tensor's name or data
  EXPECT_TRUE(entry(seed));
  seed[0] = 0;  // same bytes, checksums not re-patched: must be rejected
  EXPECT_FALSE(entry(seed));
}
