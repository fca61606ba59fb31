// Byte-level text for language modelling: a corpus of bytes (tokens 0..255) read from files or a
// directory, split by offset into training and held-out parts, and cut into windows.
//
// - ByteCorpus::from_path(path): a file, or every regular file of a directory (recursively, in
//   sorted path order) concatenated, with no separator, into one byte string.
// - split(fraction): bytes [0, k) for training and [k, n) held out, k = floor(fraction * n). A split
//   by offset (not by random windows) keeps the two parts disjoint.
// - RandomWindowDataset: window i starts at an offset drawn from Generator(mix_seed(seed, i)),
//   uniform over [0, n - T - 1]; it covers T + 1 bytes and gives tokens = bytes[o, o+T) and
//   targets = bytes[o+1, o+T+1). Its size is a number of windows you choose (e.g. steps * batch);
//   read it with a non-shuffling DataLoader to get fresh random windows every step, resumably.
// - SequentialWindowDataset: windows at offsets 0, T, 2T, ... so that every target byte of the
//   corpus (positions 1..n-1) is scored exactly once. When (n - 1) is not a multiple of T the last
//   window is aligned to the end and the targets the previous window already scored are set to
//   -100 (cross_entropy's default ignore_index), so an evaluation over the windows averages every
//   held-out byte exactly once.
// A corpus shorter than one window (T + 1 bytes) is an error naming the source and both sizes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace scalpel {
namespace data {

constexpr int64_t kIgnoreTarget = -100;

class ByteCorpus {
 public:
  ByteCorpus() = default;
  ByteCorpus(std::string source, std::shared_ptr<const std::vector<uint8_t>> bytes, int64_t begin, int64_t end);
  ByteCorpus(std::string source, std::vector<uint8_t> bytes);

  // Reads a file or a directory (see above). Throws std::runtime_error naming the path when it is
  // missing, unreadable, or (a directory) holds no regular file; an empty result is an error too.
  static ByteCorpus from_path(const std::string& path);
  static ByteCorpus from_files(const std::vector<std::string>& paths, const std::string& source);

  int64_t size() const { return end_ - begin_; }
  const uint8_t* data() const { return bytes_->data() + begin_; }
  uint8_t operator[](int64_t i) const { return data()[i]; }
  const std::string& source() const { return source_; }
  std::string str() const { return std::string(data(), data() + size()); }

  // Sub-range [begin, end) of this corpus (shares the bytes).
  ByteCorpus slice(int64_t begin, int64_t end) const;
  // (train, held_out) split by offset at floor(fraction * size); fraction in (0, 1).
  std::pair<ByteCorpus, ByteCorpus> split(double train_fraction) const;

 private:
  std::string source_;
  std::shared_ptr<const std::vector<uint8_t>> bytes_;
  int64_t begin_ = 0, end_ = 0;
};

// Throws std::invalid_argument naming the corpus unless it holds at least T + 1 bytes.
void check_window(const ByteCorpus& corpus, int64_t seq_len, const char* who);

class RandomWindowDataset : public Dataset {
 public:
  RandomWindowDataset(ByteCorpus corpus, int64_t seq_len, int64_t num_windows, uint64_t seed);
  int64_t size() const override { return num_windows_; }
  Example get(int64_t i) const override;
  DatasetInfo info() const override;
  void read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const override;
  // Start offset of window i.
  int64_t offset(int64_t i) const;

 private:
  ByteCorpus corpus_;
  int64_t t_, num_windows_;
  uint64_t seed_;
};

class SequentialWindowDataset : public Dataset {
 public:
  SequentialWindowDataset(ByteCorpus corpus, int64_t seq_len);
  int64_t size() const override { return num_windows_; }
  Example get(int64_t i) const override;
  DatasetInfo info() const override;
  void read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const override;
  int64_t offset(int64_t i) const;
  // Number of target positions scored in total: size() - 1 of the corpus.
  int64_t num_scored() const { return corpus_.size() - 1; }

 private:
  ByteCorpus corpus_;
  int64_t t_, num_windows_;
};

}  // namespace data
}  // namespace scalpel
