// Losses and regularizers: cross-entropy and MSE modules, the spectral-norm Lipschitz bound of an
// MLP, and the weight norm ½‖θ‖² (ALGORITHMS.md §4).
//
//   nn::LipschitzBound bound(mlp, nn::LipschitzOptions().iterations(1), gen);
//   Tensor l_aux = bound.forward();   // Σ_l log σ_max(W_l) over mlp's Linear weights
//   Tensor l_wd = nn::l2_norm(model.parameters(), /*weights_only=*/false);   // ½ Σ ‖θ‖²
//
// LipschitzBound keeps one pair of power-iteration vectors (u_l, v_l) per Linear weight as its own
// buffers ("u0", "v0", ...; saved in its state_dict). Each forward() first runs `iterations`
// power steps under NoGradGuard (v = Wᵀu/‖Wᵀu‖, u = Wv/‖Wv‖), then returns a differentiable
// σ_l = uᵀ W v. With u, v held constant, ∂σ/∂W = u vᵀ, so ∂ log σ/∂W = u vᵀ / σ — exactly what the
// autograd of this expression gives. Options: `log` (Σ log σ, the paper's loss; otherwise Π σ) and
// `square` (σ² instead of σ, the reference code's choice, i.e. twice the paper's log loss).
#pragma once

#include <vector>

#include "nn/linear.h"
#include "nn/module.h"

namespace scalpel {
namespace nn {

struct CrossEntropyLossOptions {
  SCALPEL_ARG(double, label_smoothing) = 0.0;
  SCALPEL_ARG(int64_t, ignore_index) = -100;
};

// logits [N, C], targets [N] -> scalar mean
class CrossEntropyLoss : public Module {
 public:
  explicit CrossEntropyLoss(const CrossEntropyLossOptions& options = CrossEntropyLossOptions())
      : Module("CrossEntropyLoss"), options_(options) {}
  Tensor forward(const Tensor& logits, const IndexTensor& targets) const;

 private:
  CrossEntropyLossOptions options_;
};

// input, target (same shape) -> scalar mean squared error
class MSELoss : public Module {
 public:
  MSELoss() : Module("MSELoss") {}
  Tensor forward(const Tensor& input, const Tensor& target) const { return mse_loss(input, target); }
};

struct LipschitzOptions {
  SCALPEL_ARG(int64_t, iterations) = 1;        // power steps per forward()
  SCALPEL_ARG(int64_t, init_iterations) = 50;  // power steps at construction
  SCALPEL_ARG(bool, log) = true;               // Σ log σ (else Π σ)
  SCALPEL_ARG(bool, square) = false;           // σ² instead of σ
};

class LipschitzBound : public Module {
 public:
  // Tracks every Linear in `model` (in module order). The model must outlive this object.
  LipschitzBound(Module& model, const LipschitzOptions& options, Generator& gen);
  // Runs the configured power iterations, then returns the differentiable bound (a scalar).
  Tensor forward();
  // Power iterations only (no graph), e.g. more of them before an evaluation.
  void power_iterate(int64_t steps);
  // Current σ estimates u_lᵀ W_l v_l (no graph).
  std::vector<float> sigmas() const;
  // The bound's value after `iterations` extra power steps run on copies of the vectors (the
  // buffers are left untouched, so evaluating never changes training). No graph.
  double evaluate(int64_t iterations) const;
  const std::vector<Tensor>& weights() const { return weights_; }

 private:
  LipschitzOptions options_;
  std::vector<Tensor> weights_;
  std::vector<Tensor> u_, v_;
};

// ½ Σ ‖p‖² over `params`; with weights_only, only tensors with >= 2 dims (no biases, no norms).
Tensor l2_norm(const std::vector<Tensor>& params, bool weights_only = false);

}  // namespace nn
}  // namespace scalpel
