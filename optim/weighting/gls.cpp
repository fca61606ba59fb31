// gls: the geometric mean of the task losses (Chennupati et al. 2019, "MultiNet++"; LibMTL's GLS).
//
//   f = (Π L_i)^{1/K} = exp(mean_i log L_i)      w_i = ∂f/∂L_i = f / (K L_i)
//
// Every loss must be > 0 (a zero or negative loss is an error naming the task). No options, no state.
#include <cmath>
#include <stdexcept>

#include "core/ops.h"
#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

class Gls : public LossWeighting {
 public:
  explicit Gls(const WeightingOptions& o) : LossWeighting("gls", o) { check_keys({}); }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    return exp(mean(log(stack_losses(losses, name(), tasks()))));
  }

 protected:
  void weigh_impl(const std::vector<double>& L, const GradNormFn&, WeightingResult& out) override {
    const double K = static_cast<double>(L.size());
    double mean_log = 0.0;
    for (size_t i = 0; i < L.size(); ++i) {
      if (!(L[i] > 0.0)) {
        throw std::invalid_argument("weighting 'gls': task loss " + std::to_string(i) +
                                    " must be > 0 for the geometric mean, got " + std::to_string(L[i]) +
                                    signed_loss_hint());
      }
      mean_log += std::log(L[i]) / K;
    }
    out.loss = std::exp(mean_log);
    out.weights.resize(L.size());
    for (size_t i = 0; i < L.size(); ++i) out.weights[i] = out.loss / (K * L[i]);
    check_finite(out, name());
  }
};

WeightingRegistration reg("gls", "f = (Π L_i)^{1/K}, the geometric mean (Chennupati et al. 2019)",
                          [](const WeightingOptions& o) { return std::make_unique<Gls>(o); });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
