// Engine semantics: recording rules, accumulation, functional grad, retain_graph, version
// counter, deep chains and determinism.
#include <gtest/gtest.h>

#include <thread>

#include "core/ops.h"
#include "core/grad_vector.h"

using namespace scalpel;

namespace {
Tensor vec(std::vector<float> v) { return Tensor::from_vector(v); }
}  // namespace

TEST(Autograd, RecordsOnlyWhenSomeInputRequiresGrad) {
  Tensor a = vec({1, 2});
  Tensor b = vec({3, 4});
  Tensor c = add(a, b);
  EXPECT_FALSE(c.requires_grad());
  EXPECT_EQ(c.grad_fn(), nullptr);
  b.set_requires_grad();
  Tensor d = add(a, b);
  EXPECT_TRUE(d.requires_grad());
  ASSERT_NE(d.grad_fn(), nullptr);
  EXPECT_STREQ(d.grad_fn()->name(), "add");
}

TEST(Autograd, NoGradGuardIsThreadLocalAndNests) {
  Tensor a = vec({1, 2}).set_requires_grad();
  {
    NoGradGuard g1;
    EXPECT_FALSE(grad_enabled());
    {
      NoGradGuard g2;
      EXPECT_FALSE(mul(a, 2.0f).requires_grad());
    }
    EXPECT_FALSE(grad_enabled());
    bool other_thread_enabled = false;
    std::thread t([&] { other_thread_enabled = grad_enabled(); });
    t.join();
    EXPECT_TRUE(other_thread_enabled);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(mul(a, 2.0f).requires_grad());
}

TEST(Autograd, InputUsedTwiceAccumulates) {
  Tensor x = vec({3}).set_requires_grad();
  Tensor y = add(mul(x, x), x);  // y = x^2 + x, dy/dx = 2x + 1 = 7
  y.sum().backward();
  EXPECT_FLOAT_EQ(x.grad().item(), 7.0f);
}

TEST(Autograd, BackwardAccumulatesAcrossCalls) {
  Tensor x = vec({1, 2}).set_requires_grad();
  mul(x, 3.0f).sum().backward();
  mul(x, 3.0f).sum().backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{6, 6}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, UnusedInputGivesZeroOrError) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor z = vec({5, 6, 7}).set_requires_grad();
  Tensor y = mul(x, x).sum();
  try {
    grad({y}, {x, z}, GradOptions().set_retain_graph(true));
    FAIL() << "expected an error for an unused input";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("input 1 (shape [3]) is not used"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("allow_unused"), std::string::npos) << e.what();
  }
  auto g = grad({y}, {x, z}, GradOptions().set_allow_unused(true));
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{2, 4}));
  EXPECT_EQ(g[1].to_vector(), (std::vector<float>{0, 0, 0}));
}

TEST(Autograd, FunctionalGradDoesNotTouchDotGrad) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor y = mul(x, x).sum();
  auto g = grad({y}, {x});
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{2, 4}));
}

TEST(Autograd, SeveralLossesOverOneRetainedGraph) {
  Tensor w = vec({1, -2, 3}).set_requires_grad();
  Tensor h = tanh(w);  // shared forward
  Tensor l0 = h.sum();
  Tensor l1 = square(h).sum();
  auto g0 = grad({l0}, {w}, GradOptions().set_retain_graph(true));
  auto g1 = grad({l1}, {w}, GradOptions().set_retain_graph(true));
  const std::vector<float> hv = h.to_vector();
  for (int i = 0; i < 3; ++i) {
    const float dt = 1 - hv[i] * hv[i];
    EXPECT_NEAR(g0[0].to_vector()[i], dt, 1e-6);
    EXPECT_NEAR(g1[0].to_vector()[i], 2 * hv[i] * dt, 1e-6);
  }
}

TEST(Autograd, GraphIsFreedUnlessRetained) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor y = exp(x).sum();
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error on a second backward";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
  Tensor z = exp(x).sum();
  z.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_NO_THROW(z.backward());
}

TEST(Autograd, NonScalarOutputNeedsSeed) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor y = mul(x, 2.0f);
  try {
    y.backward();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("shape [2]; a seed"), std::string::npos) << e.what();
  }
  y.backward(vec({1, 10}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2, 20}));
}

TEST(Autograd, GradOfTensorNotRequiringGradIsAnError) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor c = vec({1, 1});
  Tensor y = mul(x, c).sum();
  try {
    grad({y}, {c});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("does not require grad"), std::string::npos) << e.what();
  }
  Tensor k = mul(c, c).sum();
  EXPECT_THROW(k.backward(), std::invalid_argument);
}

TEST(Autograd, GradWithRespectToIntermediate) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor h = mul(x, 3.0f);
  Tensor y = square(h).sum();
  auto g = grad({y}, {h, x});
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{6, 12}));
  EXPECT_EQ(g[1].to_vector(), (std::vector<float>{18, 36}));
}

TEST(Autograd, InPlaceChangeOfSavedTensorIsDetected) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor c = vec({3, 4});
  Tensor y = mul(x, c).sum();
  c.mul_(2.0f);
  try {
    y.backward();
    FAIL() << "expected a version-counter error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("mul: a tensor saved for backward"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("version 0 -> 1"), std::string::npos) << e.what();
  }
}

TEST(Autograd, InPlaceOnLeafRequiringGradIsRefused) {
  Tensor x = vec({1, 2}).set_requires_grad();
  EXPECT_THROW(x.mul_(2.0f), std::runtime_error);
  NoGradGuard g;
  x.mul_(2.0f);
  EXPECT_EQ(x.to_vector(), (std::vector<float>{2, 4}));
  EXPECT_EQ(x.version(), 1u);
}

TEST(Autograd, LongChainTraversalAndTeardownAreIterative) {
  Tensor x = vec({0.5f}).set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 1e-6f);
  y.backward();
  EXPECT_FLOAT_EQ(x.grad().item(), 1.0f);
  // Teardown of a retained 100k chain happens when y goes out of scope, without recursion.
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = mul(z, 1.0f);
  z = Tensor();
  SUCCEED();
}

TEST(Autograd, BroadcastGradientIsSummedCentrally) {
  Tensor a = Tensor::ones({2, 3}).set_requires_grad();
  Tensor b = vec({1, 2, 3}).set_requires_grad();
  Tensor s = Tensor::scalar(2.0f).set_requires_grad();
  mul(add(a, b), s).sum().backward();
  EXPECT_EQ(b.grad().shape(), (Shape{3}));
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{4, 4, 4}));
  EXPECT_EQ(s.grad().shape(), (Shape{}));
  EXPECT_FLOAT_EQ(s.grad().item(), 18.0f);  // sum(a + b) = 6 + 2*6
}

TEST(Autograd, GradientSumsAreDeterministic) {
  auto run = [] {
    Generator gen(7);
    Tensor w = Tensor::normal({64, 32}, gen).set_requires_grad();
    Tensor x = Tensor::normal({128, 32}, gen);
    Tensor h = tanh(linear(x, w));
    Tensor loss = add(square(h).sum(), mul(h, 0.5f).sum());
    return grad({loss}, {w})[0].to_vector();
  };
  EXPECT_EQ(run(), run());
}

TEST(Autograd, GradIntoAddsIntoGradVectorViews) {
  Tensor w1 = vec({1, 2}).set_requires_grad();
  Tensor w2 = Tensor::ones({2, 2}).set_requires_grad();
  std::vector<Tensor> params{w1, w2};
  Tensor loss = add(matmul(w1.reshape({1, 2}), w2).sum(), square(w1).sum());
  GradVector g = GradVector::zeros_for(params);
  grad_into({loss}, params, g.views(params));
  // d/dw1 = w2 row sums + 2 w1 = (2+2, 2+4); d/dw2[i][j] = w1[i]
  EXPECT_EQ(g.to_vector(), (std::vector<float>{4, 6, 1, 1, 2, 2}));
  EXPECT_FALSE(w1.grad().defined());
}

TEST(GradVector, AlgebraAndScatter) {
  Tensor a = Tensor::zeros({2}).set_requires_grad();
  Tensor b = Tensor::zeros({1, 2}).set_requires_grad();
  GradVector v = GradVector::from_vector({1, 2, 3, 4});
  GradVector u = GradVector::from_vector({1, 0, 1, 0});
  EXPECT_DOUBLE_EQ(v.dot(u), 4.0);
  EXPECT_DOUBLE_EQ(v.squared_norm(), 30.0);
  v.axpy(2.0f, u).scale(0.5f);
  EXPECT_EQ(v.to_vector(), (std::vector<float>{1.5f, 1, 2.5f, 2}));
  v.scatter_to_grads({a, b});
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{1.5f, 1}));
  EXPECT_EQ(b.grad().shape(), (Shape{1, 2}));
  GradVector back = GradVector::from_grads({a, b});
  EXPECT_EQ(back.to_vector(), v.to_vector());
  EXPECT_THROW(v.dot(GradVector(3)), std::invalid_argument);
}
