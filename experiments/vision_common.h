// Helpers shared by the ResNet studies (scalpel-weight-norm, scalpel-multitask): the standard
// CIFAR transforms and a per-head evaluation of a multi-head ResNet over a dataset.
#pragma once

#include <memory>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "nn/resnet.h"

namespace scalpel {
namespace experiments {

// normalize (CIFAR mean/std), preceded by random crop (pad 4) + horizontal flip when `augment`.
data::TransformPtr cifar_transform(bool augment);

struct HeadMetrics {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction correct
};

// Mean cross-entropy and accuracy of every head over (the first `limit` examples of, when
// limit > 0) `ds`, in eval mode (BatchNorm running statistics), without recording; head k is scored
// against label set k. The model's train/eval mode is restored afterwards.
std::vector<HeadMetrics> evaluate_heads(nn::ResNet18& net, const std::shared_ptr<const data::Dataset>& ds,
                                        int64_t limit, int64_t batch_size = 256);

}  // namespace experiments
}  // namespace scalpel
