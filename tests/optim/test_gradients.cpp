// Per-loss gradients over one shared forward graph.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "optim/gradients.h"

using namespace scalpel;
using namespace scalpel::optim;

namespace {
struct Net {
  Tensor w1, b1, w2, unused;
  std::vector<Tensor> params() const { return {w1, b1, w2, unused}; }
};
Net make_net(Generator& gen) {
  return {Tensor::normal({4, 3}, gen).set_requires_grad(), Tensor::normal({4}, gen).set_requires_grad(),
          Tensor::normal({2, 4}, gen).set_requires_grad(), Tensor::normal({5}, gen).set_requires_grad()};
}
}  // namespace

TEST(PerLossGradients, MatchSeparateGradCallsAndGiveZerosWhereALossDoesNotReach) {
  Generator gen(1);
  Net net = make_net(gen);
  Tensor x = Tensor::normal({6, 3}, gen);
  auto forward = [&] {
    Tensor h = tanh(linear(x, net.w1, net.b1));
    Tensor out = linear(h, net.w2);
    return std::vector<Tensor>{square(out).mean(), h.sum(), square(net.w2).sum() * 0.5f};
  };
  GradientCollector collect(net.params());
  EXPECT_EQ(collect.size(), 12 + 4 + 8 + 5);
  const std::vector<GradVector>& g = collect.compute(forward());
  ASSERT_EQ(g.size(), 3u);
  // References: one fresh forward and one grad() per loss.
  for (size_t k = 0; k < 3; ++k) {
    std::vector<Tensor> losses = forward();
    std::vector<Tensor> ref = grad({losses[k]}, net.params(), GradOptions().set_allow_unused(true));
    std::vector<float> flat;
    for (const Tensor& r : ref) {
      const auto v = r.to_vector();
      flat.insert(flat.end(), v.begin(), v.end());
    }
    EXPECT_EQ(g[k].to_vector(), flat) << "loss " << k;
  }
  // Loss 1 does not reach w2; loss 2 reaches only w2; nothing reaches `unused`.
  const std::vector<float> g1 = g[1].to_vector(), g2 = g[2].to_vector();
  for (int i = 16; i < 24; ++i) EXPECT_EQ(g1[i], 0.0f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(g2[i], 0.0f);
  for (int i = 24; i < 29; ++i) EXPECT_EQ(g[0].to_vector()[i], 0.0f);
  // ½‖w2‖² has gradient w2.
  const std::vector<float> w2 = net.w2.to_vector();
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(g2[16 + i], w2[i]);
  // No .grad was touched.
  for (const Tensor& p : net.params()) EXPECT_FALSE(p.grad().defined());
}

TEST(PerLossGradients, BuffersAreReusedAcrossStepsAndOverwritten) {
  Generator gen(2);
  Net net = make_net(gen);
  GradientCollector collect(net.params());
  const float* before = nullptr;
  for (int step = 0; step < 3; ++step) {
    Tensor l0 = square(net.w1).sum();
    Tensor l1 = net.b1.sum();
    const auto& g = collect.compute({l0, l1});
    if (step == 0) before = g[0].data();
    EXPECT_EQ(g[0].data(), before);
    // Overwritten (not accumulated): d/dw1 of Σ w1² = 2 w1.
    EXPECT_FLOAT_EQ(g[0][0], 2 * net.w1.to_vector()[0]);
    EXPECT_EQ(g[1][12], 1.0f);
  }
}

TEST(PerLossGradients, DataIndependentLossAndConstantLoss) {
  Generator gen(3);
  Net net = make_net(gen);
  Tensor half_norm =
      (square(net.w1).sum() + square(net.b1).sum() + square(net.w2).sum() + square(net.unused).sum()) * 0.5f;
  Tensor constant = Tensor::scalar(3.0f);
  const auto g = per_loss_gradients({half_norm, constant}, net.params());
  std::vector<float> theta;
  for (const Tensor& p : net.params()) {
    const auto v = p.to_vector();
    theta.insert(theta.end(), v.begin(), v.end());
  }
  EXPECT_EQ(g[0].to_vector(), theta);  // ∇ ½‖θ‖² = θ
  EXPECT_EQ(g[1].to_vector(), std::vector<float>(theta.size(), 0.0f));
}

TEST(PerLossGradients, ErrorsNameTheLossOrParameter) {
  Generator gen(4);
  Net net = make_net(gen);
  GradientCollector collect(net.params());
  try {
    collect.compute({linear(Tensor::ones({2, 3}), net.w1)});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("loss 0 must be a scalar, got shape [2, 4]"), std::string::npos) << e.what();
  }
  try {
    GradientCollector bad({net.w1, Tensor::zeros({3})});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 1 (shape [3]) does not require grad"), std::string::npos)
        << e.what();
  }
}
