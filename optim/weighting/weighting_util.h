// Helpers the loss weightings share (not part of the public interface): the task losses as one
// tensor of K values on the tape, and the finiteness check of a step's result.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "optim/weighting/weighting.h"

namespace scalpel {
namespace weighting {

// losses (K scalar tensors) -> one tensor of shape {K}, differentiable. Throws naming the method
// when a tensor is not a scalar or K differs from `expected_K` (when that is > 0).
Tensor stack_losses(const std::vector<Tensor>& losses, const std::string& method, int expected_K);

// Appended to the errors of the methods that need positive losses (gls, famo, gradnorm, stch's log
// transform): a study's auxiliary loss may be negative (the smooth MLP's log Lipschitz bound).
inline const char* signed_loss_hint() {
  return " (hint: uw, imtl-l, dwa, rlw and stch with transform=none take losses of any sign)";
}

// Throws std::invalid_argument naming the method when a weight or the combined loss is not finite.
void check_finite(const WeightingResult& r, const std::string& method);

// The weights `w` (constants) applied to the losses: Σ w_i L_i on the tape.
Tensor weighted_sum(const std::vector<Tensor>& losses, const std::vector<double>& w, const std::string& method,
                    int expected_K);

}  // namespace weighting
}  // namespace scalpel
