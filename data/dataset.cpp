#include "data/dataset.h"

#include "core/random.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace scalpel {
namespace data {

const char* split_name(Split split) { return split == Split::Train ? "train" : "test"; }

uint64_t mix_seed(uint64_t a, uint64_t b) {
  return splitmix64(splitmix64(a) ^ (b * 0xD6E8FEB86659FD93ull + 0x632BE59BD9B4E019ull));
}
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) { return mix_seed(mix_seed(a, b), c); }

// ---- Dataset defaults ------------------------------------------------------------------------------

void Dataset::check_index(int64_t i) const {
  if (i < 0 || i >= size()) {
    throw std::out_of_range(info().name + ": index " + std::to_string(i) + " out of range [0, " +
                            std::to_string(size()) + ")");
  }
}

void Dataset::read(int64_t i, float* input, int64_t* labels) const {
  const Example ex = get(i);
  const DatasetInfo inf = info();
  const int64_t n = shape_numel(inf.input_shape);
  if (!inf.input_shape.empty()) {
    if (!ex.input.defined() || ex.input.numel() != n) {
      throw std::logic_error(inf.name + ": example " + std::to_string(i) + " has input shape " +
                             (ex.input.defined() ? shape_str(ex.input.shape()) : std::string("(undefined)")) +
                             ", the dataset announced " + shape_str(inf.input_shape));
    }
    const Tensor c = ex.input.contiguous();
    std::memcpy(input, c.data(), static_cast<size_t>(n) * sizeof(float));
  }
  if (ex.labels.size() != inf.num_classes.size()) {
    throw std::logic_error(inf.name + ": example " + std::to_string(i) + " has " + std::to_string(ex.labels.size()) +
                           " labels, the dataset announced " + std::to_string(inf.num_classes.size()));
  }
  std::copy(ex.labels.begin(), ex.labels.end(), labels);
}

void Dataset::read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const {
  const Example ex = get(i);
  const int64_t t = info().sequence_length;
  if (static_cast<int64_t>(ex.tokens.size()) != t || static_cast<int64_t>(ex.targets.size()) != t) {
    throw std::logic_error(info().name + ": example " + std::to_string(i) + " has " + std::to_string(ex.tokens.size()) +
                           " tokens and " + std::to_string(ex.targets.size()) + " targets, expected " +
                           std::to_string(t));
  }
  std::copy(ex.tokens.begin(), ex.tokens.end(), tokens);
  std::copy(ex.targets.begin(), ex.targets.end(), targets);
}

// ---- U8ImageDataset -------------------------------------------------------------------------------

U8ImageDataset::U8ImageDataset(std::string name, int64_t channels, int64_t height, int64_t width,
                               std::vector<uint8_t> pixels, std::vector<int64_t> labels,
                               std::vector<int64_t> num_classes, std::vector<std::vector<std::string>> class_names)
    : name_(std::move(name)),
      c_(channels),
      h_(height),
      w_(width),
      size_(0),
      pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      num_classes_(std::move(num_classes)),
      class_names_(std::move(class_names)) {
  if (c_ <= 0 || h_ <= 0 || w_ <= 0) {
    throw std::invalid_argument(name_ + ": image shape must be positive, got [" + std::to_string(c_) + ", " +
                                std::to_string(h_) + ", " + std::to_string(w_) + "]");
  }
  const int64_t per = c_ * h_ * w_;
  if (static_cast<int64_t>(pixels_.size()) % per != 0) {
    throw std::invalid_argument(name_ + ": " + std::to_string(pixels_.size()) +
                                " pixel bytes is not a whole number of images of " + std::to_string(per) + " bytes");
  }
  size_ = static_cast<int64_t>(pixels_.size()) / per;
  const int64_t nl = static_cast<int64_t>(num_classes_.size());
  if (static_cast<int64_t>(labels_.size()) != size_ * nl) {
    throw std::invalid_argument(name_ + ": expected " + std::to_string(size_ * nl) + " labels (" +
                                std::to_string(size_) + " images x " + std::to_string(nl) + " label sets), found " +
                                std::to_string(labels_.size()));
  }
  for (int64_t i = 0; i < size_; ++i) {
    for (int64_t l = 0; l < nl; ++l) {
      const int64_t v = labels_[static_cast<size_t>(i * nl + l)];
      if (v < 0 || v >= num_classes_[static_cast<size_t>(l)]) {
        throw std::invalid_argument(name_ + ": label " + std::to_string(v) + " of example " + std::to_string(i) +
                                    " is out of range [0, " + std::to_string(num_classes_[static_cast<size_t>(l)]) +
                                    ")");
      }
    }
  }
  if (!class_names_.empty() && class_names_.size() != num_classes_.size()) {
    throw std::invalid_argument(name_ + ": class names given for " + std::to_string(class_names_.size()) +
                                " label sets, expected " + std::to_string(nl));
  }
}

DatasetInfo U8ImageDataset::info() const {
  DatasetInfo inf;
  inf.name = name_;
  inf.input_shape = {c_, h_, w_};
  inf.num_classes = num_classes_;
  inf.class_names = class_names_;
  return inf;
}

const uint8_t* U8ImageDataset::pixels(int64_t i) const {
  check_index(i);
  return pixels_.data() + i * c_ * h_ * w_;
}

const int64_t* U8ImageDataset::labels(int64_t i) const {
  check_index(i);
  return labels_.data() + i * static_cast<int64_t>(num_classes_.size());
}

void U8ImageDataset::read(int64_t i, float* input, int64_t* labels) const {
  const uint8_t* __restrict p = pixels(i);
  float* __restrict out = input;
  const int64_t n = c_ * h_ * w_;
  constexpr float k = 1.0f / 255.0f;
  for (int64_t j = 0; j < n; ++j) out[j] = static_cast<float>(p[j]) * k;  // restrict: lets it vectorise
  const int64_t nl = static_cast<int64_t>(num_classes_.size());
  std::copy(labels_.begin() + i * nl, labels_.begin() + (i + 1) * nl, labels);
}

Example U8ImageDataset::get(int64_t i) const {
  Example ex;
  ex.input = Tensor::empty({c_, h_, w_});
  ex.labels.resize(num_classes_.size());
  read(i, ex.input.data(), ex.labels.data());
  return ex;
}

// ---- SubsetDataset --------------------------------------------------------------------------------

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  if (!base_) throw std::invalid_argument("SubsetDataset: base dataset is null");
  for (int64_t i : indices_) {
    if (i < 0 || i >= base_->size()) {
      throw std::out_of_range("SubsetDataset of " + base_->info().name + ": index " + std::to_string(i) +
                              " out of range [0, " + std::to_string(base_->size()) + ")");
    }
  }
}

Example SubsetDataset::get(int64_t i) const {
  check_index(i);
  return base_->get(indices_[static_cast<size_t>(i)]);
}

DatasetInfo SubsetDataset::info() const {
  DatasetInfo inf = base_->info();
  inf.name += " (subset of " + std::to_string(indices_.size()) + ")";
  return inf;
}

void SubsetDataset::read(int64_t i, float* input, int64_t* labels) const {
  check_index(i);
  base_->read(indices_[static_cast<size_t>(i)], input, labels);
}

void SubsetDataset::read_tokens(int64_t i, int64_t* tokens, int64_t* targets) const {
  check_index(i);
  base_->read_tokens(indices_[static_cast<size_t>(i)], tokens, targets);
}

std::shared_ptr<const Dataset> take(std::shared_ptr<const Dataset> base, int64_t n) {
  if (!base) throw std::invalid_argument("take: base dataset is null");
  const int64_t m = std::max<int64_t>(0, std::min(n, base->size()));
  std::vector<int64_t> idx(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) idx[static_cast<size_t>(i)] = i;
  return std::make_shared<SubsetDataset>(std::move(base), std::move(idx));
}

}  // namespace data
}  // namespace scalpel
