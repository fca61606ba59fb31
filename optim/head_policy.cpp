#include "optim/head_policy.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace scalpel {
namespace optim {

HeadPolicy head_policy_from_string(const std::string& name) {
  if (name == "joint") return HeadPolicy::Joint;
  if (name == "own") return HeadPolicy::Own;
  if (name == "weighted") return HeadPolicy::Weighted;
  throw std::invalid_argument("head policy: unknown policy '" + name + "' (expected joint, own or weighted)");
}

std::string head_policy_name(HeadPolicy p) {
  switch (p) {
    case HeadPolicy::Joint:
      return "joint";
    case HeadPolicy::Own:
      return "own";
    case HeadPolicy::Weighted:
      return "weighted";
  }
  return "joint";
}

namespace {
// Appends (offset, length), merging with the previous run when adjacent.
void push_run(std::vector<std::pair<int64_t, int64_t>>& runs, int64_t offset, int64_t length) {
  if (length == 0) return;
  if (!runs.empty() && runs.back().first + runs.back().second == offset) {
    runs.back().second += length;
  } else {
    runs.emplace_back(offset, length);
  }
}
}  // namespace

HeadSplit::HeadSplit(const std::vector<Tensor>& params, const std::vector<Tensor>& heads) {
  std::vector<char> is_head(params.size(), 0);
  for (size_t h = 0; h < heads.size(); ++h) {
    size_t k = 0;
    while (k < params.size() && !params[k].same(heads[h])) ++k;
    if (k == params.size()) {
      throw std::invalid_argument("TrainStep: option head_params: tensor " + std::to_string(h) + " (shape " +
                                  shape_str(heads[h].shape()) + ") is not a model parameter of the optimizer");
    }
    is_head[k] = 1;
  }
  int64_t offset = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    const int64_t n = params[k].numel();
    push_run(is_head[k] ? heads_ : shared_, offset, n);
    if (!is_head[k]) shared_size_ += n;
    offset += n;
  }
  total_ = offset;
  if (shared_size_ == 0) {
    throw std::invalid_argument(
        "TrainStep: option head_params: every parameter is a head, so nothing is shared (hint: list only the "
        "task-specific parameters, or use head policy joint)");
  }
}

void HeadSplit::gather_shared(const GradVector& full, GradVector& shared) const {
  if (full.size() != total_) {
    throw std::invalid_argument("HeadSplit.gather_shared: expected a vector of " + std::to_string(total_) +
                                " entries, got " + std::to_string(full.size()));
  }
  if (shared.size() != shared_size_) shared = GradVector(shared_size_);
  float* out = shared.data();
  for (const auto& [off, len] : shared_) {
    std::memcpy(out, full.data() + off, static_cast<size_t>(len) * sizeof(float));
    out += len;
  }
}

void HeadSplit::assemble(const GradVector& d_shared, const std::vector<GradVector>& grads,
                         const std::vector<double>& coef, GradVector& d) const {
  if (d_shared.size() != shared_size_ || coef.size() != grads.size()) {
    throw std::invalid_argument("HeadSplit.assemble: expected a shared direction of " + std::to_string(shared_size_) +
                                " entries and one coefficient per gradient, got " + std::to_string(d_shared.size()) +
                                " entries and " + std::to_string(coef.size()) + " coefficients for " +
                                std::to_string(grads.size()) + " gradients");
  }
  if (d.size() != total_) d = GradVector(total_);
  const float* in = d_shared.data();
  for (const auto& [off, len] : shared_) {
    std::memcpy(d.data() + off, in, static_cast<size_t>(len) * sizeof(float));
    in += len;
  }
  // Head entries: Σ_k c_k g_k, in task order (a fixed summation order: the same bits every run).
  for (const auto& [off, len] : heads_) {
    float* o = d.data() + off;
    std::fill(o, o + len, 0.0f);
    for (size_t k = 0; k < grads.size(); ++k) {
      const float c = static_cast<float>(coef[k]);
      if (c == 0.0f) continue;
      const float* g = grads[k].data() + off;
      for (int64_t i = 0; i < len; ++i) o[i] += c * g[i];
    }
  }
}

}  // namespace optim
}  // namespace scalpel
