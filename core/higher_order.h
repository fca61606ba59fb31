// Higher-order derivatives on the tape: Hessian-vector products and mixed second derivatives,
// the building blocks of hypergradients (optim/bilevel/) and of curvature studies.
//
// All of them differentiate a gradient that was recorded with create_graph (see core/autograd.h):
// one create_graph backward pass records g(θ) = dL/dθ as a graph, after which every product
// d<g, v>/dw is one more backward sweep through it. GradientGraph keeps that graph for many
// products (conjugate gradients, Neumann series), hvp() is the one-line call:
//
//   std::vector<Tensor> Hv = hvp(loss, params, v);              // (d²L/dθ²) v
//   GradientGraph gg(inner_loss, inner_params);                  // g = dL/dθ, recorded once
//   std::vector<Tensor> Hv2 = gg.vjp(v2, inner_params);          // (d²L/dθ²) v2, no new forward
//   std::vector<Tensor> Jv  = gg.vjp(v, outer_params);           // (d²L/dλ dθ) v, mixed
//
// Costs (measured by bench/bench_higher_order.cpp): one hvp is a forward, a recorded backward and
// a backward through both; each further GradientGraph product is one backward through the
// recorded gradient. Memory: the recorded gradient keeps the forward's saved tensors and its own
// alive for the GradientGraph's lifetime.
#pragma once

#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace scalpel {

class GradientGraph {
 public:
  // g = d loss / d wrt with history. loss must be a scalar; every tensor in wrt must require grad.
  // Parameters the loss does not depend on get a zero gradient (no history).
  GradientGraph(const Tensor& loss, const std::vector<Tensor>& wrt);

  // The recorded gradient, one tensor per `wrt` entry (shapes match).
  const std::vector<Tensor>& gradient() const { return grads_; }
  // d<g, v>/d targets: one tensor per target (zeros where <g, v> does not depend on it). v has
  // one tensor per `wrt` entry, each of its shape. The graph is kept, so it can be called again.
  std::vector<Tensor> vjp(const std::vector<Tensor>& v, const std::vector<Tensor>& targets) const;
  // vjp(v, wrt): the Hessian-vector product.
  std::vector<Tensor> hvp(const std::vector<Tensor>& v) const { return vjp(v, wrt_); }

 private:
  std::vector<Tensor> wrt_;
  std::vector<Tensor> grads_;
};

// (d² loss / d params²) v in one call.
std::vector<Tensor> hvp(const Tensor& loss, const std::vector<Tensor>& params, const std::vector<Tensor>& v);

}  // namespace scalpel
