// Bloop (BiLevel Optimization with Orthogonal Projection), ALGORITHMS.md §2, including the
// multi-level version for K >= 2 auxiliary losses in a strict hierarchy L0 ≻ L1 ≻ ... ≻ LK.
//
// K = 1, per step, in this order (update_then_project, the reference's order):
//   1. e ← e + ρ (g0 − e)
//   2. r = <e, g1> / (‖e‖² + eps)
//   3. d = g0 + λ (g1 − r e)                       (ratio_only: d = (1 − λ r) g0 + λ g1)
// project_then_update projects on the EMA before adding the current g0 (the paper's Algorithm 1).
// rescale multiplies d by 1/(1+λ).
//
// K >= 2: one EMA e_j per level j = 0..K-1 (of g_j). The EMAs are orthogonalised by (modified)
// Gram–Schmidt, v_1 = e_0, v_j = e_{j-1} − Σ_{i<j} <e_{j-1}, v_i>/(‖v_i‖² + eps) v_i, and each gk is
// projected on the complement of v_1..v_k with the same eps-regularised ratios:
//   p_k = gk − Σ_{j<=k} <p, v_j>/(‖v_j‖² + eps) v_j   (p updated after each j),   d = g0 + Σ λk p_k.
// For K = 1 this is exactly the formula above. A direction v_j whose squared norm is at most
// kRankTol·‖e_{j-1}‖² (an EMA in the span of the ones above it, or a zero EMA) is skipped: this is
// ALGORITHMS.md's "skip a direction whose norm is below eps", made scale-invariant so that rank-
// deficient inputs behave the same at every gradient scale. Invariant: <d − g0, v_1> ≈ 0 and each
// p_k ⟂ e_0..e_{k-1} (exact when eps = 0). ratio_only for K >= 2 applies the same ratios to the
// batch gradients instead of the EMAs (each e_j in p_k is replaced by g_j); for K = 1 that is the
// reference's formula.
//
// Work: pass 1 updates the EMAs and accumulates the Gram matrix of [g0..gK, e0..e_{K-1}]; all the
// ratios are K×K algebra on it; pass 2 writes d. Each gradient is read twice, each EMA read twice
// and written once. With ρ = 1 (update_then_project) the EMAs are the batch gradients and no buffer
// is kept.
#include <cmath>
#include <memory>
#include <stdexcept>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace surgery {
namespace {

constexpr double kRankTol = 1e-10;

class Bloop final : public Surgeon {
 public:
  explicit Bloop(const SurgeonOptions& o)
      : Surgeon("bloop", o), bank_("bloop", o.rho_or(0.01), o.ema_order(), o.ema_init(), o.seed()) {}

 protected:
  // g0..gK [P] -> d [P]; EMAs e_0..e_{K-1} [P] updated in place.
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    const int K = in.K;
    bank_.prepare(K, in.P);
    // Basis V = [g0..gK, e0..e_{K-1}] (the EMAs are g0..g_{K-1} themselves when aliased).
    FusedPass pass1;
    pass1.vectors = in.g;
    std::vector<int> e_idx(static_cast<size_t>(K));
    for (int j = 0; j < K; ++j) {
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
    const double eps = in.eps;
    // Orthogonal directions v_j over the basis, their squared norms, and whether they are used.
    std::vector<Coef> dirs;
    std::vector<double> dir_sq;
    std::vector<bool> used;
    for (int j = 0; j < K; ++j) {
      const size_t ej = static_cast<size_t>(e_idx[static_cast<size_t>(j)]);
      Coef v = unit_coef(M, ej);
      for (size_t i = 0; i < dirs.size(); ++i) {
        if (used[i]) axpy(v, -G_.dot(v, dirs[i]) / (dir_sq[i] + eps), dirs[i]);
      }
      const double sq = G_.dot(v, v);
      used.push_back(sq > kRankTol * G_(ej, ej));
      dirs.push_back(std::move(v));
      dir_sq.push_back(sq);
    }
    Coef c = unit_coef(M, 0);
    double r = 0.0;
    for (int k = 1; k <= K; ++k) {
      Coef p = unit_coef(M, static_cast<size_t>(k));
      for (size_t j = 0; j < static_cast<size_t>(k); ++j) {
        if (!used[j]) continue;
        const double a = G_.dot(p, dirs[j]) / (dir_sq[j] + eps);
        if (k == 1) r = a;
        axpy(p, -a, dirs[j]);
      }
      if (options().ratio_only() && !bank_.aliased()) {
        for (size_t j = 0; j < static_cast<size_t>(K); ++j) {  // e_j -> g_j
          const size_t ej = static_cast<size_t>(e_idx[j]);
          p[j] += p[ej];
          p[ej] = 0.0;
        }
      }
      axpy(c, in.lambda[static_cast<size_t>(k - 1)], p);
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
      fill_common_diagnostics(G_, K, e_idx[0], c, *diag);
      diag->ratio = r;
    }
  }

  void save_state(StateDict& state) const override { bank_.save(state); }
  void load_state(const StateDict& state) override { bank_.load(state); }

 private:
  EmaBank bank_;
  Gram G_;
};

const SurgeonRegistration kRegistration("bloop", {},
                                        "d = g0 + lambda * pi(g1; EMA of g0); multi-level Gram-Schmidt for K >= 2",
                                        [](const SurgeonOptions& o) { return std::make_unique<Bloop>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
