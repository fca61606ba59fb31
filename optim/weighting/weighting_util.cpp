#include "optim/weighting/weighting_util.h"

#include <cmath>
#include <stdexcept>

#include "core/ops.h"

namespace scalpel {
namespace weighting {

Tensor stack_losses(const std::vector<Tensor>& losses, const std::string& method, int expected_K) {
  if (losses.size() < 2) {
    throw std::invalid_argument("weighting '" + method + "': needs at least 2 task losses, got " +
                                std::to_string(losses.size()));
  }
  if (expected_K > 0 && static_cast<int>(losses.size()) != expected_K) {
    throw std::invalid_argument("weighting '" + method + "': was set up for " + std::to_string(expected_K) +
                                " task losses, got " + std::to_string(losses.size()));
  }
  std::vector<Tensor> parts;
  for (size_t i = 0; i < losses.size(); ++i) {
    if (!losses[i].defined() || losses[i].numel() != 1) {
      throw std::invalid_argument("weighting '" + method + "': task loss " + std::to_string(i) +
                                  " must be a scalar tensor");
    }
    parts.push_back(reshape(losses[i], {1}));
  }
  return concat(parts, 0);
}

void check_finite(const WeightingResult& r, const std::string& method) {
  bool ok = std::isfinite(r.loss);
  for (double w : r.weights) ok = ok && std::isfinite(w);
  if (!ok) {
    std::string ws;
    for (double w : r.weights) ws += (ws.empty() ? "" : ", ") + std::to_string(w);
    throw std::invalid_argument("weighting '" + method + "': the weights [" + ws + "] or the combined loss (" +
                                std::to_string(r.loss) + ") are not finite; nothing was changed");
  }
}

Tensor weighted_sum(const std::vector<Tensor>& losses, const std::vector<double>& w, const std::string& method,
                    int expected_K) {
  const Tensor L = stack_losses(losses, method, expected_K);
  std::vector<float> wf(L.numel(), 1.0f);
  for (size_t i = 0; i < w.size() && i < wf.size(); ++i) wf[i] = static_cast<float>(w[i]);
  return sum(mul(L, Tensor::from_vector(wf)));
}

}  // namespace weighting
}  // namespace scalpel
