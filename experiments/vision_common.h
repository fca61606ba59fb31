// Helpers shared by the ResNet studies (scalpel-weight-norm, scalpel-multitask): the standard
// CIFAR transforms and a per-head evaluation of a multi-head ResNet over a dataset.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "nn/resnet.h"
#include "nn/rotograd.h"

namespace scalpel {
namespace experiments {

// normalize (CIFAR mean/std), preceded by random crop (pad 4) + horizontal flip when `augment`.
data::TransformPtr cifar_transform(bool augment);

struct HeadMetrics {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction correct
};

// Adds label sets derived from a batch's own (e.g. the parity of the digit), after the loader's.
using DeriveLabels = std::function<void(data::Batch&)>;

// The parity of label set `from` (0 even, 1 odd), appended as a new label set.
DeriveLabels parity_of_labels(size_t from);

// Mean cross-entropy and accuracy of every head over (the first `limit` examples of, when
// limit > 0) `ds`, in eval mode (BatchNorm running statistics), without recording; head k is scored
// against label set k (after `derive`, when given, appended its label sets). The model's
// train/eval mode is restored afterwards.
// One trunk forward, then every head: on the trunk features, or with `roto` on each head's
// RotoGrad rotation of them. x [N, C, H, W] -> K logits tensors.
std::vector<Tensor> head_logits(nn::ResNet18& net, const Tensor& x, nn::RotoGrad* roto);

// With `roto`, the heads see the RotoGrad rotations of the trunk features (in eval mode).
std::vector<HeadMetrics> evaluate_heads(nn::ResNet18& net, const std::shared_ptr<const data::Dataset>& ds,
                                        int64_t limit, int64_t batch_size = 256, const DeriveLabels& derive = {},
                                        nn::RotoGrad* roto = nullptr);

}  // namespace experiments
}  // namespace scalpel
