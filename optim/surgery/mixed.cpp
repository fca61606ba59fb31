// Mixed (the regularized objective L0 + Σ λk Lk): d = g0 + Σ_k λk gk   (ALGORITHMS.md §3).
//
// One fused pass: reads g0..gK once, writes d, and (only when diagnostics are requested)
// accumulates their Gram matrix on the way. Keeps no state; rho and the EMA options are ignored.
#include <memory>
#include <stdexcept>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace surgery {
namespace {

class Mixed final : public Surgeon {
 public:
  explicit Mixed(const SurgeonOptions& options) : Surgeon("mixed", options) {
    if (options.ratio_only()) throw std::invalid_argument("mixed: option ratio_only applies to bloop only");
  }

 protected:
  // g0..gK [P] -> d [P]
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    FusedPass pass;
    pass.vectors = in.g;
    pass.out = d;
    pass.coef.assign(static_cast<size_t>(in.K) + 1, 0.0);
    pass.coef[0] = in.scale;
    for (int k = 1; k <= in.K; ++k)
      pass.coef[static_cast<size_t>(k)] = in.scale * in.lambda[static_cast<size_t>(k - 1)];
    if (diag) pass.gram = &G_;
    add_bytes_moved(run_fused_pass(in.P, pass));
    if (diag) fill_common_diagnostics(G_, in.K, -1, pass.coef, *diag);
  }

 private:
  Gram G_;
};

const SurgeonRegistration kRegistration("mixed", {}, "d = g0 + sum_k lambda_k g_k (the regularized objective)",
                                        [](const SurgeonOptions& o) { return std::make_unique<Mixed>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
