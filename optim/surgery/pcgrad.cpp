// PCGrad (Yu et al. 2020) as a baseline with λ and EMAs, ALGORITHMS.md §3. Two EMAs e0 (of g0) and
// e1 (of g1), updated first; then
//   r1 = min(<e0, g1>/(‖e0‖² + eps), 0),  r2 = min(<e1, g0>/(‖e1‖² + eps), 0),
//   d = (g0 − r2 e1) + λ (g1 − r1 e0).
// With ρ = 1 (the default, as in the paper's baselines): Mixed when <g0, g1> >= 0, else
// π(g0; g1) + λ π(g1; g0).
//
// K >= 2 (the original PCGrad for K+1 tasks, with our EMAs and weights): task i (weight w0 = 1,
// wk = λk) starts from p = g_i and, for every other task j in increasing order, subtracts
// <p, e_j>/(‖e_j‖² + eps) e_j when that ratio is negative (p updated after each j);
// d = Σ_i w_i p_i. The fixed order (instead of PCGrad's random shuffle) keeps runs deterministic.
// For K = 1 this is exactly the formula above.
//
// A task whose weight is 0 is absent: it is neither projected nor projected against. So λ = 0 gives
// d = g0, as for every method (the λ → 0+ limit under conflict is π(g0; g1), a discontinuity of
// PCGrad itself). `pcgrad_projected` reports whether any projection happened. Work: one EMA per task
// (none with ρ = 1), two fused passes; the sequential projections are K×K algebra on the Gram matrix.
#include <memory>
#include <stdexcept>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace surgery {
namespace {

class PCGrad final : public Surgeon {
 public:
  explicit PCGrad(const SurgeonOptions& o)
      : Surgeon("pcgrad", o), bank_("pcgrad", o.rho_or(1.0), o.ema_order(), o.ema_init(), o.seed()) {
    if (o.ratio_only()) throw std::invalid_argument("pcgrad: option ratio_only applies to bloop only");
  }

 protected:
  // g0..gK [P] -> d [P]; EMAs e_0..e_K [P] updated in place.
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    const int T = in.K + 1;  // tasks
    bank_.prepare(T, in.P);
    FusedPass pass1;
    pass1.vectors = in.g;
    std::vector<int> e_idx(static_cast<size_t>(T));
    for (int j = 0; j < T; ++j) {
      if (bank_.aliased()) {
        e_idx[static_cast<size_t>(j)] = j;
      } else {
        e_idx[static_cast<size_t>(j)] = static_cast<int>(pass1.vectors.size());
        pass1.vectors.push_back(bank_.ema(j, in.g));
      }
    }
    std::vector<EmaUpdate> post;
    bank_.updates(in.g, pass1.pre, post);
    pass1.gram = &G_;
    add_bytes_moved(run_fused_pass(in.P, pass1));

    const size_t M = pass1.vectors.size();
    std::vector<double> w(static_cast<size_t>(T), 1.0);
    for (int k = 1; k < T; ++k) w[static_cast<size_t>(k)] = in.lambda[static_cast<size_t>(k - 1)];
    bool projected = false;
    Coef c(M, 0.0);
    for (size_t i = 0; i < static_cast<size_t>(T); ++i) {
      if (w[i] == 0.0) continue;
      Coef p = unit_coef(M, i);
      for (size_t j = 0; j < static_cast<size_t>(T); ++j) {
        if (j == i || w[j] == 0.0) continue;
        const size_t ej = static_cast<size_t>(e_idx[j]);
        const double denom = G_(ej, ej) + in.eps;
        if (!(denom > 0.0)) continue;
        const double a = G_.dot_unit(p, ej) / denom;
        if (a < 0.0) {
          p[ej] -= a;
          projected = true;
        }
      }
      axpy(c, w[i], p);
    }
    for (double& x : c) x *= in.scale;

    FusedPass pass2;
    pass2.vectors = pass1.vectors;
    pass2.out = d;
    pass2.coef = c;
    pass2.post = post;
    add_bytes_moved(run_fused_pass(in.P, pass2));
    bank_.finish_step();
    if (diag) {
      const size_t e0 = static_cast<size_t>(e_idx[0]);
      fill_common_diagnostics(G_, in.K, e_idx[0], c, *diag);
      const double denom = G_(e0, e0) + in.eps;
      diag->ratio = denom > 0.0 ? G_(e0, 1) / denom : 0.0;
      diag->pcgrad_projected = projected;
    }
  }

  void save_state(StateDict& state) const override { bank_.save(state); }
  void load_state(const StateDict& state) override { bank_.load(state); }

 private:
  EmaBank bank_;
  Gram G_;
};

const SurgeonRegistration kRegistration(
    "pcgrad", {}, "project each task's gradient off the others' EMAs when they conflict, then sum with weights",
    [](const SurgeonOptions& o) { return std::make_unique<PCGrad>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
