// Convolutional layers: Conv2d (im2col + sgemm or direct kernels, see core ConvAlgo), BatchNorm2d
// (optionally with a fused ReLU), MaxPool2d, AvgPool2d and GlobalAvgPool2d, all over NCHW tensors.
//
//   auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(3, 64, 3).stride(1).padding(1).bias(false), gen);
//   auto bn = std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(64));
//   Tensor y = bn->forward(conv->forward(x));  // x [N, 3, H, W] -> [N, 64, H, W]
//
// BatchNorm2d keeps running_mean/running_var as buffers (saved in state_dict). In train() mode it
// normalises with batch statistics and updates the running ones in place
// (new = (1 - momentum) * old + momentum * batch, unbiased variance, as PyTorch); in eval() mode
// it uses the running statistics.
#pragma once

#include "nn/module.h"

namespace scalpel {
namespace nn {

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  SCALPEL_ARG(int64_t, in_channels);
  SCALPEL_ARG(int64_t, out_channels);
  SCALPEL_ARG(int64_t, kernel_size);
  SCALPEL_ARG(int64_t, stride) = 1;
  SCALPEL_ARG(int64_t, padding) = 0;
  SCALPEL_ARG(bool, bias) = true;
  // How to compute (core ConvAlgo): kAuto picks from the shapes; tests and benchmarks can force
  // kIm2col, kIm2colRows or kDirect. Every choice gives the same values up to rounding.
  SCALPEL_ARG(ConvAlgo, algo) = ConvAlgo::kAuto;
};

// x [N, C_in, H, W] -> [N, C_out, Ho, Wo]; weight [C_out, C_in, k, k], bias [C_out]
class Conv2d : public Layer {
 public:
  Conv2d(const Conv2dOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator& gen);  // PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  const Conv2dOptions& options() const { return options_; }
  Tensor weight;
  Tensor bias;

 private:
  Conv2dOptions options_;
};

struct BatchNorm2dOptions {
  explicit BatchNorm2dOptions(int64_t num_features) : num_features_(num_features) {}
  SCALPEL_ARG(int64_t, num_features);
  SCALPEL_ARG(double, momentum) = 0.1;
  SCALPEL_ARG(double, eps) = 1e-5;
  SCALPEL_ARG(bool, affine) = true;
  // Apply a ReLU to the output in the same pass (core batch_norm_relu): the values and gradients of
  // relu(bn(x)) with one memory pass and one tensor fewer each way.
  SCALPEL_ARG(bool, relu) = false;
  // Data parallel: statistics over every rank's rows (SyncBatchNorm). Default: per rank, as DDP.
  SCALPEL_ARG(bool, sync) = false;
};

// x [N, C, H, W] (or [N, C]) -> same shape
class BatchNorm2d : public Layer {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options);
  Tensor forward(const Tensor& x) override;
  const BatchNorm2dOptions& options() const { return options_; }
  void set_sync(bool on) { options_.sync(on); }
  Tensor weight, bias;               // [C] (undefined without affine)
  Tensor running_mean, running_var;  // [C] buffers

 private:
  BatchNorm2dOptions options_;
};

// Sets BatchNorm2dOptions::sync on every BatchNorm2d of `model` (e.g. a ResNet-18 for a study's
// --sync-batch-norm).
void sync_batch_norm(Module& model, bool on = true);

struct Pool2dOptions {
  explicit Pool2dOptions(int64_t kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}
  SCALPEL_ARG(int64_t, kernel_size);
  SCALPEL_ARG(int64_t, stride);
  SCALPEL_ARG(int64_t, padding) = 0;
};

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(const Pool2dOptions& options) : Layer("MaxPool2d"), options_(options) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pool2dOptions options_;
};

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(const Pool2dOptions& options) : Layer("AvgPool2d"), options_(options) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pool2dOptions options_;
};

// [N, C, H, W] -> [N, C]
class GlobalAvgPool2d : public Layer {
 public:
  GlobalAvgPool2d() : Layer("GlobalAvgPool2d") {}
  Tensor forward(const Tensor& x) override;
};

}  // namespace nn
}  // namespace scalpel
