// Parameter initialisers. Each fills a tensor in place from an explicit Generator, under
// NoGradGuard, and returns it. Fan-in/fan-out follow PyTorch: for a weight [out, in, k...],
// fan_in = in * prod(k), fan_out = out * prod(k).
#pragma once

#include "core/ops.h"
#include "core/random.h"

namespace scalpel {
namespace nn {
namespace init {

enum class FanMode { FanIn, FanOut };

int64_t fan_in(const Tensor& w);
int64_t fan_out(const Tensor& w);
// Gain of a nonlinearity: "linear"/"sigmoid" 1, "tanh" 5/3, "relu" sqrt(2), "leaky_relu" sqrt(2/(1+a^2)).
double gain(const std::string& nonlinearity, double a = 0.0);

// U(-b, b), b = gain * sqrt(3 / fan); gain from `nonlinearity` (and `a` for leaky_relu).
Tensor& kaiming_uniform_(Tensor& w, Generator& gen, double a = 0.0, FanMode mode = FanMode::FanIn,
                         const std::string& nonlinearity = "leaky_relu");
// N(0, std^2), std = gain / sqrt(fan).
Tensor& kaiming_normal_(Tensor& w, Generator& gen, double a = 0.0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu");
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& w, Generator& gen, double gain = 1.0);
// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& w, Generator& gen, double gain = 1.0);
Tensor& uniform_(Tensor& w, Generator& gen, double low, double high);
Tensor& normal_(Tensor& w, Generator& gen, double mean = 0.0, double stddev = 1.0);
Tensor& zeros_(Tensor& w);
Tensor& ones_(Tensor& w);

}  // namespace init
}  // namespace nn
}  // namespace scalpel
