// Transforms: per-example preprocessing and seeded augmentation applied by the DataLoader.
//
// A transform works in place on one example's float input (row-major, shape `shape`, e.g.
// [C, H, W]) and never changes the number of elements; `output_shape` only relabels the shape
// (Flatten turns [C, H, W] into [C*H*W]). That lets the DataLoader apply a pipeline directly inside
// the batch buffer, with no allocation per example.
//
// Random transforms draw from the Generator they are handed. The DataLoader gives every example
// its own Generator seeded from (loader seed, epoch, dataset index), so augmentation is
// deterministic and does not depend on batch order, prefetching or threads.
//
//   auto aug = compose({random_crop(4), random_horizontal_flip(), normalize(kCifarMean, kCifarStd)});
//   DataLoader loader(train, DataLoaderOptions().batch_size(128).transform(aug));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace scalpel {
namespace data {

class Transform {
 public:
  virtual ~Transform() = default;
  // The shape after this transform; throws std::invalid_argument naming the transform when the
  // input shape is not supported (e.g. a channel count that does not match Normalize's).
  virtual Shape output_shape(const Shape& in) const { return in; }
  // Applies the transform in place to one example of shape `shape` (already validated).
  virtual void apply(float* x, const Shape& shape, Generator& gen) const = 0;
  virtual bool is_random() const { return false; }
  // True when output_shape may differ from the input shape (Flatten); lets Compose skip shape
  // bookkeeping per example.
  virtual bool changes_shape() const { return false; }
  virtual std::string describe() const = 0;

  // Convenience for one example outside a loader: returns a transformed copy of `x`.
  Tensor operator()(const Tensor& x, Generator& gen) const;
};

using TransformPtr = std::shared_ptr<const Transform>;

// x [C, ...] -> (x - mean[c]) / std[c] per channel c. mean and std have C entries (or 1 entry,
// used for every channel); std entries must be positive.
TransformPtr normalize(std::vector<float> mean, std::vector<float> std);
// x [C, H, W]: zero-pad by `padding` on every side, then cut a random H x W window (offsets
// uniform in [0, 2*padding]). Equivalent to torchvision RandomCrop(H, padding=padding).
TransformPtr random_crop(int64_t padding, float fill = 0.0f);
// x [C, H, W]: mirror along W with probability p.
TransformPtr random_horizontal_flip(float p = 0.5f);
// x [...] -> [numel], for MLPs.
TransformPtr flatten();
// Applies the transforms left to right.
TransformPtr compose(std::vector<TransformPtr> transforms);

// Per-channel statistics of the real data sets (computed on their training splits), for
// normalize(). Synthetic sets are close enough that the same constants are fine.
extern const std::vector<float> kMnistMean, kMnistStd, kCifarMean, kCifarStd;

}  // namespace data
}  // namespace scalpel
