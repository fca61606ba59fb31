// ResNet-18 with K classification heads on one shared trunk.
//
//   nn::ResNet18 net(nn::ResNetOptions().heads({10, 10}).width(16), gen);
//   std::vector<Tensor> logits = net.forward(x);   // x [N, 3, 32, 32] -> K tensors [N, classes_k]
//
// BasicBlock stages [2, 2, 2, 2] with widths w, 2w, 4w, 8w (w = 64 by default; the width
// multiplier scales all of them). The CIFAR stem (default) is a 3x3 stride-1 conv without
// max-pool; the ImageNet stem is a 7x7 stride-2 conv followed by a 3x3 stride-2 max-pool. Module
// names follow torchvision (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, ...); the heads are
// heads.0 .. heads.{K-1}. Initialisation follows torchvision: convs kaiming_normal(fan_out, relu),
// BatchNorm weight 1 / bias 0, heads PyTorch's Linear default. One forward through the trunk
// serves every head, so BatchNorm statistics are updated once per step.
#pragma once

#include <vector>

#include "nn/conv.h"
#include "nn/linear.h"

namespace scalpel {
namespace nn {

class BasicBlock : public Layer {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Sequential> downsample;  // null when the shortcut is the identity
};

struct ResNetOptions {
  ResNetOptions() {
    heads_.assign(1, 10);
    blocks_.assign(4, 2);
  }
  SCALPEL_ARG(std::vector<int64_t>, heads);  // classes per head (default one head of 10)
  SCALPEL_ARG(int64_t, width) = 64;
  SCALPEL_ARG(std::string, stem) = "cifar";  // "cifar" or "imagenet"
  SCALPEL_ARG(int64_t, in_channels) = 3;
  SCALPEL_ARG(std::vector<int64_t>, blocks);  // BasicBlocks per stage (default 2, 2, 2, 2)
};

class ResNet18 : public Module {
 public:
  ResNet18(const ResNetOptions& options, Generator& gen);
  // x [N, C, H, W] -> trunk features [N, 8 * width]
  Tensor features(const Tensor& x);
  // x [N, C, H, W] -> one logits tensor per head
  std::vector<Tensor> forward(const Tensor& x);
  const ResNetOptions& options() const { return options_; }
  std::vector<std::shared_ptr<Linear>> heads;

 private:
  ResNetOptions options_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::vector<std::shared_ptr<Sequential>> stages_;
};

}  // namespace nn
}  // namespace scalpel
