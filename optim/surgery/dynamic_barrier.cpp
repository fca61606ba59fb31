// Dynamic Barrier (DB, Gong & Liu 2021) as a baseline, ALGORITHMS.md §3: the Bloop code path with
// the ratio clipped,
//   e ← e + ρ (g0 − e),  r = <e, g1>/(‖e‖² + eps),  r_c = min(r, 1/λ),  d = g0 + λ (g1 − r_c e).
// With ρ = 1 (the default, as in the paper's baselines): d = max(1 − λ<g0,g1>/‖g0‖², 0) g0 + λ g1.
// λ = 0 gives d = g0 without dividing by λ (the clip is applied to λ r, i.e. min(λ r, 1)).
//
// K >= 2 (our generalization): the barrier acts on the combined auxiliary direction h = Σ λk gk,
//   r_h = <e, h>/(‖e‖² + eps),  d = g0 + h − min(r_h, 1) e,
// which is DB applied to the single auxiliary objective Σ λk Lk; for K = 1, min(λ r, 1) = λ r_c, so
// it is exactly the formula above. With e = g0 it guarantees <d, g0> = max(‖g0‖², <h, g0>) (up to
// eps): the auxiliary losses never slow the main loss's first-order decrease.
// `db_clipped` reports r_h > 1. Work: the same two fused passes as Bloop, with one EMA (of g0).
#include <algorithm>
#include <memory>
#include <stdexcept>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace surgery {
namespace {

class DynamicBarrier final : public Surgeon {
 public:
  explicit DynamicBarrier(const SurgeonOptions& o)
      : Surgeon("dynamic-barrier", o), bank_("dynamic-barrier", o.rho_or(1.0), o.ema_order(), o.ema_init(), o.seed()) {
    if (o.ratio_only()) throw std::invalid_argument("dynamic-barrier: option ratio_only applies to bloop only");
  }

 protected:
  // g0..gK [P] -> d [P]; EMA e [P] of g0 updated in place.
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    bank_.prepare(1, in.P);
    FusedPass pass1;
    pass1.vectors = in.g;
    int e = 0;
    if (!bank_.aliased()) {
      e = static_cast<int>(pass1.vectors.size());
      pass1.vectors.push_back(bank_.ema(0, in.g));
    }
    std::vector<EmaUpdate> post;
    bank_.updates(in.g, pass1.pre, post);
    pass1.gram = &G_;
    add_bytes_moved(run_fused_pass(in.P, pass1));

    const size_t M = pass1.vectors.size();
    const size_t ei = static_cast<size_t>(e);
    const double denom = G_(ei, ei) + in.eps;
    Coef h(M, 0.0);
    for (int k = 1; k <= in.K; ++k) h[static_cast<size_t>(k)] = in.lambda[static_cast<size_t>(k - 1)];
    const double r_h = denom > 0.0 ? G_.dot_unit(h, ei) / denom : 0.0;
    const double r_c = std::min(r_h, 1.0);
    Coef c = h;
    c[0] += 1.0;
    c[ei] -= r_c;
    for (double& x : c) x *= in.scale;

    FusedPass pass2;
    pass2.vectors = pass1.vectors;
    pass2.out = d;
    pass2.coef = c;
    pass2.post = post;
    add_bytes_moved(run_fused_pass(in.P, pass2));
    bank_.finish_step();
    if (diag) {
      fill_common_diagnostics(G_, in.K, e, c, *diag);
      diag->ratio = denom > 0.0 ? G_(ei, 1) / denom : 0.0;
      diag->db_clipped = r_h > 1.0;
    }
  }

  void save_state(StateDict& state) const override { bank_.save(state); }
  void load_state(const StateDict& state) override { bank_.load(state); }

 private:
  EmaBank bank_;
  Gram G_;
};

const SurgeonRegistration kRegistration("dynamic-barrier", {"db"},
                                        "d = g0 + lambda (g1 - min(r, 1/lambda) e): Bloop with the ratio clipped",
                                        [](const SurgeonOptions& o) { return std::make_unique<DynamicBarrier>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
