// uw and imtl-l (and imtl): the two weightings whose per-task scales s_i are learned with the model.
//
//   uw      f = Σ exp(-s_i) L_i + s_i    w_i = exp(-s_i)   ∂f/∂s_i = 1 - exp(-s_i) L_i
//           (Kendall et al. 2018, the log-variance form s = log σ²; stationary at exp(s_i) = L_i)
//   imtl-l  f = Σ exp(s_i) L_i - s_i     w_i = exp(s_i)    ∂f/∂s_i = exp(s_i) L_i - 1
//           (Liu et al. 2021; stationary at exp(s_i) L_i = 1: every scaled loss equals 1)
//
// Option `init` (default 0): the starting value of every s_i. LibMTL's UW uses the σ² form
// f = Σ L_i / (2 exp(s_i)) + s_i / 2 with s starting at -0.5; that is half of ours (same fixed
// point), so the learned scales move at half our rate for the same learning rate.
#include <cmath>
#include <stdexcept>

#include "core/ops.h"
#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

class LearnedScales : public LossWeighting {
 public:
  // sign = -1: uw (exp(-s) L + s); sign = +1: imtl-l (exp(s) L - s).
  LearnedScales(const std::string& name, const WeightingOptions& o, double sign) : LossWeighting(name, o), sign_(sign) {
    check_keys({"init"});
    init_ = number("init", 0.0, -30.0, 30.0);
  }
  bool has_parameters() const override { return true; }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    const Tensor L = stack_losses(losses, name(), tasks());
    const Tensor& s = parameters().at(0);
    const float sg = static_cast<float>(sign_);
    // Σ exp(sign s) L - sign s
    return sum(sub(mul(exp(mul(s, sg)), L), mul(s, sg)));
  }

 protected:
  void init_tasks(int K) override { make_parameter(std::vector<float>(K, static_cast<float>(init_))); }

  void weigh_impl(const std::vector<double>& L, const GradNormFn&, WeightingResult& out) override {
    const std::vector<double> s = parameter_values();
    std::vector<double> g(L.size());
    out.weights.resize(L.size());
    out.loss = 0.0;
    for (size_t i = 0; i < L.size(); ++i) {
      const double w = std::exp(sign_ * s[i]);
      out.weights[i] = w;
      out.loss += w * L[i] - sign_ * s[i];
      g[i] = sign_ * (w * L[i] - 1.0);  // ∂f/∂s_i
    }
    check_finite(out, name());
    set_parameter_grad(g);
  }

 private:
  double sign_;
  double init_ = 0.0;
};

WeightingRegistration reg_uw("uw", "f = Σ exp(-s_i) L_i + s_i, s learned (Kendall et al. 2018)",
                             [](const WeightingOptions& o) { return std::make_unique<LearnedScales>("uw", o, -1.0); });
WeightingRegistration reg_imtl_l("imtl-l", "f = Σ exp(s_i) L_i - s_i, s learned (IMTL-L, Liu et al. 2021)",
                                 [](const WeightingOptions& o) {
                                   return std::make_unique<LearnedScales>("imtl-l", o, 1.0);
                                 });
WeightingRegistration reg_imtl("imtl", "IMTL hybrid: the imtl-l loss scales, meant with --method imtl-g",
                               [](const WeightingOptions& o) {
                                 return std::make_unique<LearnedScales>("imtl", o, 1.0);
                               });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
