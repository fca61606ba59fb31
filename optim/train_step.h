// TrainStep: the training step every experiment (and a hand-written loop) uses, top to bottom:
//   losses (the caller's forward) -> per-loss gradients (GradientCollector) -> surgeon.combine ->
//   d scattered into the parameters' .grad -> optional clipping of ‖d‖ -> optimizer.step().
//
//   optim::TrainStep step(std::make_unique<optim::SGD>(model.parameters(), optim::SGDOptions(0.1)),
//                         surgery::make_surgeon("bloop", surgery::SurgeonOptions().lambda(0.1)),
//                         optim::TrainStepOptions().clip_grad_norm(1.0).loss_names({"ce", "lip"}));
//   for (...) {
//     Tensor logits = model.forward(x);
//     StepResult r = step.step({cross_entropy(logits, y), lipschitz.forward()});
//   }
//
// The surgeon and the optimizer share the optimizer's parameter list. Before each update the
// optional lr schedule sets the optimizer's lr from the step counter, and the surgeon's step is set
// to the same counter (so λ schedules follow it). A non-finite loss value, per-loss gradient or
// direction d throws NonFiniteError naming the step and the loss (index and name); losses and
// gradients are checked before the surgeon runs, so neither its EMAs nor the parameters change.
// state_dict() bundles "optim.*", "surgeon.*", "weighting.*" (when there is one) and "step". Option
// fused_mixed gives Mixed its one-backward fast path (see TrainStepOptions).
//
// Data parallel (core/dist.h, under mpirun): each rank computes its losses on its shard of the
// global batch; the loss values and all K+1 per-loss gradients (or Mixed's fused d) are averaged
// over the ranks, packed in one reduction, before the checks and the surgeon, so the surgeon, the
// weighting and the optimizer see the global batch's gradients and stay identical on every rank.
//
// An optional loss weighting (optim/weighting/weighting.h) changes the losses before the surgeon:
// it gets the loss values and returns weights w_k = ∂f/∂L_k, and the k-th per-loss gradient is
// scaled by w_k (so the surgeon combines ∇(w_k L_k)). Its learnable parameters (uw, imtl-l,
// gradnorm) must be in the optimizer's parameter list (build it over model parameters +
// weighting->parameters(), after weighting->ensure_tasks(K)); they get the gradient of the
// weighting's own objective, not the surgeon's direction. Without a weighting nothing changes.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dist.h"
#include "core/grad_vector.h"
#include "core/options.h"
#include "core/state_dict.h"
#include "core/tensor.h"
#include "optim/gradients.h"
#include "optim/head_policy.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/surgery/surgeon.h"
#include "optim/weighting/weighting.h"

namespace scalpel {
namespace optim {

// A loss, gradient or direction that went NaN/inf. step() and loss() say where (loss -1: the
// combined direction d).
class NonFiniteError : public std::runtime_error {
 public:
  NonFiniteError(const std::string& what, int64_t step, int loss)
      : std::runtime_error(what), step_(step), loss_(loss) {}
  int64_t step() const { return step_; }
  int loss() const { return loss_; }

 private:
  int64_t step_;
  int loss_;
};

// Scales d in place so that ‖d‖ <= max_norm (PyTorch's clip_grad_norm_: factor max_norm/(‖d‖+1e-6)
// when below 1). Returns ‖d‖ before clipping. max_norm must be > 0.
double clip_grad_norm(GradVector& d, double max_norm);
// The same over the parameters' .grad (undefined grads are skipped); returns the norm before.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

struct TrainStepOptions {
  SCALPEL_ARG(double, clip_grad_norm) = 0.0;          // 0: no clipping
  SCALPEL_ARG(std::vector<std::string>, loss_names);  // for messages and logs (optional)
  SCALPEL_ARG(ScheduleRef, lr_schedule);              // null: the optimizer's lr is left alone
  // With the "mixed" surgeon: compute d = Σ λk ∇Lk (k = 0 with λ0 = 1) with ONE backward sweep of
  // the weighted sum instead of one sweep per loss. Cheaper when the losses share a network
  // (multi-task heads on one trunk); the per-gradient diagnostics (norms, cosines) are then NaN.
  SCALPEL_ARG(bool, fused_mixed) = false;
  // The parameter group whose per-loss gradient norms a weighting that needs them (gradnorm) gets:
  // the last shared layer. Empty: every model parameter.
  SCALPEL_ARG(std::vector<Tensor>, weighting_group);
  // What the task-specific parameters get (optim/head_policy.h): joint (default; the surgeon sees
  // every parameter), own (the surgeon sees the shared ones, head k gets ∇L_k) or weighted (head k
  // gets c_k ∇L_k, c_k the method's coefficient). own and weighted need head_params (the heads of
  // every task) and per-loss gradients (not fused_mixed).
  SCALPEL_ARG(HeadPolicy, head_policy) = HeadPolicy::Joint;
  SCALPEL_ARG(std::vector<Tensor>, head_params);
  // Data parallel (core/dist.h): every this many steps the ranks compare a checksum of their
  // parameters and throw dist::DistError naming the ranks that differ from rank 0 (0: never).
  SCALPEL_ARG(int64_t, check_replicas_every) = 0;
};

struct StepResult {
  int64_t step = 0;            // the step this result belongs to (0-based)
  std::vector<double> losses;  // L0..LK values
  surgery::SurgeryDiagnostics diagnostics;
  double grad_norm = 0.0;  // ‖d‖ before clipping
  bool clipped = false;
  double lr = 0.0;                   // the learning rate used
  std::vector<double> loss_weights;  // the weighting's w_k (empty without a weighting)
  double weighted_loss = 0.0;        // the weighting's combined loss f (0 without a weighting)
};

class TrainStep {
 public:
  TrainStep(std::unique_ptr<Optimizer> optimizer, std::unique_ptr<surgery::Surgeon> surgeon,
            TrainStepOptions options = TrainStepOptions(),
            std::unique_ptr<weighting::LossWeighting> weighting = nullptr);

  // One update from the losses of one forward pass (L0 main, then L1..LK).
  StepResult step(const std::vector<Tensor>& losses);

  int64_t step_count() const { return step_; }
  Optimizer& optimizer() { return *optimizer_; }
  surgery::Surgeon& surgeon() { return *surgeon_; }
  weighting::LossWeighting* weighting() { return weighting_.get(); }  // null without a weighting
  const GradVector& direction() const { return d_; }                  // d of the last step, after clipping

  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 private:
  std::string loss_label(size_t k) const;
  void per_loss_direction(const std::vector<Tensor>& losses, StepResult& result);
  void fused_mixed_direction(const std::vector<Tensor>& losses, StepResult& result);
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<surgery::Surgeon> surgeon_;
  TrainStepOptions options_;
  std::unique_ptr<weighting::LossWeighting> weighting_;
  std::vector<Tensor> model_params_;                // the optimizer's, minus the weighting's
  std::vector<std::pair<int64_t, int64_t>> group_;  // (offset, length) of weighting_group in d
  void apply_weighting(std::vector<GradVector>* grads, StepResult& result);
  GradientCollector collector_;
  GradVector d_;
  HeadSplit heads_;                       // head policy own / weighted: the layout
  std::vector<GradVector> shared_grads_;  // the shared part of each per-loss gradient
  GradVector d_shared_;                   // the surgeon's direction over the shared part
  std::vector<double> head_coef_;
  std::vector<const GradVector*> grad_ptrs_;
  std::vector<dist::FloatSpan> grad_spans_;
  int64_t step_ = 0;
};

}  // namespace optim
}  // namespace scalpel
