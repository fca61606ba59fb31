// Cifar10Mnist: the multi-task composite of a colour image and a digit (ALGORITHMS.md §5, after
// Hotegni et al. 2023), built lazily from any background dataset [3, H, W] and any digit dataset
// [1, h, w], each with one label set. The real pairing is CIFAR-10 with MNIST; the synthetic one
// (synthetic-composite) is synthetic-textures with synthetic-digits, through the same code.
//
// Example i pairs background i with digit i (size = min of the two sizes), and:
//   1. the digit is taken on its 0..255 scale and resized h x w -> H x W with bicubic
//      interpolation (data/image_ops.h: Keys a = -0.75, PyTorch's align_corners=False sampling);
//   2. the resized digit is quantised back to 8 bits (clamp to [0, 255], round half up), as an
//      8-bit image pipeline (PIL / torchvision) stores it, so faint ringing below 0.5 vanishes;
//   3. the alpha mask is a = 128/255 where that resized pixel is > 0, and 0 elsewhere;
//   4. out[c] = (1 - a) * background[c] + a * digit / 255 for each of the 3 channels.
// Labels are (background label, digit label).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_ops.h"

namespace scalpel {
namespace data {

constexpr float kCompositeAlpha = 128.0f / 255.0f;

// The per-pixel rule of steps 2-4 for one image: background [3, H, W] in [0, 1], digit_resized
// [H, W] on the 0..255 scale (before quantisation) -> out [3, H, W].
void composite_pixels(const float* background, const float* digit_resized, int64_t h, int64_t w, float* out);

class CompositeDataset : public Dataset {
 public:
  CompositeDataset(std::shared_ptr<const Dataset> background, std::shared_ptr<const Dataset> digits,
                   std::string name = "cifar10-mnist");
  int64_t size() const override { return size_; }
  Example get(int64_t i) const override;
  DatasetInfo info() const override;
  void read(int64_t i, float* input, int64_t* labels) const override;

  const Dataset& background() const { return *bg_; }
  const Dataset& digits() const { return *digits_; }

 private:
  std::shared_ptr<const Dataset> bg_, digits_;
  std::string name_;
  int64_t size_;
  int64_t h_, w_, dh_, dw_;
  ResampleAxis ay_, ax_;
  DatasetInfo info_;
};

}  // namespace data
}  // namespace scalpel
