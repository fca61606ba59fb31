// stch: smooth Tchebycheff scalarisation (Lin et al. 2024, "Smooth Tchebycheff scalarization for
// multi-objective optimization"), with LibMTL's warm-up and nadir point.
//
//   warm-up (the first `warmup` steps):  f = Σ ℓ_i, and the nadir z = mean of L over those steps
//   afterwards:                          f = μ log Σ_i exp(u_i / μ),  w_i = softmax(u/μ)_i ∂u_i/∂L_i
//   transform=log (default, LibMTL):     ℓ_i = log(L_i + 1e-20), u_i = log(L_i / z_i + 1e-20)
//   transform=none (the paper's form):   ℓ_i = L_i, u_i = L_i - z_i
//
// As μ → 0, f → max_i u_i (the Tchebycheff scalarisation); as μ grows it tends to mean-like
// weights. z is fixed when the warm-up ends (with warmup = 0: the first step's losses). LibMTL
// multiplies f by K; we do not, so the weights sum to 1 after the warm-up (use a K times larger
// learning rate to match it). Options: `mu` > 0 (1), `warmup` >= 0 steps (100), `transform`.
// State: the warm-up sums and count, z and whether it is set.
#include <cmath>
#include <stdexcept>

#include "core/ops.h"
#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

constexpr double kTiny = 1e-20;

class Stch : public LossWeighting {
 public:
  explicit Stch(const WeightingOptions& o) : LossWeighting("stch", o) {
    check_keys({"mu", "warmup", "transform"});
    mu_ = number("mu", 1.0, 0.0, 1e6, /*open_lo=*/true);
    const double w = number("warmup", 100.0, 0.0, 1e12);
    if (w != std::floor(w)) throw std::invalid_argument("weighting 'stch': option 'warmup' must be an integer");
    warmup_ = static_cast<int64_t>(w);
    log_ = text("transform", "log", {"log", "none"}) == "log";
  }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    const Tensor L = stack_losses(losses, name(), tasks());
    if (!nadir_set_) return sum(log_ ? log(add(L, static_cast<float>(kTiny))) : L);
    std::vector<float> z(nadir_.begin(), nadir_.end());
    const Tensor zt = Tensor::from_vector(z);
    const Tensor u = log_ ? log(add(div(L, zt), static_cast<float>(kTiny))) : sub(L, zt);
    return mul(logsumexp(mul(u, static_cast<float>(1.0 / mu_)), 0), static_cast<float>(mu_));
  }

  const std::vector<double>& nadir() const { return nadir_; }

 protected:
  void init_tasks(int K) override {
    warm_sum_.assign(K, 0.0);
    nadir_.assign(K, 0.0);
  }

  void weigh_impl(const std::vector<double>& L, const GradNormFn&, WeightingResult& out) override {
    const size_t K = L.size();
    if (log_) {
      for (size_t i = 0; i < K; ++i) {
        if (!(L[i] >= 0.0)) {
          throw std::invalid_argument("weighting 'stch': task loss " + std::to_string(i) +
                                      " must be >= 0 with transform=log, got " + std::to_string(L[i]) +
                                      signed_loss_hint());
        }
      }
    }
    out.weights.resize(K);
    out.loss = 0.0;
    if (step() < warmup_) {
      std::vector<double> ws = warm_sum_;
      for (size_t i = 0; i < K; ++i) {
        out.loss += log_ ? std::log(L[i] + kTiny) : L[i];
        out.weights[i] = log_ ? 1.0 / (L[i] + kTiny) : 1.0;
        ws[i] += L[i];
      }
      check_finite(out, name());
      warm_sum_ = ws;
      ++warm_count_;
      return;
    }
    std::vector<double> z = nadir_;
    if (!nadir_set_) {
      for (size_t i = 0; i < K; ++i) z[i] = warm_count_ > 0 ? warm_sum_[i] / static_cast<double>(warm_count_) : L[i];
      for (size_t i = 0; i < K; ++i) {
        if (log_ && !(z[i] > 0.0)) {
          throw std::invalid_argument("weighting 'stch': the nadir point of task " + std::to_string(i) +
                                      " is not > 0 (" + std::to_string(z[i]) + "); use transform=none");
        }
      }
    }
    std::vector<double> u(K), du(K);
    for (size_t i = 0; i < K; ++i) {
      u[i] = log_ ? std::log(L[i] / z[i] + kTiny) : L[i] - z[i];
      du[i] = log_ ? 1.0 / (L[i] + kTiny * z[i]) : 1.0;
    }
    std::vector<double> s(K);
    double m = -HUGE_VAL;
    for (size_t i = 0; i < K; ++i) m = std::max(m, u[i] / mu_);
    double acc = 0.0;
    for (size_t i = 0; i < K; ++i) acc += std::exp(u[i] / mu_ - m);
    out.loss = mu_ * (m + std::log(acc));
    for (size_t i = 0; i < K; ++i) s[i] = u[i] / mu_;
    const std::vector<double> p = softmax(s);
    for (size_t i = 0; i < K; ++i) out.weights[i] = p[i] * du[i];
    check_finite(out, name());
    nadir_ = z;
    nadir_set_ = true;
  }

  void save_state(StateDict& sd) const override {
    sd.set_int("warm_count", warm_count_);
    sd.set_int("nadir_set", nadir_set_ ? 1 : 0);
    for (size_t i = 0; i < nadir_.size(); ++i) {
      sd.set_double("warm_sum." + std::to_string(i), warm_sum_[i]);
      sd.set_double("nadir." + std::to_string(i), nadir_[i]);
    }
  }
  void load_state(const StateDict& sd) override {
    const int64_t wc = sd.get_int("warm_count");
    if (wc < 0) throw std::invalid_argument("weighting 'stch': load_state_dict: 'warm_count' is negative");
    for (size_t i = 0; i < nadir_.size(); ++i) {
      warm_sum_[i] = sd.get_double("warm_sum." + std::to_string(i));
      nadir_[i] = sd.get_double("nadir." + std::to_string(i));
    }
    warm_count_ = wc;
    nadir_set_ = sd.get_int("nadir_set") != 0;
  }

 private:
  double mu_ = 1.0;
  int64_t warmup_ = 100;
  bool log_ = true;
  std::vector<double> warm_sum_, nadir_;
  int64_t warm_count_ = 0;
  bool nadir_set_ = false;
};

WeightingRegistration reg("stch",
                          "f = μ log Σ exp(u_i/μ), u = log(L/z) after a warm-up that sets the nadir z "
                          "(smooth Tchebycheff, Lin et al. 2024)",
                          [](const WeightingOptions& o) { return std::make_unique<Stch>(o); });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
