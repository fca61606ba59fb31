// gradnorm: gradient normalisation (Chen et al. 2018, "GradNorm").
//
//   G_i = w_i ‖∇_W L_i‖,  Ḡ = mean_j G_j,  r_i = L̃_i / mean_j L̃_j,  L̃_i = L_i / L_i(first step)
//   L_grad = Σ_i |G_i - Ḡ r_i^α|   (Ḡ r_i^α held constant)      ∂L_grad/∂w_i = sign(G_i - Ḡ r_i^α) ‖∇_W L_i‖
//   f = Σ w_i L_i (w constant in f)
//
// W is a parameter group, the paper's last shared layer: the training step passes ‖∇_W L_i‖ of the
// unweighted losses through the grad_norms callback (TrainStepOptions::weighting_group; without a
// group, the whole parameter vector). The weights w (parameters(), starting at 1) are trained by
// the model's optimizer on ∂L_grad/∂w; after each update they are clamped at 1e-4 and renormalised
// to sum to K, as in the paper. LibMTL parametrises w = K softmax(ŵ) instead and uses every shared
// parameter for W. Option `alpha` α >= 0 (1.5). State: w and the first losses.
#include <cmath>
#include <stdexcept>

#include "core/autograd.h"
#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

class GradNorm : public LossWeighting {
 public:
  explicit GradNorm(const WeightingOptions& o) : LossWeighting("gradnorm", o) {
    check_keys({"alpha"});
    alpha_ = number("alpha", 1.5, 0.0, 100.0);
  }
  bool has_parameters() const override { return true; }
  bool needs_grad_norms() const override { return true; }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    return weighted_sum(losses, parameter_values(), name(), tasks());
  }

  void after_step() override {
    NoGradGuard no_grad;
    Tensor p = parameters().at(0);  // shares the storage
    float* w = p.data();
    const int64_t K = parameters()[0].numel();
    double s = 0.0;
    for (int64_t i = 0; i < K; ++i) s += (w[i] = std::max(w[i], 1e-4f));
    for (int64_t i = 0; i < K; ++i) w[i] = static_cast<float>(w[i] * (static_cast<double>(K) / s));
  }

 protected:
  void init_tasks(int K) override {
    make_parameter(std::vector<float>(K, 1.0f));
    first_.assign(K, 0.0);
  }

  void weigh_impl(const std::vector<double>& L, const GradNormFn& grad_norms, WeightingResult& out) override {
    const size_t K = L.size();
    const std::vector<double> n = grad_norms();
    if (n.size() != K) {
      throw std::invalid_argument("weighting 'gradnorm': got " + std::to_string(n.size()) + " gradient norms for " +
                                  std::to_string(K) + " task losses");
    }
    const std::vector<double> first = has_first_ ? first_ : L;
    for (size_t i = 0; i < K; ++i) {
      if (!(first[i] > 0.0)) {
        throw std::invalid_argument("weighting 'gradnorm': the first loss of task " + std::to_string(i) +
                                    " must be > 0 (the loss ratios divide by it), got " + std::to_string(first[i]) +
                                    signed_loss_hint());
      }
      if (!std::isfinite(n[i])) {
        throw std::invalid_argument("weighting 'gradnorm': the gradient norm of task " + std::to_string(i) +
                                    " is not finite");
      }
    }
    const std::vector<double> w = parameter_values();
    std::vector<double> G(K), lt(K), g(K);
    double Gm = 0.0, lm = 0.0;
    for (size_t i = 0; i < K; ++i) {
      G[i] = w[i] * n[i];
      Gm += G[i] / static_cast<double>(K);
      lt[i] = L[i] / first[i];
      lm += lt[i] / static_cast<double>(K);
    }
    out.weights = w;
    out.loss = 0.0;
    for (size_t i = 0; i < K; ++i) {
      const double target = Gm * std::pow(lt[i] / lm, alpha_);
      const double diff = G[i] - target;
      g[i] = (diff > 0.0 ? 1.0 : (diff < 0.0 ? -1.0 : 0.0)) * n[i];
      out.loss += w[i] * L[i];
    }
    check_finite(out, name());
    set_parameter_grad(g);
    first_ = first;
    has_first_ = true;
  }

  void save_state(StateDict& sd) const override {
    sd.set_int("has_first", has_first_ ? 1 : 0);
    for (size_t i = 0; i < first_.size(); ++i) sd.set_double("first." + std::to_string(i), first_[i]);
  }
  void load_state(const StateDict& sd) override {
    for (size_t i = 0; i < first_.size(); ++i) first_[i] = sd.get_double("first." + std::to_string(i));
    has_first_ = sd.get_int("has_first") != 0;
  }

 private:
  double alpha_ = 1.5;
  std::vector<double> first_;
  bool has_first_ = false;
};

WeightingRegistration reg("gradnorm",
                          "w learned so that w_i ‖∇_W L_i‖ tracks Ḡ r_i^α at the last shared layer "
                          "(Chen et al. 2018)",
                          [](const WeightingOptions& o) { return std::make_unique<GradNorm>(o); });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
