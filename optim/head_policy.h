// Head policy: what the task-specific parameters (the heads of a multi-task network) receive, and
// whether the surgeon sees them. The published libraries differ here without saying so: LibMTL's
// gradient methods aggregate the SHARED parameters' gradients only and give each head its own
// ∇L_k; TorchJD aggregates whatever Jacobian it is handed; the Bloop paper projects the whole
// parameter vector. Scalpel makes it an option of the training step (TrainStepOptions::head_policy,
// `--head-policy` in scalpel-multitask):
//
//   joint     (default) the surgeon combines the gradients of ALL parameters; a head gets its share
//             of the combined direction d (for linear methods, w_k ∇_head L_k; for PCGrad or Bloop,
//             whatever the projection did to it). The Gram matrix, cosines and norms are those of
//             the whole-model gradients. This is the paper's setting and what Scalpel did before.
//   own       the surgeon combines the shared parameters' gradients only; each head gets its own
//             task's gradient ∇_head L_k (times the loss weighting's w_k when there is one), as in
//             LibMTL. Diagnostics describe the shared parameters.
//   weighted  like own, but each head gets c_k ∇_head L_k with c_k the coefficient the method gave
//             task k: the aggregator's weights (diagnostics.weights) when it reports them, else
//             the λ coefficients (1, λ_1, .., λ_K) times the method's rescale factor.
//
// HeadSplit holds the layout: the flat offsets of the head parameters in the optimizer's parameter
// order (any order; runs of adjacent parameters are merged) and of the shared rest. gather copies
// the shared part of a per-loss gradient; assemble writes d from the combined shared direction and
// the per-loss head gradients. Both are O(P) copies with no allocation after the first step.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/grad_vector.h"
#include "core/tensor.h"

namespace scalpel {
namespace optim {

enum class HeadPolicy { Joint, Own, Weighted };

// "joint" / "own" / "weighted"; throws std::invalid_argument naming the value and the choices.
HeadPolicy head_policy_from_string(const std::string& name);
std::string head_policy_name(HeadPolicy p);

class HeadSplit {
 public:
  HeadSplit() = default;
  // `params`: the flat layout (optimizer order); `heads`: the task-specific ones, each of which
  // must be in `params` (else std::invalid_argument naming the tensor's index and shape). At least
  // one parameter must be shared.
  HeadSplit(const std::vector<Tensor>& params, const std::vector<Tensor>& heads);

  int64_t shared_size() const { return shared_size_; }
  int64_t total_size() const { return total_; }
  // The shared entries of `full` (total_size) into `shared` (resized to shared_size once).
  void gather_shared(const GradVector& full, GradVector& shared) const;
  // d (total_size) = the shared direction in the shared entries and Σ_k coef[k] grads[k] in the
  // head entries.
  void assemble(const GradVector& d_shared, const std::vector<GradVector>& grads, const std::vector<double>& coef,
                GradVector& d) const;

 private:
  std::vector<std::pair<int64_t, int64_t>> shared_, heads_;  // (offset, length) runs
  int64_t shared_size_ = 0, total_ = 0;
};

}  // namespace optim
}  // namespace scalpel
