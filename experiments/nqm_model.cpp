#include "experiments/nqm_model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/ops.h"
#include "optim/optimizer.h"

namespace scalpel {
namespace experiments {

Nqm Nqm::log_spaced(int64_t dim, double condition, double noise) {
  if (dim < 1 || !(condition >= 1.0) || !(noise >= 0.0)) {
    throw std::invalid_argument("Nqm: need dim >= 1, condition >= 1 and noise >= 0, got dim " + std::to_string(dim) +
                                ", condition " + std::to_string(condition) + ", noise " + std::to_string(noise));
  }
  Nqm q;
  q.noise = noise;
  for (int64_t i = 0; i < dim; ++i) {
    const double t = dim == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(dim - 1);
    q.h.push_back(std::pow(condition, -t));
  }
  return q;
}

double Nqm::alpha_max() const { return 2.0 / *std::max_element(h.begin(), h.end()); }

namespace {
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
}  // namespace

std::array<double, 3> schedule_values(const Nqm& q, const ScheduleParams& p) {
  return {q.alpha_max() * sigmoid(p[0]), std::exp(p[1]), softplus(p[2])};
}

std::vector<double> schedule_lrs(const Nqm& q, const ScheduleParams& p, int64_t steps) {
  const auto [a0, K, beta] = schedule_values(q, p);
  std::vector<double> lrs;
  for (int64_t k = 0; k < steps; ++k) lrs.push_back(a0 / std::pow(1.0 + static_cast<double>(k) / K, beta));
  return lrs;
}

std::vector<double> expected_losses(const Nqm& q, const std::vector<double>& lrs) {
  std::vector<double> m(q.h.size(), q.m0), out;
  auto loss = [&] {
    double l = 0.0;
    for (size_t i = 0; i < m.size(); ++i) l += 0.5 * q.h[i] * m[i];
    return l;
  };
  out.push_back(loss());
  for (double a : lrs) {
    for (size_t i = 0; i < m.size(); ++i) {
      const double f = 1.0 - a * q.h[i];
      m[i] = f * f * m[i] + a * a * q.noise * q.h[i];
    }
    out.push_back(loss());
  }
  return out;
}

std::vector<double> greedy_lrs(const Nqm& q, int64_t steps) {
  std::vector<double> m(q.h.size(), q.m0), lrs;
  for (int64_t t = 0; t < steps; ++t) {
    // d/dα ½ Σ h [(1 − α h)² m + α² s h] = 0  =>  α = Σ h² m / Σ (h³ m + s h²)
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < m.size(); ++i) {
      num += q.h[i] * q.h[i] * m[i];
      den += q.h[i] * q.h[i] * q.h[i] * m[i] + q.noise * q.h[i] * q.h[i];
    }
    const double a = den > 0.0 ? num / den : 0.0;
    lrs.push_back(a);
    for (size_t i = 0; i < m.size(); ++i) {
      const double f = 1.0 - a * q.h[i];
      m[i] = f * f * m[i] + a * a * q.noise * q.h[i];
    }
  }
  return lrs;
}

MetaResult meta_optimize(const Nqm& q, int64_t horizon, const ScheduleParams& start, int64_t iterations,
                         double meta_lr) {
  if (horizon < 1) throw std::invalid_argument("meta_optimize: the horizon must be >= 1 step");
  const int64_t d = static_cast<int64_t>(q.h.size());
  std::vector<float> hf(q.h.begin(), q.h.end());
  const Tensor h = Tensor::from_vector(hf, {d});
  const Tensor noise_h = mul(h, static_cast<float>(q.noise));
  Tensor params = Tensor::from_vector(
      {static_cast<float>(start[0]), static_cast<float>(start[1]), static_cast<float>(start[2])}, {3});
  params.set_requires_grad(true);
  optim::Adam adam({params}, optim::AdamOptions(meta_lr));
  MetaResult r;
  for (int64_t it = 0; it <= iterations; ++it) {
    // α_k = α_max sigmoid(a) / (1 + k / exp(κ))^softplus(b), as tensors of the parameters.
    const Tensor a0 = mul(sigmoid(params.narrow(0, 0, 1)), static_cast<float>(q.alpha_max()));
    const Tensor inv_k = exp(neg(params.narrow(0, 1, 1)));
    const Tensor b = params.narrow(0, 2, 1);
    const Tensor rb = relu(b);  // softplus(b) = relu(b) + log(exp(-relu(b)) + exp(b - relu(b))), stable
    const Tensor beta = add(rb, log(add(exp(neg(rb)), exp(sub(b, rb)))));
    Tensor m = Tensor::full({d}, static_cast<float>(q.m0));
    for (int64_t k = 0; k < horizon; ++k) {
      const Tensor alpha = div(a0, exp(mul(beta, log(add(mul(inv_k, static_cast<float>(k)), 1.0f)))));
      const Tensor f = rsub(1.0f, mul(alpha, h));
      m = add(mul(square(f), m), mul(square(alpha), noise_h));
    }
    const Tensor loss = mul(sum(mul(h, m)), 0.5f);
    r.meta_losses.push_back(loss.item());
    if (it == iterations) break;
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  const std::vector<float> p = params.to_vector();
  r.params = {p[0], p[1], p[2]};
  return r;
}

}  // namespace experiments
}  // namespace scalpel
