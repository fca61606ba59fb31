// The ridge-regression bilevel toy with a known answer: the reference problem of the hypergradient
// tests and of scalpel-hypergrad.
//
// Inner: L_in(θ, λ) = ½ mean((Xθ − y)²) + ½ Σ_j exp(λ_j) θ_j²  (one λ per feature, or one for all)
// Outer: L_out(θ)   = ½ mean((X_v θ − y_v)²)
// With A = XᵀX/n + diag(exp(λ)) and b = Xᵀy/n, θ*(λ) = A⁻¹ b and, with v = ∂L_out/∂θ at θ*,
//   dL_out/dλ_j = −exp(λ_j) θ*_j (A⁻¹ v)_j.
// The closed forms are computed in double (Eigen), independently of the tape; `unrolled_reference`
// is the same forward-mode recursion for K steps of gradient descent, the exact answer of the
// unrolled method at budget K. Data: X, X_v ~ N(0, 1) with feature scales linspace(1, `spread`)
// (so the inner Hessian is ill-conditioned), y = X w + noise, w ~ N(0, 1), seeded.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "optim/bilevel/hypergradient.h"

namespace scalpel {
namespace bilevel {

struct RidgeToy {
  RidgeToy(int64_t n_train, int64_t n_val, int64_t dim, double spread, double noise, uint64_t seed);

  Problem problem() const;
  // θ*(λ) and the exact hypergradient; λ has one entry per feature or a single shared entry.
  std::vector<double> solution(const std::vector<double>& lambda) const;
  std::vector<double> exact_hypergradient(const std::vector<double>& lambda) const;
  // The hypergradient of K gradient-descent steps from θ0 with step `lr`, differentiating the last
  // `truncate` of them (0: all), by forward-mode recursion in double.
  std::vector<double> unrolled_reference(const std::vector<double>& lambda, const std::vector<double>& theta0,
                                         int64_t steps, double lr, int64_t truncate = 0) const;
  // Eigenvalues of the inner Hessian A at λ (ascending).
  std::vector<double> hessian_eigenvalues(const std::vector<double>& lambda) const;
  double outer_loss(const std::vector<double>& theta) const;

  int64_t dim;
  Tensor X, y, Xv, yv;  // [n, d], [n, 1], [n_v, d], [n_v, 1]
};

}  // namespace bilevel
}  // namespace scalpel
