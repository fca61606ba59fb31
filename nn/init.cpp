#include "nn/init.h"

#include <cmath>
#include <stdexcept>

namespace scalpel {
namespace nn {
namespace init {

namespace {
int64_t receptive(const Tensor& w) {
  int64_t r = 1;
  for (int64_t d = 2; d < w.dim(); ++d) r *= w.size(d);
  return r;
}
void check_rank(const Tensor& w, const char* op) {
  if (w.dim() < 2) {
    throw std::invalid_argument(std::string(op) + ": fan in/out needs a weight with at least 2 dims, got " +
                                shape_str(w.shape()));
  }
}
// Writes values drawn by `draw` into w (row-major order), without recording.
template <class F>
Tensor& fill_with(Tensor& w, F draw) {
  NoGradGuard ng;
  Tensor tmp = Tensor::empty(w.shape());
  float* p = tmp.data();
  for (int64_t i = 0; i < tmp.numel(); ++i) p[i] = draw();
  w.copy_(tmp);
  return w;
}
}  // namespace

int64_t fan_in(const Tensor& w) {
  check_rank(w, "fan_in");
  return w.size(1) * receptive(w);
}

int64_t fan_out(const Tensor& w) {
  check_rank(w, "fan_out");
  return w.size(0) * receptive(w);
}

double gain(const std::string& nonlinearity, double a) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity == "identity") return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + a * a));
  throw std::invalid_argument("init::gain: unknown nonlinearity '" + nonlinearity +
                              "' (expected linear, sigmoid, tanh, relu or leaky_relu)");
}

Tensor& kaiming_uniform_(Tensor& w, Generator& gen, double a, FanMode mode, const std::string& nonlinearity) {
  const double fan = static_cast<double>(mode == FanMode::FanIn ? fan_in(w) : fan_out(w));
  const double bound = gain(nonlinearity, a) * std::sqrt(3.0 / fan);
  return uniform_(w, gen, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& w, Generator& gen, double a, FanMode mode, const std::string& nonlinearity) {
  const double fan = static_cast<double>(mode == FanMode::FanIn ? fan_in(w) : fan_out(w));
  return normal_(w, gen, 0.0, gain(nonlinearity, a) / std::sqrt(fan));
}

Tensor& xavier_uniform_(Tensor& w, Generator& gen, double g) {
  const double bound = g * std::sqrt(6.0 / static_cast<double>(fan_in(w) + fan_out(w)));
  return uniform_(w, gen, -bound, bound);
}

Tensor& xavier_normal_(Tensor& w, Generator& gen, double g) {
  return normal_(w, gen, 0.0, g * std::sqrt(2.0 / static_cast<double>(fan_in(w) + fan_out(w))));
}

Tensor& uniform_(Tensor& w, Generator& gen, double low, double high) {
  const double span = high - low;
  return fill_with(w, [&] { return static_cast<float>(low + span * gen.uniform_double()); });
}

Tensor& normal_(Tensor& w, Generator& gen, double mean, double stddev) {
  return fill_with(w, [&] { return static_cast<float>(mean + stddev * gen.normal()); });
}

Tensor& zeros_(Tensor& w) {
  NoGradGuard ng;
  w.fill_(0.0f);
  return w;
}

Tensor& ones_(Tensor& w) {
  NoGradGuard ng;
  w.fill_(1.0f);
  return w;
}

}  // namespace init
}  // namespace nn
}  // namespace scalpel
