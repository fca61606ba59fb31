#include "nn/resnet.h"

#include <stdexcept>

#include "nn/init.h"

namespace scalpel {
namespace nn {

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride, Generator& gen)
    : Layer("BasicBlock") {
  conv1 = register_module(
      "conv1",
      std::make_shared<Conv2d>(Conv2dOptions(in_channels, out_channels, 3).stride(stride).padding(1).bias(false), gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(BatchNorm2dOptions(out_channels).relu(true)));
  conv2 = register_module(
      "conv2",
      std::make_shared<Conv2d>(Conv2dOptions(out_channels, out_channels, 3).stride(1).padding(1).bias(false), gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(BatchNorm2dOptions(out_channels)));
  if (stride != 1 || in_channels != out_channels) {
    downsample = register_module("downsample", std::make_shared<Sequential>());
    downsample->push_back(
        std::make_shared<Conv2d>(Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false), gen));
    downsample->push_back(std::make_shared<BatchNorm2d>(BatchNorm2dOptions(out_channels)));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = bn1->forward(conv1->forward(x));  // bn1 applies the ReLU (fused)
  out = bn2->forward(conv2->forward(out));
  return add_relu(out, downsample ? downsample->forward(x) : x);
}

ResNet18::ResNet18(const ResNetOptions& options, Generator& gen) : Module("ResNet18"), options_(options) {
  const int64_t w = options.width();
  if (w <= 0) throw std::invalid_argument("ResNet18: width must be positive, got " + std::to_string(w));
  if (options.heads().empty()) throw std::invalid_argument("ResNet18: at least one head is required");
  if (options.blocks().size() != 4) throw std::invalid_argument("ResNet18: blocks must list 4 stages");
  if (options.stem() == "cifar") {
    conv1_ = register_module(
        "conv1", std::make_shared<Conv2d>(Conv2dOptions(options.in_channels(), w, 3).padding(1).bias(false), gen));
  } else if (options.stem() == "imagenet") {
    conv1_ = register_module(
        "conv1",
        std::make_shared<Conv2d>(Conv2dOptions(options.in_channels(), w, 7).stride(2).padding(3).bias(false), gen));
  } else {
    throw std::invalid_argument("ResNet18: stem must be 'cifar' or 'imagenet', got '" + options.stem() + "'");
  }
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(BatchNorm2dOptions(w).relu(true)));
  int64_t in = w;
  for (int s = 0; s < 4; ++s) {
    const int64_t out = w << s;
    auto stage = register_module("layer" + std::to_string(s + 1), std::make_shared<Sequential>());
    for (int64_t b = 0; b < options.blocks()[s]; ++b) {
      stage->push_back(std::make_shared<BasicBlock>(in, out, (b == 0 && s > 0) ? 2 : 1, gen));
      in = out;
    }
    stages_.push_back(stage);
  }
  auto head_list = register_module("heads", std::make_shared<Module>("Heads"));
  for (size_t k = 0; k < options.heads().size(); ++k) {
    heads.push_back(head_list->register_module(std::to_string(k),
                                               std::make_shared<Linear>(LinearOptions(in, options.heads()[k]), gen)));
  }
  // torchvision initialisation for the trunk.
  for (auto& [name, m] : named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m)) init::kaiming_normal_(c->weight, gen, 0.0, init::FanMode::FanOut, "relu");
  }
}

Tensor ResNet18::features(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels()) {
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [N, " +
                                std::to_string(options_.in_channels()) + ", H, W]");
  }
  Tensor h = bn1_->forward(conv1_->forward(x));  // bn1 applies the ReLU (fused)
  if (options_.stem() == "imagenet") h = max_pool2d(h, 3, 2, 1);
  for (auto& stage : stages_) h = stage->forward(h);
  return global_avg_pool2d(h);
}

std::vector<Tensor> ResNet18::forward(const Tensor& x) {
  Tensor f = features(x);
  std::vector<Tensor> out;
  for (auto& h : heads) out.push_back(h->forward(f));
  return out;
}

}  // namespace nn
}  // namespace scalpel
