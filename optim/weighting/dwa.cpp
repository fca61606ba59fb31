// dwa: dynamic weight average (Liu et al. 2019, "End-to-end multi-task learning with attention").
//
//   r_i = L̄_i(n-1) / L̄_i(n-2)      w = K softmax(r / τ)      f = Σ w_i L_i
//
// L̄_i(n) is the mean of task i's loss over window n (a window is `window` steps; the studies use one
// epoch, as the paper does). During the first two windows w = 1. Options: `tau` τ > 0 (2),
// `window` >= 1 steps (100; the studies set it to the steps of one epoch unless given).
// State: the sums of the current window, the means of the last two, and how many windows ended.
#include <cmath>
#include <stdexcept>

#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

class Dwa : public LossWeighting {
 public:
  explicit Dwa(const WeightingOptions& o) : LossWeighting("dwa", o) {
    check_keys({"tau", "window"});
    tau_ = number("tau", 2.0, 0.0, 1e6, /*open_lo=*/true);
    const double w = number("window", 100.0, 1.0, 1e12);
    if (w != std::floor(w)) throw std::invalid_argument("weighting 'dwa': option 'window' must be an integer");
    window_ = static_cast<int64_t>(w);
  }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    return weighted_sum(losses, last_weights_, name(), tasks());
  }

 protected:
  void init_tasks(int K) override {
    sum_.assign(K, 0.0);
    prev1_.assign(K, 0.0);
    prev2_.assign(K, 0.0);
  }

  void weigh_impl(const std::vector<double>& L, const GradNormFn&, WeightingResult& out) override {
    const size_t K = L.size();
    // A window that is full closes before this step's weights are chosen.
    std::vector<double> sum = sum_, p1 = prev1_, p2 = prev2_;
    int64_t count = count_, windows = windows_;
    if (count == window_) {
      p2 = p1;
      for (size_t i = 0; i < K; ++i) p1[i] = sum[i] / static_cast<double>(count);
      std::fill(sum.begin(), sum.end(), 0.0);
      count = 0;
      ++windows;
    }
    if (windows >= 2) {
      std::vector<double> r(K);
      for (size_t i = 0; i < K; ++i) r[i] = p1[i] / p2[i] / tau_;
      out.weights = softmax(r);
      for (double& w : out.weights) w *= static_cast<double>(K);
    } else {
      out.weights.assign(K, 1.0);
    }
    out.loss = 0.0;
    for (size_t i = 0; i < K; ++i) {
      out.loss += out.weights[i] * L[i];
      sum[i] += L[i];
    }
    check_finite(out, name());
    sum_ = sum;
    prev1_ = p1;
    prev2_ = p2;
    count_ = count + 1;
    windows_ = windows;
  }

  void save_state(StateDict& sd) const override {
    sd.set_int("count", count_);
    sd.set_int("windows", windows_);
    for (size_t i = 0; i < sum_.size(); ++i) {
      const std::string k = std::to_string(i);
      sd.set_double("sum." + k, sum_[i]);
      sd.set_double("prev1." + k, prev1_[i]);
      sd.set_double("prev2." + k, prev2_[i]);
    }
  }
  void load_state(const StateDict& sd) override {
    const int64_t count = sd.get_int("count"), windows = sd.get_int("windows");
    if (count < 0 || count > window_ || windows < 0) {
      throw std::invalid_argument("weighting 'dwa': load_state_dict: 'count' " + std::to_string(count) +
                                  " or 'windows' " + std::to_string(windows) + " out of range (window " +
                                  std::to_string(window_) + ")");
    }
    for (size_t i = 0; i < sum_.size(); ++i) {
      const std::string k = std::to_string(i);
      sum_[i] = sd.get_double("sum." + k);
      prev1_[i] = sd.get_double("prev1." + k);
      prev2_[i] = sd.get_double("prev2." + k);
    }
    count_ = count;
    windows_ = windows;
  }

 private:
  double tau_ = 2.0;
  int64_t window_ = 100;
  std::vector<double> sum_, prev1_, prev2_;
  int64_t count_ = 0, windows_ = 0;
};

WeightingRegistration reg("dwa", "w = K softmax(r/τ), r = ratio of the last two windows' mean losses (Liu et al. 2019)",
                          [](const WeightingOptions& o) { return std::make_unique<Dwa>(o); });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
