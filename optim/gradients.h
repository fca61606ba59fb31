// Per-loss gradients in one forward: one GradVector per loss over a fixed parameter list.
//
// The caller runs the forward pass once and builds the loss tensors L0..LK on the shared graph.
// GradientCollector then runs one reverse sweep per loss with grad_into(): gradients are written
// straight into the GradVectors' aliasing views (no gather copy), the graph is retained for every
// loss but the last, and allow_unused gives zeros for parameters a loss does not reach. A sweep only
// visits the nodes its loss depends on, so a loss that does not depend on the data (the Lipschitz
// bound, ½‖θ‖²) costs only its own small backward, not another pass through the network.
//
//   GradientCollector collect(model.parameters());
//   const auto& g = collect.compute({ce, lipschitz});   // g[0], g[1]: GradVector of P floats
//
// The collector keeps its GradVectors allocated across steps (no O(P) allocation after the first).
#pragma once

#include <vector>

#include "core/grad_vector.h"
#include "core/tensor.h"

namespace scalpel {
namespace optim {

struct PerLossOptions {
  // Keep the graph after the last loss's sweep too (for a later backward through the same graph).
  bool retain_graph = false;
  PerLossOptions& set_retain_graph(bool v) {
    retain_graph = v;
    return *this;
  }
};

class GradientCollector {
 public:
  // Every parameter must require grad and be a leaf; throws std::invalid_argument naming the index.
  explicit GradientCollector(std::vector<Tensor> params);

  // One GradVector per loss (each loss a scalar tensor). A loss that does not require grad (a
  // constant) gets an all-zero gradient. The returned references stay valid until the next call
  // with a different number of losses. Does not touch any parameter's .grad.
  std::vector<GradVector>& compute(const std::vector<Tensor>& losses, const PerLossOptions& options = PerLossOptions());

  const std::vector<Tensor>& params() const { return params_; }
  int64_t size() const { return size_; }  // P, total number of parameter elements

 private:
  std::vector<Tensor> params_;
  int64_t size_ = 0;
  std::vector<GradVector> grads_;
  std::vector<std::vector<Tensor>> views_;
};

// One-shot convenience over GradientCollector (allocates fresh GradVectors).
std::vector<GradVector> per_loss_gradients(const std::vector<Tensor>& losses, const std::vector<Tensor>& params,
                                           const PerLossOptions& options = PerLossOptions());

}  // namespace optim
}  // namespace scalpel
