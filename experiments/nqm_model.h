// The noisy quadratic model (NQM) of the lecture's short-horizon bias (Wu et al. 2018, "Understanding
// short-horizon bias in stochastic meta-optimization"), shared by scalpel-short-horizon and its test.
//
// Loss ½ Σ_i h_i θ_i²; SGD with learning rate α_t sees gradients h_i θ_i + noise of variance
// s·h_i (gradient noise covariance proportional to the curvature). The expected dynamics are
// deterministic, per coordinate:
//   m_{i,t+1} = (1 − α_t h_i)² m_{i,t} + α_t² s h_i,   E[loss_t] = ½ Σ_i h_i m_{i,t},
// so a schedule's expected loss after any number of steps is exact, and its derivative with respect
// to the schedule's parameters is reverse-mode through the unrolled recursion (the tape, in float).
// Schedules: the lecture's α_k = α0 / (1 + k/K)^β, parametrised without constraints as
// α0 = α_max·sigmoid(a) (α_max = 2/h_max, the stability limit), K = exp(κ), β = softplus(b).
// Meta-optimisation (offline SMD): Adam on (a, κ, b) to minimise E[loss] after a horizon H.
// Greedy (horizon one, online): α_t minimising E[loss_{t+1}], in closed form.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace scalpel {
namespace experiments {

struct Nqm {
  std::vector<double> h;  // curvatures
  double noise = 0.0;     // s: gradient noise variance per unit of curvature
  double m0 = 1.0;        // E[θ_i²] at the start
  // `dim` curvatures log-spaced from 1 down to 1/condition (condition 1: spherical).
  static Nqm log_spaced(int64_t dim, double condition, double noise);
  double alpha_max() const;
};

// (a, κ, b) -> the schedule's first `steps` learning rates.
using ScheduleParams = std::array<double, 3>;
std::vector<double> schedule_lrs(const Nqm& q, const ScheduleParams& p, int64_t steps);
// Readable values (α0, K, β) of the parameters.
std::array<double, 3> schedule_values(const Nqm& q, const ScheduleParams& p);

// E[loss] after each step of `lrs` (entry 0 is the start), in double.
std::vector<double> expected_losses(const Nqm& q, const std::vector<double>& lrs);
// The greedy schedule: α_t = Σ h² m / Σ (h³ m + s h²), from the current m, for `steps` steps.
std::vector<double> greedy_lrs(const Nqm& q, int64_t steps);

struct MetaResult {
  ScheduleParams params{};
  std::vector<double> meta_losses;  // the horizon loss after each meta-iteration
};
// Adam (learning rate `meta_lr`, `iterations` updates) on the schedule parameters, from `start`,
// minimising E[loss] after `horizon` steps; the gradient comes from the tape through the recursion.
MetaResult meta_optimize(const Nqm& q, int64_t horizon, const ScheduleParams& start, int64_t iterations,
                         double meta_lr);

}  // namespace experiments
}  // namespace scalpel
