// Hypergradients of bilevel problems: d/dλ of an outer loss L_out(θ*(λ), λ) whose inner parameters
// θ*(λ) minimise an inner loss L_in(θ, λ), for the lecture's studies of short horizons, implicit
// bias and approximate hypergradients (experiments/short_horizon.cpp, hypergrad.cpp,
// bilevel_view.cpp), on models of any size: every method needs only gradients and
// Hessian-vector products from the tape (core/higher_order.h).
//
// One interface for every method: the two losses as functions of (inner, outer) tensors, built
// from differentiable ops, and the current values of both.
//
//   bilevel::Problem p{inner_loss, outer_loss};
//   auto h = bilevel::hypergradient(p, theta, lambda, bilevel::HypergradOptions()
//                                                         .method(bilevel::Method::kConjugateGradient)
//                                                         .iterations(20).damping(1e-3));
//   // h.grad[k] is dL_out/dλ_k; h.residual says how well the linear system was solved
//
// The methods, with v = ∂L_out/∂θ, H = ∂²L_in/∂θ², J = ∂²L_in/∂θ∂λ (implicit function theorem:
// dL_out/dλ = ∂L_out/∂λ − Jᵀ (H + δI)⁻¹ v, valid at an inner optimum, which the caller provides):
//   kExact              (H + δI)⁻¹ v by a dense solve in double: H materialised with one HVP per
//                       inner coordinate (small problems; refuses more than max_exact of them).
//                       A singular H without damping takes the minimum-norm (pseudo-inverse) solution.
//   kConjugateGradient  `iterations` CG steps on (H + δI) p = v (stops early at `tolerance`).
//   kNeumann            p = α Σ_{k=0}^{K} (I − α(H + δI))^k v, K = iterations (converges for
//                       α < 2/λ_max; ≈ the damped inverse with η = 1/(αK), as the lecture notes).
//   kT1T2               p = α v: the one-step approximation H⁻¹ ≈ αI (Luketina et al.), i.e.
//                       Neumann with K = 0.
//   kUnrolled           reverse-mode through K = iterations steps of gradient descent
//                       θ_{k+1} = θ_k − α ∇θ L_in(θ_k, λ) from the given θ; `truncate` = T > 0
//                       differentiates only the last T steps (the first K − T are taken as
//                       constants). Memory: every differentiated step keeps its forward graph and
//                       its recorded gradient alive, i.e. about T times the memory of one
//                       create_graph gradient of L_in, until the hypergradient is returned.
// Every method returns the hypergradient, where it was evaluated, and its cost in HVPs / steps.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/tensor.h"

namespace scalpel {
namespace bilevel {

// A loss of (inner, outer) tensors -> scalar.
using Objective = std::function<Tensor(const std::vector<Tensor>& inner, const std::vector<Tensor>& outer)>;

struct Problem {
  Objective inner_loss;
  Objective outer_loss;
};

enum class Method { kExact, kConjugateGradient, kNeumann, kT1T2, kUnrolled };
// "exact", "cg", "neumann", "t1t2", "unrolled"; throws std::invalid_argument listing the names.
Method parse_method(const std::string& name);
std::string method_name(Method m);

struct HypergradOptions {
  SCALPEL_ARG(Method, method) = Method::kConjugateGradient;
  SCALPEL_ARG(int64_t, iterations) = 10;   // CG iterations, Neumann terms, unrolled steps
  SCALPEL_ARG(int64_t, truncate) = 0;      // unrolled: differentiate the last T steps only (0: all)
  SCALPEL_ARG(double, alpha) = 0.1;        // Neumann / T1-T2 step, unrolled inner learning rate
  SCALPEL_ARG(double, damping) = 0.0;      // δ of the implicit methods' (H + δI)
  SCALPEL_ARG(double, tolerance) = 0.0;    // CG: stop once ‖r‖ <= tolerance ‖v‖
  SCALPEL_ARG(int64_t, max_exact) = 4096;  // kExact: the largest inner dimension it accepts
};

struct Hypergradient {
  std::vector<Tensor> grad;   // dL_out/dλ, one tensor per outer tensor
  std::vector<Tensor> inner;  // the inner parameters it was evaluated at (unrolled: after K steps)
  double outer_loss = 0.0;    // L_out at (inner, outer)
  int64_t hvps = 0;           // Hessian-vector products used (unrolled: differentiated steps)
  double residual = NAN;      // implicit methods: ‖(H + δI) p − v‖ / ‖v‖ of the solve (0 for v = 0)
};

// The hypergradient at (inner, outer). Values are read from the tensors given (their history and
// requires_grad do not matter); nothing is modified. Throws std::invalid_argument for a bad option
// or an objective that does not return a scalar.
Hypergradient hypergradient(const Problem& problem, const std::vector<Tensor>& inner, const std::vector<Tensor>& outer,
                            const HypergradOptions& options = HypergradOptions());

// `steps` of gradient descent on L_in from `inner` with learning rate `lr` (no history); the
// inner solve of an implicit method, warm- or cold-started by the caller's choice of `inner`.
std::vector<Tensor> minimize_inner(const Problem& problem, std::vector<Tensor> inner, const std::vector<Tensor>& outer,
                                   int64_t steps, double lr);

}  // namespace bilevel
}  // namespace scalpel
