// MoCo, multi-objective gradient correction (Fernando et al. 2023, "Mitigating gradient bias in
// multi-objective learning: a provably convergent approach", Algorithm 1). Tracked gradients y_i
// (state) correct the bias of stochastic MGDA; λ lives on the simplex and takes one projected
// gradient step per iteration instead of an exact min-norm solve. At step t = 1, 2, ...:
//   β_t = moco_beta / t^moco_beta_sigma,   γ_t = moco_gamma / t^moco_gamma_sigma
//   y_i ← y_i − β_t (y_i − g_i)                           (y_i = 0 before the first step)
//   λ  ← Π_Δ(λ − γ_t (YᵀY + ρ I) λ)                        (λ = 1/T before the first step)
//   d  = Σ_i λ_i y_i
// Step sizes: the authors' released code (their LibMTL fork, and LibMTL's MoCo built from it) decays
// both rates as c/√t; defaults moco_beta = 0.5, moco_beta_sigma = 0.5, moco_gamma = 0.1,
// moco_gamma_sigma = 0.5, moco_rho = 0 (LibMTL's MoCo defaults, its MoCo_beta ... MoCo_rho). Differences from LibMTL,
// on purpose: λ is projected on the simplex as in the paper (LibMTL applies a softmax), and the gradients are used as
// given (LibMTL rescales each g_i to ‖g_i‖ = L_i first; this interface does not assume loss values exist). The options
// carry a moco_ prefix because `rho` is the core EMA-rate option and gradvac's `beta` is an EMA weight, not a step
// size.
//
// This method necessarily stores T×P floats (the y_i, allocated on the first step, saved in the
// checkpoint as "moco.y.<i>"). Work: pass 1 updates every y_i from g_i and forms the T×T Gram matrix
// YᵀY of the updated y in the same sweep; pass 2 writes d. Per step it reads g (T vectors), reads
// y twice and writes it once, and writes d. With diagnostics requested, pass 1 forms the Gram matrix
// of [g, y] instead (the same bytes, (2T)² instead of T² products per element), so the diagnostics
// describe the gradients g_i and d; diag->weights gets λ. State: "moco.tasks", "moco.size",
// "moco.y.<i>", "moco.lambda.<i>" (doubles); t is the Surgeon step (step() + 1).
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class MoCo final : public MultiTaskSurgeon {
 public:
  explicit MoCo(const SurgeonOptions& o)
      : MultiTaskSurgeon("moco", o, {"moco_beta", "moco_gamma", "moco_rho", "moco_beta_sigma", "moco_gamma_sigma"}) {
    beta_ = number_option("moco_beta", 0.5, 0.0, 1.0);
    if (!(beta_ > 0)) throw std::invalid_argument("moco: option 'moco_beta' must be in (0, 1], got 0");
    gamma_ = number_option("moco_gamma", 0.1, 0.0, 1e300);
    rho_ = number_option("moco_rho", 0.0, 0.0, 1e300);
    beta_sigma_ = number_option("moco_beta_sigma", 0.5, 0.0, 1e300);
    gamma_sigma_ = number_option("moco_gamma_sigma", 0.5, 0.0, 1e300);
  }

 protected:
  // g_0..g_{T-1} [P] -> d [P]; y_0..y_{T-1} [P] and λ [T] updated.
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    const int T = in.K + 1;
    if (tasks_ == 0) {
      tasks_ = T;
      size_ = in.P;
      y_.clear();
      for (int i = 0; i < T; ++i) y_.emplace_back(in.P);  // zeros
      lambda_.assign(static_cast<size_t>(T), 1.0 / T);
    } else if (tasks_ != T || size_ != in.P) {
      throw std::invalid_argument("moco: this step has " + std::to_string(T) + " tasks of " + std::to_string(in.P) +
                                  " elements but the state holds " + std::to_string(tasks_) + " of " +
                                  std::to_string(size_) + " (they must stay fixed)");
    }
    const double t = static_cast<double>(step() + 1);
    const float beta_t = static_cast<float>(beta_ / std::pow(t, beta_sigma_));
    const double gamma_t = gamma_ / std::pow(t, gamma_sigma_);

    // Pass 1: y ← (1 − β_t) y + β_t g, then the Gram matrix of the updated y (of [g, y] when
    // diagnostics are wanted, so that they describe the gradients; same bytes, more arithmetic).
    const size_t off = diag ? static_cast<size_t>(T) : 0;
    pass1_.vectors.clear();
    pass1_.pre.clear();
    if (diag)
      for (int i = 0; i < T; ++i) pass1_.vectors.push_back(in.g[static_cast<size_t>(i)]);
    for (int i = 0; i < T; ++i) {
      float* y = y_[static_cast<size_t>(i)].data();
      pass1_.vectors.push_back(y);
      pass1_.pre.push_back({y, in.g[static_cast<size_t>(i)], beta_t});
    }
    pass1_.gram = &G_;
    add_bytes_moved(run_fused_pass(in.P, pass1_));

    // λ ← Π_Δ(λ − γ_t (YᵀY + ρI) λ)
    step_.resize(static_cast<size_t>(T));
    for (int a = 0; a < T; ++a) {
      double s = rho_ * lambda_[static_cast<size_t>(a)];
      for (int b = 0; b < T; ++b) s += G_(off + a, off + b) * lambda_[static_cast<size_t>(b)];
      step_[static_cast<size_t>(a)] = lambda_[static_cast<size_t>(a)] - gamma_t * s;
    }
    for (double x : step_)
      if (!std::isfinite(x)) throw std::invalid_argument("moco: non-finite λ step (non-finite gradients?)");
    project_simplex(step_, scratch_);
    lambda_ = step_;

    // Pass 2: d = Σ λ_i y_i.
    pass2_.vectors.assign(pass1_.vectors.begin() + static_cast<std::ptrdiff_t>(off), pass1_.vectors.end());
    pass2_.out = d;
    pass2_.coef = lambda_;
    add_bytes_moved(run_fused_pass(in.P, pass2_));
    if (diag) {
      coef_.assign(2 * static_cast<size_t>(T), 0.0);
      for (int i = 0; i < T; ++i) coef_[off + i] = lambda_[static_cast<size_t>(i)];
      fill_common_diagnostics(G_, in.K, -1, coef_, *diag);
      diag->weights = lambda_;
    }
  }

  void save_state(StateDict& state) const override {
    state.set_int("moco.tasks", tasks_);
    state.set_int("moco.size", size_);
    for (int i = 0; i < tasks_; ++i) {
      state.set_tensor("moco.y." + std::to_string(i), y_[static_cast<size_t>(i)].tensor().clone());
      state.set_double("moco.lambda." + std::to_string(i), lambda_[static_cast<size_t>(i)]);
    }
  }

  void load_state(const StateDict& state) override {
    const int64_t T = state.get_int("moco.tasks"), P = state.get_int("moco.size");
    if (T < 0 || T > (1 << 12) || P < 0)
      throw std::invalid_argument("moco.load_state_dict: 'moco.tasks' = " + std::to_string(T) +
                                  " / 'moco.size' = " + std::to_string(P) + " are not a valid state");
    std::vector<GradVector> y;
    std::vector<double> lambda;
    for (int64_t i = 0; i < T; ++i) {
      const std::string key = "moco.y." + std::to_string(i);
      const Tensor& src = state.tensor(key);
      if (src.numel() != P)
        throw std::invalid_argument("moco.load_state_dict: '" + key + "' has " + std::to_string(src.numel()) +
                                    " elements, 'moco.size' says " + std::to_string(P));
      GradVector b(P);
      const Tensor c = src.detach().contiguous();
      if (P) std::memcpy(b.data(), c.data(), static_cast<size_t>(P) * sizeof(float));
      y.push_back(std::move(b));
      lambda.push_back(state.get_double("moco.lambda." + std::to_string(i)));
    }
    tasks_ = static_cast<int>(T);
    size_ = T ? P : -1;
    y_ = std::move(y);
    lambda_ = std::move(lambda);
  }

 private:
  double beta_, gamma_, rho_, beta_sigma_, gamma_sigma_;
  int tasks_ = 0;  // 0 until the first step
  int64_t size_ = -1;
  std::vector<GradVector> y_;   // tracked gradients [T][P]
  std::vector<double> lambda_;  // [T], on the simplex
  std::vector<double> step_, scratch_, coef_;
  FusedPass pass1_, pass2_;
  Gram G_;
};

const SurgeonRegistration kRegistration("moco", {}, "tracked gradients y_i and a projected-gradient step on lambda",
                                        [](const SurgeonOptions& o) { return std::make_unique<MoCo>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
