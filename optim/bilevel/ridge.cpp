#include "optim/bilevel/ridge.h"

#include <Eigen/Dense>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/ops.h"
#include "core/random.h"

namespace scalpel {
namespace bilevel {

namespace {

using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;

Mat to_mat(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  Mat m(t.size(0), t.size(1));
  for (int64_t i = 0; i < t.size(0); ++i)
    for (int64_t j = 0; j < t.size(1); ++j) m(i, j) = v[static_cast<size_t>(i * t.size(1) + j)];
  return m;
}

Vec to_vec(const std::vector<double>& v) { return Eigen::Map<const Vec>(v.data(), static_cast<int64_t>(v.size())); }
std::vector<double> from_vec(const Vec& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

// exp(λ) per feature (a single λ broadcast).
Vec weights(const std::vector<double>& lambda, int64_t d) {
  if (lambda.size() != 1 && static_cast<int64_t>(lambda.size()) != d) {
    throw std::invalid_argument("RidgeToy: lambda has " + std::to_string(lambda.size()) + " entries, expected 1 or " +
                                std::to_string(d));
  }
  Vec w(d);
  for (int64_t j = 0; j < d; ++j) w(j) = std::exp(lambda.size() == 1 ? lambda[0] : lambda[static_cast<size_t>(j)]);
  return w;
}

// Sums a per-feature gradient down to a shared λ.
std::vector<double> fold(const Vec& g, size_t lambda_size) {
  if (lambda_size == 1) return {g.sum()};
  return from_vec(g);
}

struct Dense {
  Mat A;  // XᵀX/n + diag(exp λ)
  Vec b;  // Xᵀy/n
  Mat Xv;
  Vec yv;
};

Dense dense(const RidgeToy& t, const std::vector<double>& lambda) {
  Dense d;
  const Mat X = to_mat(t.X), Xv = to_mat(t.Xv);
  const Vec y = to_mat(t.y).col(0);
  const double n = static_cast<double>(X.rows());
  d.A = X.transpose() * X / n;
  d.A.diagonal() += weights(lambda, t.dim);
  d.b = X.transpose() * y / n;
  d.Xv = Xv;
  d.yv = to_mat(t.yv).col(0);
  return d;
}

Vec outer_grad(const Dense& d, const Vec& theta) {
  return d.Xv.transpose() * (d.Xv * theta - d.yv) / static_cast<double>(d.Xv.rows());
}

}  // namespace

RidgeToy::RidgeToy(int64_t n_train, int64_t n_val, int64_t d, double spread, double noise, uint64_t seed) : dim(d) {
  if (n_train < 1 || n_val < 1 || d < 1) throw std::invalid_argument("RidgeToy: sizes must be positive");
  Generator gen(seed);
  std::vector<float> scale(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) {
    scale[static_cast<size_t>(j)] = static_cast<float>(d == 1 ? 1.0 : 1.0 + (spread - 1.0) * j / (d - 1.0));
  }
  NoGradGuard ng;
  const Tensor s = Tensor::from_vector(scale, {1, d});
  const Tensor w = Tensor::normal({d, 1}, gen);
  X = mul(Tensor::normal({n_train, d}, gen), s).contiguous();
  Xv = mul(Tensor::normal({n_val, d}, gen), s).contiguous();
  y = add(matmul(X, w), mul(Tensor::normal({n_train, 1}, gen), static_cast<float>(noise))).contiguous();
  yv = add(matmul(Xv, w), mul(Tensor::normal({n_val, 1}, gen), static_cast<float>(noise))).contiguous();
}

Problem RidgeToy::problem() const {
  const Tensor Xc = X, yc = y, Xvc = Xv, yvc = yv;
  const int64_t d = dim;
  Problem p;
  p.inner_loss = [Xc, yc, d](const std::vector<Tensor>& th, const std::vector<Tensor>& lam) {
    const Tensor theta = th[0].reshape({d, 1});
    const Tensor fit = mul(mean(square(sub(matmul(Xc, theta), yc))), 0.5f);
    const Tensor reg = mul(sum(mul(exp(lam[0]), square(th[0]))), 0.5f);  // λ [1] broadcasts, or [d]
    return add(fit, reg);
  };
  p.outer_loss = [Xvc, yvc, d](const std::vector<Tensor>& th, const std::vector<Tensor>&) {
    return mul(mean(square(sub(matmul(Xvc, th[0].reshape({d, 1})), yvc))), 0.5f);
  };
  return p;
}

std::vector<double> RidgeToy::solution(const std::vector<double>& lambda) const {
  const Dense d = dense(*this, lambda);
  return from_vec(d.A.ldlt().solve(d.b));
}

std::vector<double> RidgeToy::exact_hypergradient(const std::vector<double>& lambda) const {
  const Dense d = dense(*this, lambda);
  const Vec theta = d.A.ldlt().solve(d.b);
  const Vec u = d.A.ldlt().solve(outer_grad(d, theta));
  const Vec w = weights(lambda, dim);
  return fold(-(w.array() * theta.array() * u.array()).matrix(), lambda.size());
}

std::vector<double> RidgeToy::unrolled_reference(const std::vector<double>& lambda, const std::vector<double>& theta0,
                                                 int64_t steps, double lr, int64_t truncate) const {
  const Dense d = dense(*this, lambda);
  const Vec w = weights(lambda, dim);
  Vec theta = to_vec(theta0);
  Mat J = Mat::Zero(dim, dim);  // dθ/dλ (per-feature λ)
  const int64_t start = truncate > 0 ? steps - truncate : 0;
  for (int64_t k = 0; k < steps; ++k) {
    // θ' = θ − lr (Aθ − b), with ∂(Aθ)/∂λ_j = e_j w_j θ_j
    if (k >= start) {
      Mat dA = Mat::Zero(dim, dim);
      dA.diagonal() = (w.array() * theta.array()).matrix();
      J = J - lr * (d.A * J + dA);
    }
    theta = theta - lr * (d.A * theta - d.b);
  }
  return fold(J.transpose() * outer_grad(d, theta), lambda.size());
}

std::vector<double> RidgeToy::hessian_eigenvalues(const std::vector<double>& lambda) const {
  const Dense d = dense(*this, lambda);
  return from_vec(Eigen::SelfAdjointEigenSolver<Mat>(d.A).eigenvalues());
}

double RidgeToy::outer_loss(const std::vector<double>& theta) const {
  const Dense d = dense(*this, {0.0});
  const Vec r = d.Xv * to_vec(theta) - d.yv;
  return 0.5 * r.squaredNorm() / static_cast<double>(r.size());
}

}  // namespace bilevel
}  // namespace scalpel
