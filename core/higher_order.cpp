#include "core/higher_order.h"

#include <stdexcept>
#include <string>

#include "core/ops.h"

namespace scalpel {

GradientGraph::GradientGraph(const Tensor& loss, const std::vector<Tensor>& wrt) : wrt_(wrt) {
  if (!loss.defined() || loss.numel() != 1) {
    throw std::invalid_argument("GradientGraph: the loss must be a defined scalar, got " +
                                (loss.defined() ? "shape " + shape_str(loss.shape()) : std::string("undefined")));
  }
  EnableGradGuard enable;
  grads_ = grad({loss}, wrt, GradOptions().set_create_graph(true).set_allow_unused(true));
}

std::vector<Tensor> GradientGraph::vjp(const std::vector<Tensor>& v, const std::vector<Tensor>& targets) const {
  if (v.size() != grads_.size()) {
    throw std::invalid_argument("GradientGraph::vjp: got " + std::to_string(v.size()) + " vectors for " +
                                std::to_string(grads_.size()) + " gradient tensors (one per parameter)");
  }
  EnableGradGuard enable;
  Tensor total;
  for (size_t k = 0; k < v.size(); ++k) {
    if (!v[k].defined() || v[k].shape() != grads_[k].shape()) {
      throw std::invalid_argument("GradientGraph::vjp: vector " + std::to_string(k) + " has shape " +
                                  (v[k].defined() ? shape_str(v[k].shape()) : std::string("undefined")) +
                                  ", expected " + shape_str(grads_[k].shape()) + " like its parameter");
    }
    if (!grads_[k].requires_grad()) continue;  // a constant gradient contributes no second derivative
    const Tensor term = dot(grads_[k], v[k].detach());
    total = total.defined() ? add(total, term) : term;
  }
  std::vector<Tensor> out;
  if (!total.defined()) {  // the gradient is constant: every second derivative is zero
    for (const Tensor& t : targets) out.push_back(Tensor::zeros(t.shape()));
    return out;
  }
  return grad({total}, targets, GradOptions().set_retain_graph(true).set_allow_unused(true));
}

std::vector<Tensor> hvp(const Tensor& loss, const std::vector<Tensor>& params, const std::vector<Tensor>& v) {
  return GradientGraph(loss, params).hvp(v);
}

}  // namespace scalpel
