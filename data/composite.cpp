#include "data/composite.h"

#include <algorithm>
#include <stdexcept>

namespace scalpel {
namespace data {

// background [3, H, W], digit_resized [H, W] (0..255 scale) -> out [3, H, W]
void composite_pixels(const float* background, const float* digit_resized, int64_t h, int64_t w, float* out) {
  const int64_t hw = h * w;
  for (int64_t p = 0; p < hw; ++p) {
    const uint8_t g8 = to_byte(digit_resized[p]);
    const float a = g8 > 0 ? kCompositeAlpha : 0.0f;
    const float gray = static_cast<float>(g8) * (1.0f / 255.0f);
    for (int64_t c = 0; c < 3; ++c) {
      out[c * hw + p] = (1.0f - a) * background[c * hw + p] + a * gray;
    }
  }
}

CompositeDataset::CompositeDataset(std::shared_ptr<const Dataset> background, std::shared_ptr<const Dataset> digits,
                                   std::string name)
    : bg_(std::move(background)), digits_(std::move(digits)), name_(std::move(name)) {
  if (!bg_ || !digits_) throw std::invalid_argument(name_ + ": background and digit datasets must not be null");
  const DatasetInfo bi = bg_->info(), di = digits_->info();
  if (bi.input_shape.size() != 3 || bi.input_shape[0] != 3) {
    throw std::invalid_argument(name_ + ": background images must be [3, H, W], " + bi.name + " has " +
                                shape_str(bi.input_shape));
  }
  if (di.input_shape.size() != 3 || di.input_shape[0] != 1) {
    throw std::invalid_argument(name_ + ": digit images must be [1, h, w], " + di.name + " has " +
                                shape_str(di.input_shape));
  }
  if (bi.num_classes.size() != 1 || di.num_classes.size() != 1) {
    throw std::invalid_argument(name_ + ": both sources need exactly one label set, found " +
                                std::to_string(bi.num_classes.size()) + " (" + bi.name + ") and " +
                                std::to_string(di.num_classes.size()) + " (" + di.name + ")");
  }
  size_ = std::min(bg_->size(), digits_->size());
  h_ = bi.input_shape[1];
  w_ = bi.input_shape[2];
  dh_ = di.input_shape[1];
  dw_ = di.input_shape[2];
  ay_ = bicubic_axis(dh_, h_);
  ax_ = bicubic_axis(dw_, w_);
  info_.name = name_;
  info_.input_shape = {3, h_, w_};
  info_.num_classes = {bi.num_classes[0], di.num_classes[0]};
  if (!bi.class_names.empty() && !di.class_names.empty()) info_.class_names = {bi.class_names[0], di.class_names[0]};
}

DatasetInfo CompositeDataset::info() const { return info_; }

void CompositeDataset::read(int64_t i, float* input, int64_t* labels) const {
  check_index(i);
  thread_local std::vector<float> digit, resized, scratch;
  digit.resize(static_cast<size_t>(dh_ * dw_));
  resized.resize(static_cast<size_t>(h_ * w_));
  int64_t dl = 0;
  digits_->read(i, digit.data(), &dl);
  for (float& v : digit) v *= 255.0f;
  resize_bicubic(digit.data(), 1, ay_, ax_, resized.data(), scratch);
  int64_t bl = 0;
  bg_->read(i, input, &bl);  // background straight into the output, then blended in place
  composite_pixels(input, resized.data(), h_, w_, input);
  labels[0] = bl;
  labels[1] = dl;
}

Example CompositeDataset::get(int64_t i) const {
  Example ex;
  ex.input = Tensor::empty({3, h_, w_});
  ex.labels.resize(2);
  read(i, ex.input.data(), ex.labels.data());
  return ex;
}

}  // namespace data
}  // namespace scalpel
