// The reference implementation's over-parameterised least-squares problem (ALGORITHMS.md §5),
// shared by scalpel-quadratics and scalpel-bilevel-view.
//
// n samples, p parameters (p > n: argmin of the main loss is an affine subspace):
// X = N(0,1) · diag(linspace(1, 10, p)), y = X θ* + 0.05 ε, a held-out (X_test, y_test) drawn alike,
// target t = 10 · N(0, I). Main loss ½ mean((Xθ − y)²), auxiliary loss ½‖θ − t‖²; the bilevel
// solution is the point of the solution subspace closest to t.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace scalpel {
namespace experiments {

struct QuadraticsProblem {
  Tensor X, y, X_test, y_test, target;  // [n, p], [n, 1], [n, p], [n, 1], [p, 1]
};

QuadraticsProblem make_quadratics(int64_t n, int64_t p, uint64_t seed);
Tensor quadratics_main_loss(const Tensor& X, const Tensor& y, const Tensor& theta);  // theta [p, 1]
Tensor quadratics_aux_loss(const Tensor& theta, const Tensor& target);

}  // namespace experiments
}  // namespace scalpel
