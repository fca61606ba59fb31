#include "nn/loss.h"

#include <cmath>
#include <stdexcept>

namespace scalpel {
namespace nn {

Tensor CrossEntropyLoss::forward(const Tensor& logits, const IndexTensor& targets) const {
  return cross_entropy(logits, targets,
                       CrossEntropyOptions()
                           .set_ignore_index(options_.ignore_index())
                           .set_label_smoothing(static_cast<float>(options_.label_smoothing())));
}

namespace {
// Normalises v in place; a zero vector is left as is.
void normalize_(Tensor& v) {
  const float n = norm(v).item();
  if (n > 0.0f) v.mul_(1.0f / n);
}
}  // namespace

LipschitzBound::LipschitzBound(Module& model, const LipschitzOptions& options, Generator& gen)
    : Module("LipschitzBound"), options_(options) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* l = dynamic_cast<Linear*>(m)) weights_.push_back(l->weight);
  }
  if (weights_.empty()) {
    throw std::invalid_argument("LipschitzBound: " + model.describe() + " contains no Linear layer");
  }
  NoGradGuard ng;
  for (size_t k = 0; k < weights_.size(); ++k) {
    Tensor u = Tensor::normal({weights_[k].size(0)}, gen);
    Tensor v = Tensor::normal({weights_[k].size(1)}, gen);
    normalize_(u);
    normalize_(v);
    u_.push_back(register_buffer("u" + std::to_string(k), u));
    v_.push_back(register_buffer("v" + std::to_string(k), v));
  }
  power_iterate(options.init_iterations());
}

void LipschitzBound::power_iterate(int64_t steps) {
  NoGradGuard ng;
  for (size_t k = 0; k < weights_.size(); ++k) {
    const Tensor W = weights_[k].detach();
    for (int64_t s = 0; s < steps; ++s) {
      // v = Wᵀu / ‖Wᵀu‖, u = W v / ‖W v‖ (written in place so the buffers keep their identity)
      Tensor v = matmul(u_[k].reshape({1, -1}), W).reshape({-1});
      normalize_(v);
      v_[k].copy_(v);
      Tensor u = matmul(W, v_[k].reshape({-1, 1})).reshape({-1});
      normalize_(u);
      u_[k].copy_(u);
    }
  }
}

std::vector<float> LipschitzBound::sigmas() const {
  NoGradGuard ng;
  std::vector<float> out;
  for (size_t k = 0; k < weights_.size(); ++k) {
    out.push_back(matmul(matmul(u_[k].reshape({1, -1}), weights_[k].detach()), v_[k].reshape({-1, 1})).item());
  }
  return out;
}

double LipschitzBound::evaluate(int64_t iterations) const {
  NoGradGuard ng;
  double total = options_.log() ? 0.0 : 1.0;
  for (size_t k = 0; k < weights_.size(); ++k) {
    const Tensor W = weights_[k].detach();
    Tensor u = u_[k].clone(), v = v_[k].clone();
    for (int64_t s = 0; s < iterations; ++s) {
      v = matmul(u.reshape({1, -1}), W).reshape({-1});
      normalize_(v);
      u = matmul(W, v.reshape({-1, 1})).reshape({-1});
      normalize_(u);
    }
    double sigma = matmul(matmul(u.reshape({1, -1}), W), v.reshape({-1, 1})).item();
    if (options_.square()) sigma *= sigma;
    total = options_.log() ? total + std::log(sigma) : total * sigma;
  }
  return total;
}

Tensor LipschitzBound::forward() {
  power_iterate(options_.iterations());
  Tensor total;
  for (size_t k = 0; k < weights_.size(); ++k) {
    // σ = uᵀ W v with u, v constants: ∂σ/∂W = u vᵀ.
    Tensor sigma = matmul(matmul(u_[k].reshape({1, -1}), weights_[k]), v_[k].reshape({-1, 1})).reshape({});
    Tensor term = options_.square() ? square(sigma) : sigma;
    if (options_.log()) term = log(term);
    total = !total.defined() ? term : (options_.log() ? add(total, term) : mul(total, term));
  }
  return total;
}

Tensor l2_norm(const std::vector<Tensor>& params, bool weights_only) {
  Tensor total;
  for (const Tensor& p : params) {
    if (weights_only && p.dim() < 2) continue;
    Tensor s = square(p).sum();
    total = total.defined() ? add(total, s) : s;
  }
  if (!total.defined()) {
    throw std::invalid_argument(std::string("l2_norm: no parameters to sum") +
                                (weights_only ? " (weights_only selects tensors with >= 2 dims)" : ""));
  }
  return mul(total, 0.5f);
}

}  // namespace nn
}  // namespace scalpel
