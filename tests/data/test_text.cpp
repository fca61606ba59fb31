// Byte-level text: corpus from files/directories, split by offset, random and sequential windows.
#include <gtest/gtest.h>

#include <map>

#include "data/text.h"
#include "temp_dir.h"

using namespace scalpel;
using namespace scalpel::data;
using scalpel::testing::error_of;
using scalpel::testing::TempDir;
using scalpel::testing::write_text;

namespace {
ByteCorpus corpus_of(const std::string& s) { return ByteCorpus("mem", std::vector<uint8_t>(s.begin(), s.end())); }
}  // namespace

TEST(Text, DirectoryIsConcatenatedInSortedPathOrder) {
  TempDir dir;
  write_text(dir / "b.txt", "BBB");
  write_text(dir / "a.txt", "AA");
  write_text(dir / "sub/c.txt", "C");
  write_text(dir / ".hidden", "H");
  EXPECT_EQ(ByteCorpus::from_path(dir.path()).str(), "AABBBC");
  EXPECT_EQ(ByteCorpus::from_path(dir / "b.txt").str(), "BBB");
  const std::string missing = error_of<std::runtime_error>([&] { ByteCorpus::from_path(dir / "none"); });
  EXPECT_NE(missing.find("none: text corpus not found"), std::string::npos) << missing;
  TempDir empty;
  write_text(empty / "e.txt", "");
  const std::string e = error_of<std::runtime_error>([&] { ByteCorpus::from_path(empty.path()); });
  EXPECT_NE(e.find("text corpus is empty"), std::string::npos) << e;
}

TEST(Text, SplitByOffsetIsDisjointAndComplete) {
  const ByteCorpus c = corpus_of("0123456789");
  const auto [train, held] = c.split(0.7);
  EXPECT_EQ(train.str(), "0123456");
  EXPECT_EQ(held.str(), "789");
  EXPECT_NE(held.source().find("held-out 7..10"), std::string::npos) << held.source();
  EXPECT_THROW(c.split(1.0), std::invalid_argument);
}

TEST(Text, RandomWindowsArePairsShiftedByOneAndSeeded) {
  std::string s;
  for (int i = 0; i < 300; ++i) s += static_cast<char>('a' + (i * 7) % 26);
  const ByteCorpus c = corpus_of(s);
  RandomWindowDataset a(c, 16, 1000, 42), b(c, 16, 1000, 42), d(c, 16, 1000, 43);
  std::map<int64_t, int> starts;
  for (int64_t i = 0; i < 1000; ++i) {
    const Example e = a.get(i);
    const int64_t o = a.offset(i);
    ASSERT_GE(o, 0);
    ASSERT_LE(o + 16, 299);
    ++starts[o];
    for (int k = 0; k < 16; ++k) {
      EXPECT_EQ(e.tokens[static_cast<size_t>(k)], static_cast<uint8_t>(s[static_cast<size_t>(o + k)]));
      EXPECT_EQ(e.targets[static_cast<size_t>(k)], static_cast<uint8_t>(s[static_cast<size_t>(o + k + 1)]));
    }
    EXPECT_EQ(e.tokens, b.get(i).tokens);
  }
  EXPECT_GT(starts.size(), 200u);  // 284 possible offsets, 1000 draws
  int same = 0;
  for (int64_t i = 0; i < 100; ++i) same += a.offset(i) == d.offset(i);
  EXPECT_LT(same, 10);
  EXPECT_TRUE(starts.count(0) || starts.count(283));  // the range reaches the ends (very likely)
}

TEST(Text, SequentialWindowsScoreEveryHeldOutByteExactlyOnce) {
  for (int64_t n : {33, 41, 17, 100}) {
    std::string s;
    for (int64_t i = 0; i < n; ++i) s += static_cast<char>('A' + i % 50);
    SequentialWindowDataset w(corpus_of(s), 8);
    std::vector<int> scored(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < w.size(); ++i) {
      const Example e = w.get(i);
      const int64_t o = w.offset(i);
      for (int k = 0; k < 8; ++k) {
        EXPECT_EQ(e.tokens[static_cast<size_t>(k)], static_cast<uint8_t>(s[static_cast<size_t>(o + k)]));
        if (e.targets[static_cast<size_t>(k)] == kIgnoreTarget) continue;
        EXPECT_EQ(e.targets[static_cast<size_t>(k)], static_cast<uint8_t>(s[static_cast<size_t>(o + k + 1)]));
        ++scored[static_cast<size_t>(o + k + 1)];
      }
    }
    EXPECT_EQ(scored[0], 0);
    for (int64_t p = 1; p < n; ++p) EXPECT_EQ(scored[static_cast<size_t>(p)], 1) << "n=" << n << " position " << p;
    EXPECT_EQ(w.num_scored(), n - 1);
  }
}

TEST(Text, CorpusShorterThanOneWindow) {
  const std::string msg = error_of<std::invalid_argument>([] { RandomWindowDataset d(corpus_of("short"), 8, 10, 0); });
  EXPECT_NE(msg.find("text corpus mem is shorter than one window: expected at least 9 bytes"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("found 5"), std::string::npos) << msg;
  EXPECT_THROW(SequentialWindowDataset(corpus_of("12345678"), 8), std::invalid_argument);
  SequentialWindowDataset exact(corpus_of("123456789"), 8);  // exactly T + 1 bytes: one window
  EXPECT_EQ(exact.size(), 1);
}
