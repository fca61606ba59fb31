// LipschitzBound: power iteration against an exact SVD (Eigen), its gradient u vᵀ / σ, the
// persistence of its vectors as buffers, and l2_norm.
#include <gtest/gtest.h>

#include <Eigen/SVD>
#include <cmath>

#include "nn/linear.h"
#include "nn/loss.h"

using namespace scalpel;

namespace {
Eigen::MatrixXd to_eigen(const Tensor& w) {
  Eigen::MatrixXd m(w.size(0), w.size(1));
  for (int64_t i = 0; i < w.size(0); ++i)
    for (int64_t j = 0; j < w.size(1); ++j) m(i, j) = w.at({i, j});
  return m;
}
}  // namespace

TEST(Lipschitz, PowerIterationMatchesExactSvd) {
  Generator gen(5);
  nn::MLP mlp(nn::MLPOptions({20, 16, 12, 10}), gen);
  nn::LipschitzBound bound(mlp, nn::LipschitzOptions().init_iterations(500), gen);
  const std::vector<float> sig = bound.sigmas();
  ASSERT_EQ(sig.size(), 3u);
  double log_sum = 0.0;
  for (size_t k = 0; k < 3; ++k) {
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(to_eigen(bound.weights()[k]));
    const double exact = svd.singularValues()(0);
    EXPECT_NEAR(sig[k], exact, 1e-4 * exact) << "layer " << k;
    log_sum += std::log(exact);
  }
  Tensor l = bound.forward();
  EXPECT_NEAR(l.item(), log_sum, 1e-4 * std::fabs(log_sum));
}

TEST(Lipschitz, GradientIsUVTransposeOverSigma) {
  Generator gen(6);
  nn::MLP mlp(nn::MLPOptions({7, 5, 3}), gen);
  nn::LipschitzBound bound(mlp, nn::LipschitzOptions().init_iterations(500).iterations(0), gen);
  Tensor l = bound.forward();
  std::vector<Tensor> g = grad({l}, bound.weights());
  const StateDict sd = bound.state_dict();
  const std::vector<float> sig = bound.sigmas();
  for (size_t k = 0; k < g.size(); ++k) {
    const Tensor u = sd.tensor("u" + std::to_string(k)), v = sd.tensor("v" + std::to_string(k));
    const Tensor expected = mul(matmul(u.reshape({-1, 1}), v.reshape({1, -1})), 1.0f / sig[k]);
    EXPECT_LT(max_abs_diff(g[k], expected), 1e-5f) << "layer " << k;
    // ... which is also the exact top singular pair's u vᵀ / σ, up to sign
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(to_eigen(bound.weights()[k]), Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Eigen::MatrixXd ref = svd.matrixU().col(0) * svd.matrixV().col(0).transpose() / svd.singularValues()(0);
    for (int64_t i = 0; i < g[k].size(0); ++i)
      for (int64_t j = 0; j < g[k].size(1); ++j)
        EXPECT_NEAR(g[k].at({i, j}), ref(i, j), 2e-3 * std::fabs(ref.maxCoeff()) + 1e-5);
  }
  // Biases get no gradient: the bound is over weight matrices only.
  auto gb = grad({bound.forward()}, {mlp.layers()[0]->bias}, GradOptions().set_allow_unused(true));
  EXPECT_EQ(gb[0].to_vector(), std::vector<float>(5, 0.0f));
}

TEST(Lipschitz, OptionsSquareAndProduct) {
  Generator gen(7);
  nn::MLP mlp(nn::MLPOptions({6, 4, 3}), gen);
  nn::LipschitzBound log_b(mlp, nn::LipschitzOptions().init_iterations(300).iterations(0), gen);
  const std::vector<float> s = log_b.sigmas();
  Generator gen2(7);
  nn::LipschitzBound sq(mlp, nn::LipschitzOptions().init_iterations(300).iterations(0).square(true), gen2);
  nn::LipschitzBound prod(mlp, nn::LipschitzOptions().init_iterations(300).iterations(0).log(false), gen2);
  EXPECT_NEAR(log_b.forward().item(), std::log(s[0]) + std::log(s[1]), 1e-5);
  EXPECT_NEAR(sq.forward().item(), 2 * (std::log(s[0]) + std::log(s[1])), 1e-4);
  EXPECT_NEAR(prod.forward().item(), s[0] * s[1], 1e-4 * s[0] * s[1]);
}

TEST(Lipschitz, VectorsPersistAsBuffersAndRunUnderNoGrad) {
  Generator gen(8);
  nn::MLP mlp(nn::MLPOptions({6, 4, 3}), gen);
  nn::LipschitzBound bound(mlp, nn::LipschitzOptions().init_iterations(3).iterations(2), gen);
  std::vector<std::string> names;
  for (auto& [n, b] : bound.named_buffers()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"u0", "v0", "u1", "v1"}));
  EXPECT_TRUE(bound.parameters().empty());
  const std::vector<float> before = bound.state_dict().tensor("u0").to_vector();
  Tensor l = bound.forward();
  EXPECT_NE(bound.state_dict().tensor("u0").to_vector(), before) << "forward() must advance the power iteration";
  for (const Tensor& b : bound.buffers()) EXPECT_FALSE(b.requires_grad());
  // Restoring the buffers reproduces the same value.
  const StateDict saved = bound.state_dict();
  const float v1 = bound.forward().item();
  bound.load_state_dict(saved);
  EXPECT_EQ(bound.forward().item(), v1);
}

TEST(L2Norm, HalfSquaredNormOverAllOrWeightsOnly) {
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).set_requires_grad();
  Tensor b = Tensor::from_vector({5, 6}).set_requires_grad();
  EXPECT_FLOAT_EQ(nn::l2_norm({w, b}).item(), 0.5f * (1 + 4 + 9 + 16 + 25 + 36));
  EXPECT_FLOAT_EQ(nn::l2_norm({w, b}, true).item(), 0.5f * 30);
  auto g = grad({nn::l2_norm({w, b})}, {w, b});
  EXPECT_EQ(g[0].to_vector(), w.to_vector());
  EXPECT_EQ(g[1].to_vector(), b.to_vector());
  EXPECT_THROW(nn::l2_norm({b}, true), std::invalid_argument);
}
