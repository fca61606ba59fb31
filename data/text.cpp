#include "data/text.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/random.h"
#include "data/io.h"

namespace scalpel {
namespace data {

ByteCorpus::ByteCorpus(std::string source, std::shared_ptr<const std::vector<uint8_t>> bytes, int64_t begin,
                       int64_t end)
    : source_(std::move(source)), bytes_(std::move(bytes)), begin_(begin), end_(end) {
  if (!bytes_ || begin_ < 0 || end_ < begin_ || end_ > static_cast<int64_t>(bytes_->size())) {
    throw std::invalid_argument("ByteCorpus(" + source_ + "): range [" + std::to_string(begin_) + ", " +
                                std::to_string(end_) + ") is not inside the " +
                                std::to_string(bytes_ ? bytes_->size() : 0) + " bytes");
  }
}

ByteCorpus::ByteCorpus(std::string source, std::vector<uint8_t> bytes)
    : source_(std::move(source)),
      bytes_(std::make_shared<const std::vector<uint8_t>>(std::move(bytes))),
      begin_(0),
      end_(static_cast<int64_t>(bytes_->size())) {}

namespace {
void collect_files(const std::string& dir, std::vector<std::string>& out) {
  for (const std::string& f : list_dir(dir, false)) out.push_back(join_path(dir, f));
  for (const std::string& d : list_dir(dir, true)) collect_files(join_path(dir, d), out);
}
}  // namespace

ByteCorpus ByteCorpus::from_files(const std::vector<std::string>& paths, const std::string& source) {
  std::vector<uint8_t> all;
  for (const std::string& p : paths) {
    const std::vector<uint8_t> b = read_file(p);
    all.insert(all.end(), b.begin(), b.end());
  }
  if (all.empty()) {
    throw std::runtime_error(source + ": text corpus is empty (" + std::to_string(paths.size()) +
                             " files, 0 bytes); expected some text");
  }
  return ByteCorpus(source, std::move(all));
}

ByteCorpus ByteCorpus::from_path(const std::string& path) {
  if (dir_exists(path)) {
    std::vector<std::string> files;
    collect_files(path, files);
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw std::runtime_error(path + ": text directory holds no files; expected one or more text files");
    return from_files(files, path);
  }
  if (!file_exists(path))
    throw std::runtime_error(path + ": text corpus not found (expected a file or a directory of files)");
  return from_files({path}, path);
}

ByteCorpus ByteCorpus::slice(int64_t begin, int64_t end) const {
  if (begin < 0 || end < begin || end > size()) {
    throw std::out_of_range("ByteCorpus(" + source_ + ").slice: [" + std::to_string(begin) + ", " +
                            std::to_string(end) + ") is outside [0, " + std::to_string(size()) + ")");
  }
  return ByteCorpus(source_, bytes_, begin_ + begin, begin_ + end);
}

std::pair<ByteCorpus, ByteCorpus> ByteCorpus::split(double train_fraction) const {
  if (!(train_fraction > 0.0 && train_fraction < 1.0)) {
    throw std::invalid_argument("ByteCorpus(" + source_ + ").split: fraction must be in (0, 1), got " +
                                std::to_string(train_fraction));
  }
  const int64_t k = static_cast<int64_t>(std::floor(train_fraction * static_cast<double>(size())));
  ByteCorpus a = slice(0, k), b = slice(k, size());
  a.source_ = source_ + " [train 0.." + std::to_string(k) + ")";
  b.source_ = source_ + " [held-out " + std::to_string(k) + ".." + std::to_string(size()) + ")";
  return {a, b};
}

void check_window(const ByteCorpus& corpus, int64_t seq_len, const char* who) {
  if (seq_len <= 0)
    throw std::invalid_argument(std::string(who) + "(" + corpus.source() + "): sequence length must be positive, got " +
                                std::to_string(seq_len));
  if (corpus.size() < seq_len + 1) {
    throw std::invalid_argument(std::string(who) + ": text corpus " + corpus.source() +
                                " is shorter than one window: expected at least " + std::to_string(seq_len + 1) +
                                " bytes (sequence length " + std::to_string(seq_len) + " + 1 target), found " +
                                std::to_string(corpus.size()));
  }
}

// ---- RandomWindowDataset --------------------------------------------------------------------------

RandomWindowDataset::RandomWindowDataset(ByteCorpus corpus, int64_t seq_len, int64_t num_windows, uint64_t seed)
    : corpus_(std::move(corpus)), t_(seq_len), num_windows_(num_windows), seed_(seed) {
  check_window(corpus_, seq_len, "RandomWindowDataset");
  if (num_windows <= 0)
    throw std::invalid_argument("RandomWindowDataset(" + corpus_.source() + "): num_windows must be positive, got " +
                                std::to_string(num_windows));
}

int64_t RandomWindowDataset::offset(int64_t i) const {
  Generator g(mix_seed(seed_, static_cast<uint64_t>(i)));
  return g.randint(corpus_.size() - t_);  // o in [0, n - T - 1], so o + T <= n - 1
}

void RandomWindowDataset::read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const {
  check_index(i);
  const uint8_t* p = corpus_.data() + offset(i);
  for (int64_t k = 0; k < t_; ++k) {
    tokens[k] = p[k];
    targets[k] = p[k + 1];
  }
}

Example RandomWindowDataset::get(int64_t i) const {
  Example ex;
  ex.tokens.resize(static_cast<size_t>(t_));
  ex.targets.resize(static_cast<size_t>(t_));
  read_tokens(i, ex.tokens.data(), ex.targets.data());
  return ex;
}

DatasetInfo RandomWindowDataset::info() const {
  DatasetInfo inf;
  inf.name = "random windows of " + corpus_.source();
  inf.sequence_length = t_;
  return inf;
}

// ---- SequentialWindowDataset ----------------------------------------------------------------------

SequentialWindowDataset::SequentialWindowDataset(ByteCorpus corpus, int64_t seq_len)
    : corpus_(std::move(corpus)), t_(seq_len) {
  check_window(corpus_, seq_len, "SequentialWindowDataset");
  num_windows_ = (corpus_.size() - 1 + t_ - 1) / t_;  // ceil((n - 1) / T) windows of T targets
}

int64_t SequentialWindowDataset::offset(int64_t i) const { return std::min(i * t_, corpus_.size() - 1 - t_); }

void SequentialWindowDataset::read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const {
  check_index(i);
  const int64_t o = offset(i);
  const int64_t first_new = i * t_;  // targets at positions < first_new + 1 were scored earlier
  const uint8_t* p = corpus_.data() + o;
  for (int64_t k = 0; k < t_; ++k) {
    tokens[k] = p[k];
    targets[k] = (o + k < first_new) ? kIgnoreTarget : p[k + 1];
  }
}

Example SequentialWindowDataset::get(int64_t i) const {
  Example ex;
  ex.tokens.resize(static_cast<size_t>(t_));
  ex.targets.resize(static_cast<size_t>(t_));
  read_tokens(i, ex.tokens.data(), ex.targets.data());
  return ex;
}

DatasetInfo SequentialWindowDataset::info() const {
  DatasetInfo inf;
  inf.name = "sequential windows of " + corpus_.source();
  inf.sequence_length = t_;
  return inf;
}

}  // namespace data
}  // namespace scalpel
