#include "experiments/quadratics_model.h"

#include <algorithm>

#include "core/ops.h"
#include "core/random.h"

namespace scalpel {
namespace experiments {

QuadraticsProblem make_quadratics(int64_t n, int64_t p, uint64_t seed) {
  Generator gen(seed);
  QuadraticsProblem pr;
  std::vector<float> scale(static_cast<size_t>(p));
  for (int64_t j = 0; j < p; ++j)
    scale[j] = 1.0f + 9.0f * static_cast<float>(j) / static_cast<float>(std::max<int64_t>(p - 1, 1));
  const Tensor s = Tensor::from_vector(scale);
  const Tensor theta_star = Tensor::normal({p, 1}, gen);
  pr.X = mul(Tensor::normal({n, p}, gen), s);
  pr.y = add(matmul(pr.X, theta_star), mul(Tensor::normal({n, 1}, gen), 0.05f));
  pr.X_test = mul(Tensor::normal({n, p}, gen), s);
  pr.y_test = add(matmul(pr.X_test, theta_star), mul(Tensor::normal({n, 1}, gen), 0.05f));
  pr.target = mul(Tensor::normal({p, 1}, gen), 10.0f);
  return pr;
}

Tensor quadratics_main_loss(const Tensor& X, const Tensor& y, const Tensor& theta) {
  return mul(mean(square(sub(matmul(X, theta), y))), 0.5f);
}

Tensor quadratics_aux_loss(const Tensor& theta, const Tensor& target) {
  return mul(sum(square(sub(theta, target))), 0.5f);
}

}  // namespace experiments
}  // namespace scalpel
