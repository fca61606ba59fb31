// The two-objective toy used across the multi-task literature (CAGrad, Liu et al. 2021; reused by
// Nash-MTL, FAMO and others): x = (x1, x2) in R²,
//   u1 = -x1/2 - 7/2 + tanh(x2),  u2 = -x1/2 + 7/2 - tanh(x2)
//   c1 = max(tanh(x2/2), 0),      c2 = max(tanh(-x2/2), 0)
//   f1 = c1 (log max(|u1|, 5e-6) + 6) + c2 (((x1 - 7)² + 0.1 (x2 + 8)²)/10 - 20)
//   f2 = c1 (log max(|u2|, 5e-6) + 6) + c2 (((x1 + 7)² + 0.1 (x2 + 8)²)/10 - 20)
// with f1 optionally multiplied by `scale` (an imbalanced variant: scale-invariant methods must not
// care). Gradients are exact (hand-derived; finite-difference tested). The papers start from
// (-8.5, 7.5), (0, 0), (9, 9), (-7.5, -0.5), (9, -1) and run Adam at lr 1e-3; the Pareto set is
// where the two gradients point in opposite directions.
#pragma once

#include <array>
#include <vector>

namespace scalpel {
namespace experiments {

struct ToyEval {
  double f1 = 0, f2 = 0;
  std::array<double, 2> g1{}, g2{};  // gradients of f1 and f2 at x
};

ToyEval mtl_toy_eval(double x1, double x2, double scale = 1.0);

// The published starting points.
std::vector<std::array<double, 2>> mtl_toy_starts();

// Norm of the min-norm point of the segment [g1, g2] (MGDA's Pareto-stationarity measure,
// exact for two tasks): 0 exactly at Pareto-stationary points.
double min_norm_2(const std::array<double, 2>& g1, const std::array<double, 2>& g2);

}  // namespace experiments
}  // namespace scalpel
