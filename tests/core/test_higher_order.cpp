// Higher-order autodiff: create_graph sweeps, Hessian-vector products (core/higher_order.h), against
// analytic Hessians on quadratics and finite differences of the gradient on a small network.
// (Every op's second-order gradcheck runs inside tests/core/test_gradcheck_*.cpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "core/higher_order.h"
#include "core/ops.h"

using namespace scalpel;

namespace {
Tensor randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  NoGradGuard ng;
  return mul(Tensor::normal(s, g), scale);
}
Tensor leaf(const Tensor& t) {
  Tensor c = t.detach().clone();
  c.set_requires_grad(true);
  return c;
}
// A x for a row-major n x n matrix.
std::vector<double> matvec(const std::vector<float>& A, const std::vector<float>& x) {
  const size_t n = x.size();
  std::vector<double> y(n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) y[i] += static_cast<double>(A[i * n + j]) * x[j];
  return y;
}
}  // namespace

TEST(HigherOrder, HvpOfQuadraticIsItsMatrix) {
  // L(x) = 0.5 x^T A x + b^T x with A symmetric: H = A exactly, whatever x is.
  const int64_t n = 7;
  const Tensor m = randn({n, n}, 1);
  const Tensor A = add(m, m.transpose(0, 1)).contiguous();
  const Tensor b = randn({n, 1}, 2);
  const Tensor x = leaf(randn({n, 1}, 3));
  const Tensor loss = add(mul(sum(mul(x, matmul(A, x))), 0.5f), sum(mul(b, x)));
  const Tensor v = randn({n, 1}, 4);
  const std::vector<Tensor> hv = hvp(loss, {x}, {v});
  ASSERT_EQ(hv.size(), 1u);
  ASSERT_EQ(hv[0].shape(), x.shape());
  const std::vector<double> expect = matvec(A.to_vector(), v.to_vector());
  const std::vector<float> got = hv[0].to_vector();
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], expect[i], 1e-5 * (1.0 + std::fabs(expect[i]))) << i;
}

TEST(HigherOrder, HvpOfCoupledQuadraticHasItsBlocks) {
  // L(x, y) = x^T C y + sum(x^2) + 3 sum(y^2): H = [[2I, C], [C^T, 6I]].
  const Tensor C = randn({3, 4}, 5);
  const Tensor x = leaf(randn({3}, 6)), y = leaf(randn({4}, 7));
  const Tensor loss =
      add(add(sum(mul(x.unsqueeze(1), matmul(C, y.unsqueeze(1)))), sum(square(x))), mul(sum(square(y)), 3.0f));
  const Tensor vx = randn({3}, 8), vy = randn({4}, 9);
  const std::vector<Tensor> hv = hvp(loss, {x, y}, {vx, vy});
  const std::vector<float> c = C.to_vector(), ax = vx.to_vector(), ay = vy.to_vector();
  const std::vector<float> hx = hv[0].to_vector(), hy = hv[1].to_vector();
  for (int i = 0; i < 3; ++i) {
    double e = 2.0 * ax[i];
    for (int j = 0; j < 4; ++j) e += c[i * 4 + j] * ay[j];
    EXPECT_NEAR(hx[i], e, 1e-5) << i;
  }
  for (int j = 0; j < 4; ++j) {
    double e = 6.0 * ay[j];
    for (int i = 0; i < 3; ++i) e += c[i * 4 + j] * ax[i];
    EXPECT_NEAR(hy[j], e, 1e-5) << j;
  }
}

TEST(HigherOrder, HvpMatchesFiniteDifferencesOfTheGradientOnAnMlp) {
  // A two-layer network with tanh and gelu, layer norm and cross-entropy: H v against the central
  // difference (g(θ + h v) - g(θ - h v)) / 2h of first-order gradients.
  const Tensor x = randn({6, 5}, 10);
  const IndexTensor t({0, 2, 1, 2, 0, 1});
  std::vector<Tensor> p = {leaf(randn({8, 5}, 11, 0.5f)), leaf(randn({8}, 12, 0.1f)), leaf(randn({3, 8}, 13, 0.5f)),
                           leaf(randn({8}, 14, 0.1f))};
  auto loss_of = [&](const std::vector<Tensor>& q) {
    const Tensor h = layer_norm(tanh(linear(x, q[0], q[1])), q[3], Tensor());
    return cross_entropy(linear(gelu(h), q[2]), t);
  };
  std::vector<Tensor> v;
  for (size_t k = 0; k < p.size(); ++k) v.push_back(randn(p[k].shape(), 20 + k));
  const std::vector<Tensor> hv = hvp(loss_of(p), p, v);
  const double h = 1e-2;
  auto grad_at = [&](double step) {
    std::vector<Tensor> q;
    for (size_t k = 0; k < p.size(); ++k) q.push_back(leaf(add(p[k].detach(), mul(v[k], static_cast<float>(step)))));
    return grad({loss_of(q)}, q);
  };
  const std::vector<Tensor> gp = grad_at(h), gm = grad_at(-h), gp2 = grad_at(2 * h), gm2 = grad_at(-2 * h);
  double worst = 0.0, scale = 0.0;
  for (size_t k = 0; k < p.size(); ++k) {
    const std::vector<float> a = hv[k].to_vector(), p1 = gp[k].to_vector(), m1 = gm[k].to_vector(),
                             p2 = gp2[k].to_vector(), m2 = gm2[k].to_vector();
    for (size_t i = 0; i < a.size(); ++i) {
      const double numeric = (8.0 * (p1[i] - m1[i]) - (p2[i] - m2[i])) / (12.0 * h);
      worst = std::max(worst, std::fabs(a[i] - numeric));
      scale = std::max(scale, std::fabs(numeric));
    }
  }
  EXPECT_GT(scale, 1e-2);  // the curvature is not trivially zero
  EXPECT_LT(worst, 2e-3 * (1.0 + scale)) << "largest |Hv - numeric| " << worst << " (largest entry " << scale << ")";
}

TEST(HigherOrder, GradientGraphServesManyProductsAndMixedDerivatives) {
  // L(θ, λ) = sum(λ ⊙ θ^3): H_θθ v = 6 λ θ v, d²L/dλ dθ · v = 3 θ^2 v.
  const Tensor theta = leaf(randn({5}, 30)), lambda = leaf(randn({5}, 31));
  const Tensor loss = sum(mul(lambda, pow(theta, 3.0f)));
  GradientGraph gg(loss, {theta});
  const Tensor v1 = randn({5}, 32), v2 = randn({5}, 33);
  const std::vector<float> th = theta.to_vector(), la = lambda.to_vector(), a = v1.to_vector(), b = v2.to_vector();
  for (int pass = 0; pass < 2; ++pass) {  // the recorded gradient stays usable
    const std::vector<float> h1 = gg.hvp({v1})[0].to_vector(), h2 = gg.hvp({v2})[0].to_vector();
    const std::vector<float> mixed = gg.vjp({v1}, {lambda})[0].to_vector();
    for (int i = 0; i < 5; ++i) {
      EXPECT_NEAR(h1[i], 6.0 * la[i] * th[i] * a[i], 1e-4) << i;
      EXPECT_NEAR(h2[i], 6.0 * la[i] * th[i] * b[i], 1e-4) << i;
      EXPECT_NEAR(mixed[i], 3.0 * th[i] * th[i] * a[i], 1e-4) << i;
    }
  }
  EXPECT_EQ(gg.gradient()[0].shape(), theta.shape());
}

TEST(HigherOrder, ThirdDerivativeThroughRepeatedCreateGraph) {
  const Tensor x = leaf(Tensor::from_vector({0.7f, -1.3f}, {2}));
  const Tensor y = sum(pow(x, 4.0f));
  const Tensor g1 = grad({y}, {x}, GradOptions().set_create_graph(true))[0];        // 4x^3
  const Tensor g2 = grad({sum(g1)}, {x}, GradOptions().set_create_graph(true))[0];  // 12x^2
  const Tensor g3 = grad({sum(g2)}, {x})[0];                                        // 24x
  const std::vector<float> v1 = g1.to_vector(), v2 = g2.to_vector(), v3 = g3.to_vector();
  const float xs[2] = {0.7f, -1.3f};
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(v1[i], 4.0 * std::pow(xs[i], 3), 1e-4);
    EXPECT_NEAR(v2[i], 12.0 * xs[i] * xs[i], 1e-4);
    EXPECT_NEAR(v3[i], 24.0 * xs[i], 1e-4);
  }
}

TEST(HigherOrder, ConstantGradientHasZeroHessian) {
  // A loss linear in w: its gradient carries no history, so every second derivative is zero.
  const Tensor w = leaf(randn({4}, 40));
  const Tensor loss = sum(mul(w, randn({4}, 41)));
  const std::vector<Tensor> hv = hvp(loss, {w}, {randn({4}, 42)});
  for (float e : hv[0].to_vector()) EXPECT_EQ(e, 0.0f);
}

TEST(HigherOrder, HvpIsBitwiseReproducible) {
  const Tensor w = leaf(randn({16, 16}, 50, 0.3f));
  const Tensor x = randn({8, 16}, 51);
  const Tensor v = randn({16, 16}, 52);
  auto once = [&] { return hvp(sum(tanh(matmul(x, w))), {w}, {v})[0].to_vector(); };
  EXPECT_EQ(once(), once());
}

TEST(HigherOrder, LongRecordedChainsAreFreedWithoutRecursion) {
  // 50k recorded ops, differentiated with create_graph: the recorded backward holds references
  // into the forward graph; tearing both down must not recurse per node.
  Tensor x = leaf(Tensor::from_vector({0.5f}, {1}));
  Tensor y = x;
  for (int i = 0; i < 50000; ++i) y = tanh(y);
  const float first_order = grad({sum(y)}, {x}, GradOptions().set_retain_graph(true))[0].item();
  Tensor g = grad({sum(y)}, {x}, GradOptions().set_create_graph(true))[0];
  EXPECT_NEAR(g.item(), first_order, 1e-4 * std::fabs(first_order));  // fused vs composite rounding
  EXPECT_TRUE(g.requires_grad());                                     // it depends on x through every tanh
  y = Tensor();
  g = Tensor();  // both graphs go here; a recursive teardown would overflow the stack
}

TEST(HigherOrder, CreateGraphMisuseIsExplained) {
  const Tensor w = leaf(randn({3}, 60));
  const Tensor loss = sum(square(w));
  Tensor buf = Tensor::zeros({3});
  try {
    grad_into({loss}, {w}, {buf}, GradOptions().set_create_graph(true));
    FAIL() << "grad_into accepted create_graph";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("create_graph"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GradientGraph(mul(w, 2.0f), {w}), std::invalid_argument);  // not a scalar
  GradientGraph gg(sum(pow(w, 3.0f)), {w});
  try {
    gg.hvp({Tensor::zeros({4})});
    FAIL() << "a vector of the wrong shape was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected [3]"), std::string::npos) << e.what();
  }
}
