#include "optim/gradients.h"

#include <stdexcept>
#include <string>

#include "core/autograd.h"

namespace scalpel {
namespace optim {

GradientCollector::GradientCollector(std::vector<Tensor> params) : params_(std::move(params)) {
  for (size_t k = 0; k < params_.size(); ++k) {
    const Tensor& p = params_[k];
    if (!p.defined())
      throw std::invalid_argument("GradientCollector: parameter " + std::to_string(k) + " is undefined");
    if (!p.requires_grad()) {
      throw std::invalid_argument("GradientCollector: parameter " + std::to_string(k) + " (shape " +
                                  shape_str(p.shape()) + ") does not require grad");
    }
    if (!p.is_leaf()) {
      throw std::invalid_argument("GradientCollector: parameter " + std::to_string(k) + " (shape " +
                                  shape_str(p.shape()) + ") is not a leaf tensor");
    }
    size_ += p.numel();
  }
}

std::vector<GradVector>& GradientCollector::compute(const std::vector<Tensor>& losses, const PerLossOptions& options) {
  for (size_t k = 0; k < losses.size(); ++k) {
    if (!losses[k].defined())
      throw std::invalid_argument("GradientCollector: loss " + std::to_string(k) + " is undefined");
    if (losses[k].numel() != 1) {
      throw std::invalid_argument("GradientCollector: loss " + std::to_string(k) + " must be a scalar, got shape " +
                                  shape_str(losses[k].shape()));
    }
  }
  while (grads_.size() < losses.size()) {
    grads_.emplace_back(size_);
    views_.push_back(grads_.back().views(params_));
  }
  grads_.resize(losses.size());
  views_.resize(losses.size());
  // The last loss that actually needs a sweep may free the graph (unless told to retain it).
  int last = -1;
  for (size_t k = 0; k < losses.size(); ++k) {
    if (losses[k].requires_grad()) last = static_cast<int>(k);
  }
  for (size_t k = 0; k < losses.size(); ++k) {
    grads_[k].fill(0.0f);
    if (!losses[k].requires_grad() || params_.empty()) continue;
    GradOptions go;
    go.set_allow_unused(true).set_retain_graph(options.retain_graph || static_cast<int>(k) != last);
    grad_into({losses[k]}, params_, views_[k], go);
  }
  return grads_;
}

std::vector<GradVector> per_loss_gradients(const std::vector<Tensor>& losses, const std::vector<Tensor>& params,
                                           const PerLossOptions& options) {
  GradientCollector c(params);
  return c.compute(losses, options);
}

}  // namespace optim
}  // namespace scalpel
