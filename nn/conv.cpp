#include "nn/conv.h"

#include <cmath>
#include <stdexcept>

#include "nn/init.h"

namespace scalpel {
namespace nn {

namespace {
void check_nchw(const Module& m, const Tensor& x, int64_t channels) {
  if (x.dim() != 4 || x.size(1) != channels) {
    throw std::invalid_argument(m.describe() + ": input has shape " + shape_str(x.shape()) + ", expected [N, " +
                                std::to_string(channels) + ", H, W]");
  }
}
}  // namespace

Conv2d::Conv2d(const Conv2dOptions& options, Generator& gen) : Layer("Conv2d"), options_(options) {
  if (options.in_channels() <= 0 || options.out_channels() <= 0 || options.kernel_size() <= 0 ||
      options.stride() <= 0 || options.padding() < 0) {
    throw std::invalid_argument("Conv2d: channels, kernel_size and stride must be positive and padding non-negative");
  }
  const int64_t k = options.kernel_size();
  weight = register_parameter("weight", Tensor::empty({options.out_channels(), options.in_channels(), k, k}));
  if (options.bias()) bias = register_parameter("bias", Tensor::empty({options.out_channels()}));
  reset_parameters(gen);
}

void Conv2d::reset_parameters(Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
  init::uniform_(weight, gen, -bound, bound);
  if (bias.defined()) init::uniform_(bias, gen, -bound, bound);
}

Tensor Conv2d::forward(const Tensor& x) {
  check_nchw(*this, x, options_.in_channels());
  Conv2dParams p;
  p.stride_h = p.stride_w = options_.stride();
  p.pad_h = p.pad_w = options_.padding();
  p.algo(options_.algo());
  return conv2d(x, weight, bias, p);
}

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& options) : Layer("BatchNorm2d"), options_(options) {
  const int64_t c = options.num_features();
  if (c <= 0) throw std::invalid_argument("BatchNorm2d: num_features must be positive, got " + std::to_string(c));
  if (options.affine()) {
    weight = register_parameter("weight", Tensor::ones({c}));
    bias = register_parameter("bias", Tensor::zeros({c}));
  }
  running_mean = register_buffer("running_mean", Tensor::zeros({c}));
  running_var = register_buffer("running_var", Tensor::ones({c}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if ((x.dim() != 4 && x.dim() != 2) || x.size(1) != options_.num_features()) {
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [N, " +
                                std::to_string(options_.num_features()) + ", H, W] or [N, " +
                                std::to_string(options_.num_features()) + "]");
  }
  const auto op = options_.relu() ? batch_norm_relu : batch_norm;
  return op(x, weight, bias, running_mean, running_var, is_training(), static_cast<float>(options_.momentum()),
            static_cast<float>(options_.eps()), options_.sync());
}

void sync_batch_norm(Module& model, bool on) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) bn->set_sync(on);
  }
}

Tensor MaxPool2d::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [N, C, H, W]");
  return max_pool2d(x, options_.kernel_size(), options_.stride(), options_.padding());
}

Tensor AvgPool2d::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [N, C, H, W]");
  return avg_pool2d(x, options_.kernel_size(), options_.stride(), options_.padding());
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(x.shape()) + ", expected [N, C, H, W]");
  return global_avg_pool2d(x);
}

}  // namespace nn
}  // namespace scalpel
