// Parallel corpora for sequence-to-sequence training (the translation study, issue 16): a reader of
// tab-separated sentence pairs, one "source<TAB>target" per line, UTF-8, plain or gzip.
//
//   data::ParallelCorpus c = data::read_parallel_tsv("data/wmt/train.tsv.gz");
//   for (const auto& w : c.problems) std::cerr << w << "\n";    // "train.tsv.gz:17: no tab ..."
//
// A line is bad, and left out, when it has no tab or more than one, an empty side (after trimming
// spaces and a trailing '\r'), or invalid UTF-8; bad lines are counted (bad_lines) and the first
// kMaxProblems are reported as "<file>:<line>: <reason>", never silently used. Empty lines are
// skipped without a report. With strict, the first bad line throws instead. A file that cannot be
// read, is corrupt (gzip), or holds no good pair throws std::runtime_error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scalpel {
namespace data {

struct SentencePair {
  std::string source, target;
};

struct ParallelCorpus {
  static constexpr size_t kMaxProblems = 20;
  std::string path;
  std::vector<SentencePair> pairs;
  int64_t lines = 0;                  // lines read (empty ones included)
  int64_t bad_lines = 0;              // lines left out for a reason below
  std::vector<std::string> problems;  // the first kMaxProblems, "<file>:<line>: <reason>"
};

struct ParallelReadOptions {
  bool strict = false;  // throw at the first bad line
};

// Words of a sentence (split on whitespace) and back (joined by single spaces).
std::vector<std::string> split_words(const std::string& sentence);
std::string join_words(const std::vector<std::string>& words);

// True when `s` is valid UTF-8 (no overlong forms, no surrogates, code points <= U+10FFFF).
bool valid_utf8(const std::string& s);

ParallelCorpus read_parallel_tsv(const std::string& path, const ParallelReadOptions& options = ParallelReadOptions());

}  // namespace data
}  // namespace scalpel
