// GradVac, Gradient Vaccine (Wang et al. 2021, "Gradient vaccine: investigating and improving
// multi-task optimization in massively multilingual models", Algorithm 1). Each task pair (i, j)
// keeps an EMA target cosine φ̂_ij (state, all 0 at the start). Per step, for every task i:
//   g_i' = g_i; for every other task j, in a random order:
//     φ_ij = cos(g_i', g_j)
//     if φ_ij < φ̂_ij:  g_i' += ‖g_i'‖ (φ̂_ij √(1−φ_ij²) − φ_ij √(1−φ̂_ij²)) / (‖g_j‖ √(1−φ̂_ij²)) · g_j
//     φ̂_ij ← (1 − β) φ̂_ij + β φ_ij
//   d = Σ_i g_i'.
// With φ̂_ij = 0 (the first call) the step is −<g_i', g_j>/‖g_j‖² g_j when φ_ij < 0: exactly PCGrad's
// projection, so the first call equals our `pcgrad` with ρ = 1, λ = 1, eps = 0 and the same order
// (both SUM the projected gradients, as TorchJD's PCGrad does).
//
// Everything runs on the T×T Gram matrix: g_i' is kept as coefficients over g_0..g_{T-1}, so the
// method is the two fused passes of GramAggregator. Whole-vector: the Surgeon inputs are flat
// gradients with no parameter segments, so the paper's per-layer grouping is not available (one
// φ̂ per pair over all parameters, the paper's "global" variant). A pair with a zero vector
// (‖g_i'‖ or ‖g_j‖ = 0) is skipped, EMA included; so is a projection when φ̂_ij = ±1 (no finite step).
//
// Options: beta in [0, 1] (default 0.5, issue 12's and LibMTL's default), shuffle 1
// (default: the paper's random order, a Generator seeded with `seed`, its state checkpointed) or 0
// (increasing j, as our pcgrad). State: "gradvac.tasks", "gradvac.phi.<i>.<j>" (doubles) and
// "gradvac.rng" (Generator state). diag->weights gets the coefficients of d over g_0..g_{T-1}.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "core/random.h"
#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class GradVac final : public GramAggregator {
 public:
  explicit GradVac(const SurgeonOptions& o) : GramAggregator("gradvac", o, {"beta", "shuffle"}), rng_(o.seed()) {
    beta_ = number_option("beta", 0.5, 0.0, 1.0);
    const double sh = number_option("shuffle", 1);
    if (sh != 0 && sh != 1)
      throw std::invalid_argument("gradvac: option 'shuffle' expects 0 or 1, got " + std::to_string(sh));
    shuffle_ = sh == 1;
  }

 protected:
  // G [T×T] -> w [T]; φ̂ [T×T] updated.
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    if (tasks_ == 0) {
      tasks_ = T;
      phi_.assign(static_cast<size_t>(T) * T, 0.0);
    } else if (tasks_ != T) {
      throw std::invalid_argument("gradvac: this step has " + std::to_string(T) + " tasks but the state holds " +
                                  std::to_string(tasks_) + " (the number of tasks must stay fixed)");
    }
    auto g = [&](int a, int b) { return G[static_cast<size_t>(a) * T + b]; };
    c_.resize(static_cast<size_t>(T));
    order_.resize(static_cast<size_t>(T - 1));
    std::fill(w.begin(), w.end(), 0.0);
    for (int i = 0; i < T; ++i) {
      int n = 0;
      for (int j = 0; j < T; ++j)
        if (j != i) order_[static_cast<size_t>(n++)] = j;
      if (shuffle_) {
        for (int k = n - 1; k > 0; --k)
          std::swap(order_[static_cast<size_t>(k)], order_[static_cast<size_t>(rng_.randint(k + 1))]);
      }
      std::fill(c_.begin(), c_.end(), 0.0);
      c_[static_cast<size_t>(i)] = 1.0;
      for (int j : order_) {
        // <g_i', g_j> and ‖g_i'‖² from the Gram matrix.
        double dij = 0, nii = 0;
        for (int a = 0; a < T; ++a) {
          dij += c_[static_cast<size_t>(a)] * g(a, j);
          for (int b = 0; b < T; ++b) nii += c_[static_cast<size_t>(a)] * g(a, b) * c_[static_cast<size_t>(b)];
        }
        const double ni = std::sqrt(std::max(nii, 0.0)), nj = std::sqrt(std::max(g(j, j), 0.0));
        if (!(ni > 0) || !(nj > 0)) continue;
        const double phi = std::clamp(dij / (ni * nj), -1.0, 1.0);
        double& target = phi_[static_cast<size_t>(i) * T + j];
        const double root_t = std::sqrt(std::max(1.0 - target * target, 0.0));
        if (phi < target && root_t > 0) {
          const double root_p = std::sqrt(std::max(1.0 - phi * phi, 0.0));
          c_[static_cast<size_t>(j)] += ni * (target * root_p - phi * root_t) / (nj * root_t);
        }
        target = (1.0 - beta_) * target + beta_ * phi;
      }
      for (int a = 0; a < T; ++a) w[static_cast<size_t>(a)] += c_[static_cast<size_t>(a)];
    }
  }

  void save_state(StateDict& state) const override {
    state.set_int("gradvac.tasks", tasks_);
    for (int i = 0; i < tasks_; ++i)
      for (int j = 0; j < tasks_; ++j)
        state.set_double("gradvac.phi." + std::to_string(i) + "." + std::to_string(j),
                         phi_[static_cast<size_t>(i) * tasks_ + j]);
    state.set_string("gradvac.rng", rng_.state_string());
  }

  void load_state(const StateDict& state) override {
    const int64_t T = state.get_int("gradvac.tasks");
    if (T < 0 || T > (1 << 12))
      throw std::invalid_argument("gradvac.load_state_dict: 'gradvac.tasks' = " + std::to_string(T) + " is not valid");
    std::vector<double> phi(static_cast<size_t>(T * T));
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j)
        phi[static_cast<size_t>(i * T + j)] =
            state.get_double("gradvac.phi." + std::to_string(i) + "." + std::to_string(j));
    Generator rng(options().seed());
    rng.set_state_string(state.get_string("gradvac.rng"));
    tasks_ = static_cast<int>(T);
    phi_ = std::move(phi);
    rng_ = rng;
  }

 private:
  double beta_ = 0.5;
  bool shuffle_ = true;
  Generator rng_;
  int tasks_ = 0;            // 0 until the first step
  std::vector<double> phi_;  // φ̂ [T×T], row i = task being corrected
  std::vector<double> c_;    // g_i' over g_0..g_{T-1}
  std::vector<int> order_;
};

const SurgeonRegistration kRegistration("gradvac", {"gradient-vaccine"},
                                        "raise each pair's cosine to its EMA target (PCGrad when the target is 0)",
                                        [](const SurgeonOptions& o) { return std::make_unique<GradVac>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
