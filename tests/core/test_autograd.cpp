// Engine semantics: recording rules, accumulation, functional grad, retain_graph, version
// counter, deep chains and determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <thread>

#include "core/grad_vector.h"
#include "core/ops.h"
#include "core/parallel.h"

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

// ---- exact small cases: edge shapes, seeds, several outputs, shared intermediates ---------------

TEST(AutogradEdge, ZeroSizeTensorsFlowThroughForwardAndBackward) {
  // sum of an empty tensor is 0; its gradient is an empty tensor of the input's shape.
  Tensor e = Tensor::zeros({0, 3}).set_requires_grad();
  Tensor s = e.sum();
  EXPECT_FLOAT_EQ(s.item(), 0.0f);
  s.backward();
  EXPECT_EQ(e.grad().shape(), (Shape{0, 3}));
  // Broadcasting against an empty batch: b's gradient sums over zero rows.
  Tensor b = vec({1, 2, 3}).set_requires_grad();
  Tensor y = add(Tensor::zeros({0, 3}), b);
  EXPECT_EQ(y.shape(), (Shape{0, 3}));
  auto gb = grad({y.sum()}, {b});
  EXPECT_EQ(gb[0].to_vector(), (std::vector<float>{0, 0, 0}));
  // Empty contraction: [2, 0] x [0, 3] is a [2, 3] block of zeros; gradients are empty.
  Tensor a0 = Tensor::zeros({2, 0}).set_requires_grad();
  Tensor b0 = Tensor::zeros({0, 3}).set_requires_grad();
  Tensor m = matmul(a0, b0);
  EXPECT_EQ(m.to_vector(), std::vector<float>(6, 0.0f));
  auto gm = grad({m}, {a0, b0}, GradOptions().set_seeds({Tensor::ones({2, 3})}));
  EXPECT_EQ(gm[0].shape(), (Shape{2, 0}));
  EXPECT_EQ(gm[1].shape(), (Shape{0, 3}));
  // Empty rows: [0, 4] x [4, 3]; the weight's gradient is a sum over zero rows, i.e. zeros.
  Tensor x0 = Tensor::zeros({0, 4}).set_requires_grad();
  Tensor w = Tensor::ones({4, 3}).set_requires_grad();
  Tensor m2 = matmul(x0, w);
  EXPECT_EQ(m2.shape(), (Shape{0, 3}));
  auto gw = grad({m2}, {w}, GradOptions().set_seeds({Tensor::zeros({0, 3})}));
  EXPECT_EQ(gw[0].to_vector(), std::vector<float>(12, 0.0f));
  // linear over zero rows: weight and bias gradients are zeros, not uninitialised memory.
  Tensor lw = Tensor::ones({3, 4}).set_requires_grad();
  Tensor lb = Tensor::ones({3}).set_requires_grad();
  Tensor l = linear(Tensor::zeros({0, 4}), lw, lb);
  EXPECT_EQ(l.shape(), (Shape{0, 3}));
  auto gl = grad({l}, {lw, lb}, GradOptions().set_seeds({Tensor::zeros({0, 3})}));
  EXPECT_EQ(gl[0].to_vector(), std::vector<float>(12, 0.0f));
  EXPECT_EQ(gl[1].to_vector(), std::vector<float>(3, 0.0f));
  // concat with an empty piece.
  Tensor p = Tensor::zeros({2, 0}).set_requires_grad();
  Tensor q = Tensor::ones({2, 2}).set_requires_grad();
  Tensor c = concat({p, q}, 1);
  EXPECT_EQ(c.shape(), (Shape{2, 2}));
  auto gc = grad({mul(c, 3.0f).sum()}, {p, q});
  EXPECT_EQ(gc[0].shape(), (Shape{2, 0}));
  EXPECT_EQ(gc[1].to_vector(), std::vector<float>(4, 3.0f));
  // softmax of an empty batch.
  Tensor se = Tensor::zeros({0, 5}).set_requires_grad();
  EXPECT_EQ(grad({softmax(se, 1).sum()}, {se})[0].shape(), (Shape{0, 5}));
}

TEST(AutogradEdge, ScalarAndSizeOneEdgeCases) {
  // A rank-0 leaf differentiated directly.
  Tensor s = Tensor::scalar(3.0f).set_requires_grad();
  s.backward();
  EXPECT_FLOAT_EQ(s.grad().item(), 1.0f);
  // backward() on a leaf with a seed copies the seed into .grad.
  Tensor x = vec({1, 2}).set_requires_grad();
  x.backward(vec({5, 6}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5, 6}));
  // A size-1 non-scalar output needs no seed.
  Tensor y = mul(x, 2.0f).sum(0, true);  // shape [1]
  EXPECT_EQ(y.shape(), (Shape{1}));
  auto g = grad({y}, {x});
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{2, 2}));
  // cross_entropy with every row ignored: the loss is NaN (0/0, as in PyTorch) and the gradient
  // is exactly zero, so such a batch does not poison the parameters.
  Tensor logits = Tensor::ones({2, 3}).set_requires_grad();
  Tensor loss = cross_entropy(logits, IndexTensor({-100, -100}));
  EXPECT_TRUE(std::isnan(loss.item()));
  EXPECT_EQ(grad({loss}, {logits})[0].to_vector(), std::vector<float>(6, 0.0f));
}

TEST(AutogradEdge, GradOfNonScalarOutputsWithSeeds) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor y = mul(x, x);  // dy/dx = 2x
  Tensor seed = Tensor::from_vector({1, 0, -1, 2, 0.5f, 10}, {2, 3});
  auto g = grad({y}, {x}, GradOptions().set_seeds({seed}).set_retain_graph(true));
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{2, 0, -6, 16, 5, 120}));
  // Two outputs, each with its own seed: the gradients add.
  Tensor z = mul(x, 3.0f);
  Tensor seed2 = Tensor::full({2, 3}, 1.0f);
  auto g2 = grad({y, z}, {x}, GradOptions().set_seeds({seed, seed2}));
  EXPECT_EQ(g2[0].to_vector(), (std::vector<float>{5, 3, -3, 19, 8, 123}));
  // A non-contiguous seed works the same.
  Tensor xs = vec({1, 2, 3, 4}).set_requires_grad();
  Tensor ys = mul(xs.reshape({2, 2}), 1.0f);
  Tensor st = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).t();  // [[1, 3], [2, 4]]
  EXPECT_EQ(grad({ys}, {xs}, GradOptions().set_seeds({st}))[0].to_vector(), (std::vector<float>{1, 3, 2, 4}));
}

TEST(AutogradEdge, SeveralOutputsInOneBackward) {
  Tensor x = vec({1, 2}).set_requires_grad();
  Tensor h = square(x);         // shared by both outputs
  Tensor l0 = h.sum();          // d/dx = 2x
  Tensor l1 = mul(h, x).sum();  // x^3: d/dx = 3x^2
  backward({l0, l1});
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2 + 3, 4 + 12}));
  // Seeds weight the outputs.
  Tensor w = vec({1, 2}).set_requires_grad();
  Tensor a = mul(w, 2.0f);
  Tensor b = mul(w, w);
  backward({a, b}, {vec({1, 1}), vec({10, 100})});
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{2 + 10 * 2, 2 + 100 * 4}));
  // An output that is also an ancestor of another output.
  Tensor v = vec({3}).set_requires_grad();
  Tensor u = mul(v, 2.0f);  // du/dv = 2
  Tensor t = square(u);     // dt/dv = 8v = 24
  auto g = grad({u, t}, {v});
  EXPECT_FLOAT_EQ(g[0].item(), 26.0f);
}

TEST(AutogradEdge, IntermediateUsedByTwoConsumers) {
  Tensor x = vec({0.5f, -1.0f}).set_requires_grad();
  Tensor h = mul(x, 3.0f);                  // h = 3x
  Tensor y = add(exp(h), mul(h, h)).sum();  // e^h + h^2
  auto g = grad({y}, {x, h});
  const std::vector<float> xv = x.to_vector();
  for (int i = 0; i < 2; ++i) {
    const float hv = 3.0f * xv[i];
    EXPECT_NEAR(g[1].to_vector()[i], std::exp(hv) + 2 * hv, 1e-5f);
    EXPECT_NEAR(g[0].to_vector()[i], 3.0f * (std::exp(hv) + 2 * hv), 1e-5f);
  }
  // A consumer that passes the gradient through unchanged, twice (add(h, h)): 2 per element, and
  // the upstream gradient buffer is not modified by the summation.
  Tensor k = vec({1, 2, 3}).set_requires_grad();
  Tensor m = mul(k, 1.0f);
  Tensor seed = vec({1, 2, 3});
  auto gk = grad({add(m, m)}, {k}, GradOptions().set_seeds({seed}));
  EXPECT_EQ(gk[0].to_vector(), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(seed.to_vector(), (std::vector<float>{1, 2, 3}));
  // The same input listed twice gets the same gradient twice, as separate tensors.
  auto twice = grad({square(k).sum()}, {k, k});
  EXPECT_EQ(twice[0].to_vector(), twice[1].to_vector());
  EXPECT_FALSE(twice[0].storage().get() == twice[1].storage().get());
}

TEST(AutogradEdge, GradResultsNeverAliasTheSeed) {
  // Ops whose backward passes the incoming gradient straight through (add, reshape, a leaf output).
  const std::vector<std::function<Tensor(const Tensor&)>> fns = {
      [](const Tensor& x) { return add(x, 0.0f); },
      [](const Tensor& x) {
        return x.reshape({3, 2}).reshape({6});
      },
      [](const Tensor& x) { return x.clone(); },
      [](const Tensor& x) { return x; },
  };
  for (size_t k = 0; k < fns.size(); ++k) {
    Tensor x = Tensor::zeros({6}).set_requires_grad();
    Tensor seed = Tensor::arange(6);
    Tensor y = fns[k](x);
    auto g = grad({y}, {x}, GradOptions().set_seeds({seed}).set_retain_graph(true));
    ASSERT_EQ(g[0].to_vector(), seed.to_vector()) << "fn " << k;
    g[0].fill_(-1.0f);                                                         // mutating the result ...
    EXPECT_EQ(seed.to_vector(), Tensor::arange(6).to_vector()) << "fn " << k;  // ... leaves the seed alone
    // backward(): .grad does not alias the seed either, also when a second pass adds into it.
    y.backward(seed, /*retain_graph=*/true);
    y.backward(seed);
    EXPECT_EQ(x.grad().to_vector(), mul(Tensor::arange(6), 2.0f).to_vector()) << "fn " << k;
    EXPECT_EQ(seed.to_vector(), Tensor::arange(6).to_vector()) << "fn " << k;
    NoGradGuard ng;
    seed.fill_(7.0f);  // and changing the seed afterwards does not reach .grad
    EXPECT_EQ(x.grad().to_vector(), mul(Tensor::arange(6), 2.0f).to_vector()) << "fn " << k;
  }
}

TEST(AutogradEdge, FunctionalGradLeavesExistingDotGradUntouched) {
  Tensor x = vec({1, 2}).set_requires_grad();
  mul(x, 5.0f).sum().backward();
  const uint64_t v = x.grad().version();
  auto g = grad({square(x).sum()}, {x});
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{2, 4}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5, 5}));
  EXPECT_EQ(x.grad().version(), v);
}

TEST(AutogradEdge, GradIntoAddsToExistingBufferValues) {
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).set_requires_grad();
  Tensor x = Tensor::ones({3, 2});
  // w reaches the loss through matmul (BLAS beta = 1 path) and through square.
  Tensor loss = add(matmul(x, w).sum(), square(w).sum());
  Tensor buf = Tensor::full({2, 2}, 100.0f);
  grad_into({loss}, {w}, {buf});
  // d/dw = column sums of x (3 per entry) + 2w
  EXPECT_EQ(buf.to_vector(), (std::vector<float>{100 + 3 + 2, 100 + 3 + 4, 100 + 3 + 6, 100 + 3 + 8}));
}

TEST(AutogradEdge, RetainedGraphDifferentiatedThreeTimesGivesIdenticalResults) {
  Generator gen(11);
  Tensor w1 = Tensor::normal({6, 4}, gen).set_requires_grad();
  Tensor b1 = Tensor::normal({6}, gen).set_requires_grad();
  Tensor w2 = Tensor::normal({3, 6}, gen).set_requires_grad();
  Tensor x = Tensor::normal({5, 4}, gen);
  Tensor h = gelu(linear(x, w1, b1));
  Tensor logits = linear(h, w2);
  Tensor loss = add(cross_entropy(logits, IndexTensor({0, 2, 1, 1, 0})), mul(max(softmax(logits, 1)), 0.1f));
  std::vector<std::vector<float>> runs[3];
  for (int r = 0; r < 3; ++r) {
    for (const Tensor& g : grad({loss}, {w1, b1, w2}, GradOptions().set_retain_graph(true))) {
      runs[r].push_back(g.to_vector());
    }
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
  // backward three times over the retained graph: .grad holds exactly g + g + g.
  for (int r = 0; r < 3; ++r) loss.backward(Tensor(), /*retain_graph=*/true);
  const std::vector<Tensor> params{w1, b1, w2};
  for (size_t k = 0; k < params.size(); ++k) {
    std::vector<float> three = runs[0][k];
    for (float& v : three) v = (v + v) + v;
    EXPECT_EQ(params[k].grad().to_vector(), three) << "param " << k;
  }
  // The graph is still usable: a final non-retaining call succeeds, and the one after fails.
  EXPECT_NO_THROW(grad({loss}, {w1}));
  EXPECT_THROW(grad({loss}, {w1}), std::runtime_error);
}

TEST(AutogradEdge, DerivativesAtSingularPointsAreFinite) {
  // pow(x, 0) has derivative 0 everywhere, also at x = 0 (not 0 * x^-1 = NaN).
  Tensor x = vec({0, 2, -3}).set_requires_grad();
  EXPECT_EQ(grad({pow(x, 0.0f).sum()}, {x})[0].to_vector(), (std::vector<float>{0, 0, 0}));
  // norm over a dim: an all-zero slice gets gradient 0, like norm() of an all-zero tensor.
  Tensor a = Tensor::from_vector({0, 0, 3, 4}, {2, 2}).set_requires_grad();
  EXPECT_EQ(grad({norm(a, 1).sum()}, {a})[0].to_vector(), (std::vector<float>{0, 0, 0.6f, 0.8f}));
  EXPECT_EQ(grad({norm(a, 0, true).sum()}, {a})[0].to_vector(), (std::vector<float>{0, 0, 1, 1}));
  Tensor z = Tensor::zeros({3}).set_requires_grad();
  EXPECT_EQ(grad({norm(z)}, {z})[0].to_vector(), (std::vector<float>{0, 0, 0}));
  // relu and abs at exactly 0 use the subgradient 0; clamp passes the gradient at its bounds.
  Tensor k = vec({0, -0.5f, 0.5f}).set_requires_grad();
  EXPECT_EQ(grad({relu(k).sum()}, {k})[0].to_vector(), (std::vector<float>{0, 0, 1}));
  EXPECT_EQ(grad({abs(k).sum()}, {k})[0].to_vector(), (std::vector<float>{0, -1, 1}));
  EXPECT_EQ(grad({clamp(k, -0.5f, 0.5f).sum()}, {k})[0].to_vector(), (std::vector<float>{1, 1, 1}));
}

TEST(AutogradEdge, ReductionsOverNoDimsReturnFreshTensors) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  for (const Tensor& r : {sum(a, {}), mean(a, {}), sum(a, {}, true)}) {
    EXPECT_EQ(r.to_vector(), a.to_vector());
    EXPECT_NE(r.storage().get(), a.storage().get());
  }
  Tensor s = sum(a, {});
  s.fill_(0.0f);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(a.version(), 0u);
}

// The reductions use a fixed chunking and the elementwise kernels compute each element in one
// thread, so their results (and gradients) do not depend on the thread count at all.
TEST(AutogradEdge, ReductionsAndElementwiseAreThreadCountIndependent) {
  auto run = [](int threads) {
    set_num_threads(threads);
    Generator gen(3);
    Tensor x = Tensor::normal({1024, 640}, gen).set_requires_grad();  // large enough to go parallel
    Tensor h = tanh(mul(x, 0.5f));
    Tensor loss = add(add(sum(h), mean(square(h), {0}).sum()),
                      add(logsumexp(h, 1).sum(), cross_entropy(h, IndexTensor(std::vector<int64_t>(1024, 3)))));
    std::vector<float> out{loss.item()};
    const std::vector<float> g = grad({loss}, {x})[0].to_vector();
    out.insert(out.end(), g.begin(), g.end());
    return out;
  };
  const std::vector<float> one = run(1);
  const std::vector<float> two = run(2);
  const std::vector<float> two_again = run(2);
  set_num_threads(0);
  EXPECT_EQ(two, two_again);
  EXPECT_EQ(one.size(), two.size());
  EXPECT_TRUE(one == two) << "loss with 1 thread " << one[0] << ", with 2 threads " << two[0];
}
