// RotoGrad (Javaloy & Valera, "RotoGrad: Gradient Homogenization in Multitask Learning", ICLR
// 2022): a module wrapper between a shared trunk and K task heads that homogenises the task
// gradients reaching the trunk, in direction (learned rotations) and magnitude (scaling).
//
//   nn::RotoGrad roto(nn::RotoGradOptions(/*dim=*/512, /*tasks=*/3));
//   Tensor z = net.features(x);                       // [N, d] shared representation
//   std::vector<Tensor> zk = roto.forward(z);          // K tensors [N, d]: z R_kᵀ
//   losses[k] = cross_entropy(net.heads[k]->forward(zk[k]), y[k]);
//   roto.update(losses);                               // before the per-task backward passes
//   train_step.step(losses);                           // trunk gets s_k ∇L_k, heads ∇L_k
//
// Forward: head k sees z_k = z R_kᵀ, R_k a rotation (d × d, det +1: it starts at the identity and
// stays in SO(d), as with the reference's matrix-exponential parametrisation). The task losses
// do not train R_k (it is a constant of the graph, as in the reference implementation). Backward:
// the gradient that L_k sends into z is s_k · (∂L_k/∂z_k) R_k, where s_k is this step's magnitude
// scale, set by update():
//   n_k = ‖∂L_k/∂z‖ (over the batch), c_k = n_k / n_k(t0), α_k = c_k / Σ c_j,
//   s_k = (Σ_j α_j n_j) / n_k,
// so every task pushes the trunk with the same magnitude, the tasks that converged slowest (largest
// c_k) setting it. t0 is the first step and again step `burn_in` (the reference's burn-in period).
// With scale_magnitudes(false) s_k = 1 (the reference's RotateOnly).
//
// update() also takes one step of each rotation towards aligning the back-rotated task gradient
// o_k = (∂L_k/∂z_k) R_k with the common target m = mean_k(o_k · ‖mean_j o_j‖ / ‖o_k‖), minimising
//   f_k(R) = 1/N Σ_n ‖R m_n − g_{k,n}‖²,   g_k = ∂L_k/∂z_k,
// as the reference does. The step is Riemannian, on the orthogonal group, so R_k stays exactly
// orthogonal: Euclidean gradient E = ∂f/∂R, skew direction Ω = (E Rᵀ − R Eᵀ)/2, and the Cayley
// retraction R ← (I + η/2 Ω̂)⁻¹ (I − η/2 Ω̂) R with Ω̂ = Ω / sqrt(v̂) and v̂ a bias-corrected running
// mean (β = 0.999) of ‖Ω‖²_F (one RMS scale per rotation, as Adam would give a scalar parameter), so
// the step size does not depend on the losses' scale. The reference instead parametrises R by the
// matrix exponential and trains it with the model's optimizer; see docs/mtl.md.
//
// Costs per step: one extra backward through the heads only (∂L_k/∂z_k), O(K N d²) for the
// rotations and O(K d³) for the Cayley solves. State (rotations, reference norms, step, RMS
// accumulators) is in state_dict(): buffers "rotation<k>" and extra state.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/options.h"
#include "nn/module.h"

namespace scalpel {
namespace nn {

struct RotoGradOptions {
  RotoGradOptions(int64_t dim, int tasks) : dim_(dim), tasks_(tasks) {}
  SCALPEL_ARG(int64_t, dim);                   // size d of the shared representation
  SCALPEL_ARG(int, tasks);                     // K >= 2
  SCALPEL_ARG(double, lr) = 0.05;              // rotation step (Frobenius norm of the RMS-scaled Ω̂ step)
  SCALPEL_ARG(int64_t, burn_in) = 20;          // the magnitude reference n_k(t0) is re-taken at this step
  SCALPEL_ARG(bool, scale_magnitudes) = true;  // false: s_k = 1 (rotations only)
};

class RotoGrad : public Module {
 public:
  explicit RotoGrad(const RotoGradOptions& options);

  // z [N, d] -> K tensors [N, d], z_k = z R_kᵀ; in training mode the gradient into z is scaled by
  // the s_k that the next update() sets. Throws std::invalid_argument naming RotoGrad for a z that
  // is not [N, d].
  std::vector<Tensor> forward(const Tensor& z);

  // After the K losses of the last forward (in training mode), before their backward passes:
  // computes ∂L_k/∂z_k (retaining the graph), sets the scales s_k and takes one rotation step.
  // Throws std::invalid_argument for a loss count other than K or without a preceding forward.
  void update(const std::vector<Tensor>& losses);

  const Tensor& rotation(int k) const { return rotations_.at(static_cast<size_t>(k)); }
  // The scales s_k of the last update (all 1 before the first).
  const std::vector<double>& scales() const { return *scales_; }
  // f_k(R_k) before the last update's step, per task (the alignment loss; NaN before the first).
  const std::vector<double>& alignment_loss() const { return align_loss_; }
  int64_t steps() const { return step_; }
  const RotoGradOptions& options() const { return options_; }

 protected:
  void save_extra_state(StateDict& sd, const std::string& prefix) const override;
  void load_extra_state(const StateDict& sd, const std::string& prefix) override;

 private:
  RotoGradOptions options_;
  std::vector<Tensor> rotations_;                // buffers, [d, d] each
  std::shared_ptr<std::vector<double>> scales_;  // read by the backward of the last forward
  std::vector<Tensor> rotated_;                  // z_k of the last forward
  std::vector<double> ref_norms_;                // n_k(t0); empty before the first update
  std::vector<double> rms_;                      // running mean of ‖Ω_k‖²
  std::vector<double> align_loss_;
  int64_t step_ = 0;
};

}  // namespace nn
}  // namespace scalpel
