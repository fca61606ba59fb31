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
  int decoded = 0, total = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    const std::vector<uint8_t>& b = seeds[s].bytes;
    const bool regression = seeds[s].name.rfind("regress_", 0) == 0;
    EXPECT_EQ(data::fuzz_decode_image(b.data(), b.size()), !regression) << seeds[s].name;
    fuzz_replay::for_each_mutation(b, static_cast<uint32_t>(5 + s), 300, [&](const std::vector<uint8_t>& m) {
      decoded += data::fuzz_decode_image(m.data(), m.size());
      ++total;
    });
  }
  EXPECT_LT(decoded, total);  // corrupted files are refused...
  EXPECT_GT(decoded, 0);      // ...but a changed option byte or pixel still decodes
}

TEST(FuzzTextCorpus, SeedsWindowAndMutationsKeepTheWindowContract) {
  const auto seeds = fuzz_replay::read_corpus(SCALPEL_SOURCE_DIR "/data/fuzz/corpus-text");
  ASSERT_EQ(seeds.size(), 4u);
  int windowed = 0, total = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    const std::vector<uint8_t>& b = seeds[s].bytes;
    // "short_*" seeds have a part shorter than one window (refused, as the contract says).
    const bool both_parts = seeds[s].name.rfind("short_", 0) != 0;
    EXPECT_EQ(data::fuzz_text_windows(b.data(), b.size()), both_parts) << seeds[s].name;
    fuzz_replay::for_each_mutation(b, static_cast<uint32_t>(3 + s), 300, [&](const std::vector<uint8_t>& m) {
      windowed += data::fuzz_text_windows(m.data(), m.size());
      ++total;
    });
  }
  EXPECT_GT(windowed, 0);
  EXPECT_LT(windowed, total);  // truncations make parts too short
}
