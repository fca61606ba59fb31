// MGDA (Désidéri 2012; Sener & Koltun 2018): d = Jᵀw, w = argmin_{w in simplex} ‖Jᵀw‖², the
// min-norm point of the convex hull of the task gradients. Exact for T = 2 tasks, Frank–Wolfe with
// exact line search otherwise. Option normalize = none (default) | l2: solve on the unit gradients
// g_i/‖g_i‖ (the returned weights are on the raw gradients: w_i = w'_i/‖g_i‖).
#include <cmath>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class Mgda final : public GramAggregator {
 public:
  explicit Mgda(const SurgeonOptions& o) : GramAggregator("mgda", o, {"normalize"}) {
    const std::string n = string_option("normalize", "none");
    if (n != "none" && n != "l2")
      throw std::invalid_argument("mgda: option 'normalize' expects none or l2, got '" + n + "'");
    l2_ = n == "l2";
  }

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    if (!l2_) {
      min_norm_simplex(G, T, w);
      return;
    }
    norm_.resize(static_cast<size_t>(T));
    for (int i = 0; i < T; ++i) norm_[static_cast<size_t>(i)] = std::sqrt(G[static_cast<size_t>(i) * T + i]);
    Gn_.resize(G.size());
    for (int a = 0; a < T; ++a)
      for (int b = 0; b < T; ++b) {
        const double na = norm_[static_cast<size_t>(a)], nb = norm_[static_cast<size_t>(b)];
        Gn_[static_cast<size_t>(a) * T + b] = na > 0 && nb > 0 ? G[static_cast<size_t>(a) * T + b] / (na * nb) : 0.0;
      }
    min_norm_simplex(Gn_, T, w);
    for (int i = 0; i < T; ++i) {
      const double n = norm_[static_cast<size_t>(i)];
      w[static_cast<size_t>(i)] = n > 0 ? w[static_cast<size_t>(i)] / n : 0.0;
    }
  }

 private:
  bool l2_ = false;
  std::vector<double> norm_, Gn_;
};

const SurgeonRegistration kRegistration("mgda", {}, "min-norm point of the convex hull of the task gradients",
                                        [](const SurgeonOptions& o) { return std::make_unique<Mgda>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
