// The tab-separated parallel-corpus reader (data/parallel.h): good pairs kept, every kind of bad
// line counted and reported by file and line, gzip, strict mode, and files with nothing usable.
#include <gtest/gtest.h>

#include <stdexcept>

#include "data/io.h"
#include "data/parallel.h"
#include "temp_dir.h"

using namespace scalpel;
using scalpel::testing::TempDir;

TEST(Parallel, KeepsGoodPairsAndReportsEveryBadLineByFileAndLine) {
  TempDir dir;
  const std::string p = dir / "train.tsv";
  scalpel::testing::write_text(p,
                               "the cat\tdie Katze\r\n"           // 1 good (CRLF)
                               "no tab here\n"                    // 2
                               "\n"                               // 3 empty: skipped silently
                               "a\tb\tc\n"                        // 4 two tabs
                               " \tleer\n"                        // 5 empty source
                               "bad \xC3\x28 utf8\tx\n"           // 6 invalid UTF-8
                               "gr\xC3\xBC\xC3\x9F\tgreetings\n"  // 7 good, UTF-8
                               "source\t  \n");                   // 8 empty target
  const data::ParallelCorpus c = data::read_parallel_tsv(p);
  ASSERT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.pairs[0].source, "the cat");
  EXPECT_EQ(c.pairs[0].target, "die Katze");
  EXPECT_EQ(c.pairs[1].source, "gr\xC3\xBC\xC3\x9F");
  EXPECT_EQ(c.lines, 8);
  EXPECT_EQ(c.bad_lines, 5);
  const std::vector<std::string> want = {
      p + ":2: no tab (expected source<TAB>target)", p + ":4: more than one tab (expected source<TAB>target)",
      p + ":5: empty source side", p + ":6: invalid UTF-8", p + ":8: empty target side"};
  EXPECT_EQ(c.problems, want);
}

TEST(Parallel, GzipStrictModeAndUnusableFiles) {
  TempDir dir;
  const std::string text = "one\teins\ntwo\tzwei\nbroken line\n";
  const std::string gz = dir / "pairs.tsv.gz";
  scalpel::testing::write_bytes(gz, data::gzip(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  const data::ParallelCorpus c = data::read_parallel_tsv(gz);
  EXPECT_EQ(c.pairs.size(), 2u);
  EXPECT_EQ(c.bad_lines, 1);
  data::ParallelReadOptions strict;
  strict.strict = true;
  try {
    data::read_parallel_tsv(gz, strict);
    FAIL() << "strict mode must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("pairs.tsv.gz:3: no tab"), std::string::npos) << e.what();
  }
  const std::string none = dir / "none.tsv";
  scalpel::testing::write_text(none, "no tabs\nat all\n");
  try {
    data::read_parallel_tsv(none);
    FAIL() << "a file without a usable pair must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no usable sentence pair in 2 lines (2 bad"), std::string::npos) << e.what();
  }
  EXPECT_THROW(data::read_parallel_tsv(dir / "missing.tsv"), std::runtime_error);
  // A truncated gzip stream is an error naming the file, never a silently short corpus.
  std::vector<uint8_t> cut = data::gzip(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  cut.resize(cut.size() / 2);
  const std::string trunc = dir / "cut.tsv.gz";
  scalpel::testing::write_bytes(trunc, cut);
  try {
    data::read_parallel_tsv(trunc);
    FAIL() << "a truncated gzip must throw";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("cut.tsv.gz"), std::string::npos) << e.what();
  }
}

TEST(Parallel, Utf8Validation) {
  EXPECT_TRUE(data::valid_utf8("plain ascii"));
  EXPECT_TRUE(data::valid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80"));  // € and an emoji
  EXPECT_FALSE(data::valid_utf8("\xC0\xAF"));                      // overlong '/'
  EXPECT_FALSE(data::valid_utf8("\xED\xA0\x80"));                  // surrogate
  EXPECT_FALSE(data::valid_utf8("\xF4\x90\x80\x80"));              // > U+10FFFF
  EXPECT_FALSE(data::valid_utf8("\xE2\x82"));                      // truncated
  EXPECT_FALSE(data::valid_utf8("\xFF"));
}
