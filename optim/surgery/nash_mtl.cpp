// Nash-MTL (Navon et al. 2022, "Multi-task learning as a bargaining game"): d = Jᵀα with α > 0 the
// Nash bargaining solution, α_i <g_i, d> = 1 for every task, i.e. (Gα)_i = 1/α_i. Then
// ‖d‖² = αᵀGα = Σ_i α_i (Gα)_i = T (the number of tasks) and <d, g_i> = 1/α_i > 0 (non-conflicting).
//
// Solve: α is the minimiser of the strictly convex, self-concordant f(α) = ½αᵀGα − Σ log α_i (its
// gradient is Gα − 1/α). We scale G to unit mean diagonal (Gn = G/ν, ν = trace(G)/T; the solution
// scales as α = β/√ν), add a ridge 1e-10·I (so f is bounded below when J is rank-deficient and no
// positive solution exists), start from β_i = 1/√Gn_ii (exact for orthogonal gradients) and run
// damped Newton in double: step Δ = H⁻¹∇f, H = Gn + diag(1/β²), length 1/(1 + λ) while the Newton
// decrement λ = √(∇fᵀΔ) > 1/4, then full steps (Nesterov's damped Newton: every iterate stays
// positive, global convergence, quadratic near the solution); stop at λ² < 1e-20 or optim_niter
// iterations. Last, β is rescaled along its ray to the minimiser of f on that ray, s² βᵀGnβ = T (a
// no-op at the solution; it makes ‖d‖² = T hold up to the ridge even when optim_niter cut the solve
// short). A zero G gives α = 0 (d = 0). TorchJD and the authors' code run 20 rounds of a
// concave-convex procedure through cvxpy/ECOS instead; on TorchJD's golden matrix both give the
// exact solution to 1e-4.
//
// Options: max_norm (default 0 = off): when ‖d‖ > max_norm, α is scaled so that ‖d‖ = max_norm
// (TorchJD's default is 1.0; the authors clip the gradient norm of the shared parameters the same
// way). update_every (default 1): α is solved on the steps where step % update_every == 0 and reused
// (state, before clipping) in between; the clipping always uses the current J. optim_niter (default
// 100): at most that many Newton iterations (converged problems need about 5-15).
//
// State: "nash.tasks" (T, 0 before the first solve) and "nash.alpha.<i>" (doubles, exact).
#include <Eigen/Dense>
#include <cmath>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

constexpr double kRidge = 1e-10;

class NashMtl final : public GramAggregator {
 public:
  explicit NashMtl(const SurgeonOptions& o)
      : GramAggregator("nash-mtl", o, {"max_norm", "update_every", "optim_niter"}) {
    max_norm_ = number_option("max_norm", 0.0, 0.0, 1e300);
    update_every_ = int_option("update_every", 1, 1);
    optim_niter_ = int_option("optim_niter", 100, 1);
  }

 protected:
  // G [T×T] -> w [T] = α (clipped).
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    const bool solve = step() % update_every_ == 0 || static_cast<int>(alpha_.size()) != T;
    if (solve) solve_alpha(G, T);
    for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] = alpha_[static_cast<size_t>(i)];
    if (max_norm_ > 0) {
      double q = 0;
      for (int a = 0; a < T; ++a)
        for (int b = 0; b < T; ++b)
          q += w[static_cast<size_t>(a)] * G[static_cast<size_t>(a) * T + b] * w[static_cast<size_t>(b)];
      const double n = std::sqrt(std::max(q, 0.0));
      if (n > max_norm_)
        for (double& x : w) x *= max_norm_ / n;
    }
  }

  void save_state(StateDict& state) const override {
    state.set_int("nash.tasks", static_cast<int64_t>(alpha_.size()));
    for (size_t i = 0; i < alpha_.size(); ++i) state.set_double("nash.alpha." + std::to_string(i), alpha_[i]);
  }

  void load_state(const StateDict& state) override {
    const int64_t T = state.get_int("nash.tasks");
    if (T < 0 || T > (1 << 20))
      throw std::invalid_argument("nash-mtl.load_state_dict: 'nash.tasks' = " + std::to_string(T) + " is not valid");
    std::vector<double> a(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) a[static_cast<size_t>(i)] = state.get_double("nash.alpha." + std::to_string(i));
    alpha_ = std::move(a);
  }

 private:
  void solve_alpha(const std::vector<double>& G, int T) {
    alpha_.assign(static_cast<size_t>(T), 0.0);
    double nu = 0;
    for (int i = 0; i < T; ++i) nu += G[static_cast<size_t>(i) * T + i];
    nu /= T;
    if (!(nu > 0) || !std::isfinite(nu)) return;  // zero gradients: d = 0
    Gn_.resize(T, T);
    for (int a = 0; a < T; ++a)
      for (int b = 0; b < T; ++b) Gn_(a, b) = G[static_cast<size_t>(a) * T + b] / nu;
    for (int i = 0; i < T; ++i) Gn_(i, i) += kRidge;
    beta_.resize(T);
    for (int i = 0; i < T; ++i) beta_(i) = 1.0 / std::sqrt(Gn_(i, i));
    for (int64_t it = 0; it < optim_niter_; ++it) {
      grad_ = Gn_ * beta_;
      H_ = Gn_;
      for (int i = 0; i < T; ++i) {
        grad_(i) -= 1.0 / beta_(i);
        H_(i, i) += 1.0 / (beta_(i) * beta_(i));
      }
      llt_.compute(H_);
      step_ = llt_.solve(grad_);
      const double dec2 = grad_.dot(step_);  // λ², the squared Newton decrement
      if (!(dec2 > 1e-20)) break;
      const double dec = std::sqrt(dec2);
      double t = dec > 0.25 ? 1.0 / (1.0 + dec) : 1.0;
      // Self-concordance keeps β − tΔ positive; guard against rounding anyway.
      for (int guard = 0; guard < 60; ++guard) {
        bool positive = true;
        for (int i = 0; i < T; ++i) positive = positive && beta_(i) - t * step_(i) > 0;
        if (positive) break;
        t *= 0.5;
      }
      beta_ -= t * step_;
    }
    const double q = beta_.dot(Gn_ * beta_);
    const double s = q > 0 ? std::sqrt(T / q) : 1.0;
    for (int i = 0; i < T; ++i) alpha_[static_cast<size_t>(i)] = s * beta_(i) / std::sqrt(nu);
  }

  double max_norm_ = 0;
  int64_t update_every_ = 1, optim_niter_ = 100;
  std::vector<double> alpha_;  // the last solved α (before clipping)
  Eigen::MatrixXd Gn_, H_;
  Eigen::VectorXd beta_, grad_, step_;
  Eigen::LLT<Eigen::MatrixXd> llt_;
};

const SurgeonRegistration kRegistration("nash-mtl", {"nashmtl"},
                                        "Nash bargaining weights: alpha_i <g_i, d> = 1, d = J^T alpha",
                                        [](const SurgeonOptions& o) { return std::make_unique<NashMtl>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
