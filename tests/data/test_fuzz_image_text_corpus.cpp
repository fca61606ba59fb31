// The image-decoder and text-loader fuzz entries (data/fuzz/image_entry.h, text_entry.h) over
// their seed corpora and seeded mutations: valid seeds decode / window, and every mutation either
// meets the entry's contract or is rejected with an error naming the source (the entries trap
// otherwise, which fails this test by crashing it).
#include <gtest/gtest.h>

#include "data/fuzz/image_entry.h"
#include "data/fuzz/text_entry.h"
#include "fuzz_replay.h"

using namespace scalpel;

TEST(FuzzImageCorpus, SeedsDecodeAndMutationsAreDecodedOrRejected) {
  const auto seeds = fuzz_replay::read_corpus(SCALPEL_SOURCE_DIR "/data/fuzz/corpus-image");
  ASSERT_GE(seeds.size(), 7u);
  // "regress_*" seeds are inputs a fuzzer once found: refused now.
  const auto c = fuzz_replay::replay_corpus(seeds, 5, 300, data::fuzz_decode_image, [](const fuzz_replay::Seed& s) {
    return !fuzz_replay::named(s, "regress_");
  });
  EXPECT_LT(c.accepted, c.total);  // corrupted files are refused...
  EXPECT_GT(c.accepted, 0);        // ...but a changed option byte or pixel still decodes
}

TEST(FuzzTextCorpus, SeedsWindowAndMutationsKeepTheWindowContract) {
  const auto seeds = fuzz_replay::read_corpus(SCALPEL_SOURCE_DIR "/data/fuzz/corpus-text");
  ASSERT_EQ(seeds.size(), 4u);
  // "short_*" seeds have a part shorter than one window (refused, as the contract says).
  const auto c = fuzz_replay::replay_corpus(seeds, 3, 300, data::fuzz_text_windows, [](const fuzz_replay::Seed& s) {
    return !fuzz_replay::named(s, "short_");
  });
  EXPECT_GT(c.accepted, 0);
  EXPECT_LT(c.accepted, c.total);  // truncations make parts too short
}
