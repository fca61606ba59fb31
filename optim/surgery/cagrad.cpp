// CAGrad (Liu et al. 2021, "Conflict-averse gradient descent"): with g0 = mean gradient (u = 1/T)
// and φ = c² ‖g0‖², solve the dual on the simplex
//   w* = argmin_{w in simplex} <g_w, g0> + √φ ‖g_w‖,   g_w = Jᵀw,
// then d = g0 + (√φ / ‖g_w*‖) g_w*, i.e. weights u + (√φ/‖g_w*‖) w*. Options: c >= 0 (default 0.5;
// c = 0 gives the mean exactly), cagrad_rescale = 0 (default, none) | 1 (d /= 1 + c²) | 2 (d /= 1 + c),
// as in the authors' code. The dual is convex; T = 2 is a golden-section search on [0, 1], T > 2
// Frank–Wolfe with a golden-section line search.
#include <cmath>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class CAGrad final : public GramAggregator {
 public:
  explicit CAGrad(const SurgeonOptions& o) : GramAggregator("cagrad", o, {"c", "cagrad_rescale"}) {
    c_ = number_option("c", 0.5);
    if (c_ < 0) throw std::invalid_argument("cagrad: option 'c' must be >= 0, got " + std::to_string(c_));
    const double r = number_option("cagrad_rescale", 0);
    if (r != 0 && r != 1 && r != 2)
      throw std::invalid_argument("cagrad: option 'cagrad_rescale' expects 0, 1 or 2, got " + std::to_string(r));
    rescale_ = static_cast<int>(r);
  }

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    auto g = [&](int a, int b) { return G[static_cast<size_t>(a) * T + b]; };
    // b_i = <g_i, g0>, g0 = mean.
    b_.assign(static_cast<size_t>(T), 0.0);
    double g0g0 = 0;
    for (int i = 0; i < T; ++i) {
      for (int k = 0; k < T; ++k) b_[static_cast<size_t>(i)] += g(i, k) / T;
      g0g0 += b_[static_cast<size_t>(i)] / T;
    }
    const double sphi = c_ * std::sqrt(std::max(g0g0, 0.0));
    for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] = 1.0 / T;
    if (sphi > 0) {
      x_.assign(static_cast<size_t>(T), 1.0 / T);
      auto obj = [&](const std::vector<double>& x) {
        double lin = 0, q = 0;
        for (int i = 0; i < T; ++i) {
          lin += x[static_cast<size_t>(i)] * b_[static_cast<size_t>(i)];
          for (int k = 0; k < T; ++k) q += x[static_cast<size_t>(i)] * g(i, k) * x[static_cast<size_t>(k)];
        }
        return lin + sphi * std::sqrt(std::max(q, 0.0));
      };
      // Golden-section over γ in [0,1] of obj((1-γ) from + γ to).
      auto line = [&](const std::vector<double>& from, const std::vector<double>& to) {
        const double r = 0.6180339887498949;
        double lo = 0, hi = 1;
        auto at = [&](double t) {
          for (int i = 0; i < T; ++i)
            y_[static_cast<size_t>(i)] = (1 - t) * from[static_cast<size_t>(i)] + t * to[static_cast<size_t>(i)];
          return obj(y_);
        };
        double m1 = hi - r * (hi - lo), m2 = lo + r * (hi - lo), f1 = at(m1), f2 = at(m2);
        for (int it = 0; it < 100; ++it) {
          if (f1 < f2) {
            hi = m2, m2 = m1, f2 = f1, m1 = hi - r * (hi - lo), f1 = at(m1);
          } else {
            lo = m1, m1 = m2, f1 = f2, m2 = lo + r * (hi - lo), f2 = at(m2);
          }
        }
        double t = 0.5 * (lo + hi);
        // The optimum may sit at an end point.
        const double ft = at(t), f0 = at(0.0), fe = at(1.0);
        if (f0 <= ft && f0 <= fe)
          t = 0.0;
        else if (fe <= ft && fe < f0)
          t = 1.0;
        return t;
      };
      y_.assign(static_cast<size_t>(T), 0.0);
      vertex_.assign(static_cast<size_t>(T), 0.0);
      const int iters = T == 2 ? 1 : 500;
      for (int it = 0; it < iters; ++it) {
        if (T == 2) {
          std::vector<double>& e0 = vertex_;
          e0 = {1.0, 0.0};
          const std::vector<double> e1 = {0.0, 1.0};
          const double t = line(e0, e1);
          x_ = {1 - t, t};
          break;
        }
        // Gradient of the objective at x: b + sphi Gx/‖g_x‖.
        double q = 0;
        gx_.assign(static_cast<size_t>(T), 0.0);
        for (int i = 0; i < T; ++i)
          for (int k = 0; k < T; ++k) gx_[static_cast<size_t>(i)] += g(i, k) * x_[static_cast<size_t>(k)];
        for (int i = 0; i < T; ++i) q += x_[static_cast<size_t>(i)] * gx_[static_cast<size_t>(i)];
        const double nq = std::sqrt(std::max(q, 0.0));
        int t = 0;
        double best = 0;
        for (int i = 0; i < T; ++i) {
          const double gi = b_[static_cast<size_t>(i)] + (nq > 0 ? sphi * gx_[static_cast<size_t>(i)] / nq : 0.0);
          if (i == 0 || gi < best) best = gi, t = i;
        }
        std::fill(vertex_.begin(), vertex_.end(), 0.0);
        vertex_[static_cast<size_t>(t)] = 1.0;
        const double step = line(x_, vertex_);
        if (step == 0.0) break;
        for (int i = 0; i < T; ++i)
          x_[static_cast<size_t>(i)] = (1 - step) * x_[static_cast<size_t>(i)] + step * vertex_[static_cast<size_t>(i)];
      }
      double q = 0;
      for (int i = 0; i < T; ++i)
        for (int k = 0; k < T; ++k) q += x_[static_cast<size_t>(i)] * g(i, k) * x_[static_cast<size_t>(k)];
      const double nq = std::sqrt(std::max(q, 0.0));
      if (nq > 0) {
        for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] += sphi / nq * x_[static_cast<size_t>(i)];
      }
    }
    const double div = rescale_ == 1 ? 1 + c_ * c_ : rescale_ == 2 ? 1 + c_ : 1.0;
    for (double& x : w) x /= div;
  }

 private:
  double c_ = 0.5;
  int rescale_ = 0;
  std::vector<double> b_, x_, y_, vertex_, gx_;
};

const SurgeonRegistration kRegistration("cagrad", {},
                                        "conflict-averse: mean gradient plus the worst-case dual direction",
                                        [](const SurgeonOptions& o) { return std::make_unique<CAGrad>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
