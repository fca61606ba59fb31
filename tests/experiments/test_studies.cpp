// Properties the deep-model studies rely on: two task gradients from one forward equal those of two
// separate forwards, BatchNorm statistics are updated once per multi-task step, and the language
// model is causal.
#include <gtest/gtest.h>

#include <cmath>

#include "core/ops.h"
#include "nn/byte_lm.h"
#include "nn/resnet.h"
#include "optim/gradients.h"

using namespace scalpel;

namespace {
Tensor images(uint64_t seed) {
  Generator g(seed);
  return Tensor::normal({4, 3, 16, 16}, g);
}
}  // namespace

TEST(Multitask, TwoHeadGradientsFromOneForwardEqualTwoSeparateForwards) {
  Generator init(3);
  nn::ResNet18 net(nn::ResNetOptions().heads({10, 10}).width(4), init);
  net.train();
  const Tensor x = images(1);
  const IndexTensor y0({1, 2, 3, 4}), y1({9, 8, 7, 6});
  const StateDict before = net.state_dict();
  optim::GradientCollector collect(net.parameters());
  auto logits = net.forward(x);
  const auto& g = collect.compute({cross_entropy(logits[0], y0), cross_entropy(logits[1], y1)});
  const std::vector<float> one0 = g[0].to_vector(), one1 = g[1].to_vector();

  net.load_state_dict(before);  // same running statistics for the separate forwards
  const auto sep0 = optim::per_loss_gradients({cross_entropy(net.forward(x)[0], y0)}, net.parameters());
  net.load_state_dict(before);
  const auto sep1 = optim::per_loss_gradients({cross_entropy(net.forward(x)[1], y1)}, net.parameters());
  ASSERT_EQ(one0.size(), sep0[0].to_vector().size());
  const std::vector<float> s0 = sep0[0].to_vector(), s1 = sep1[0].to_vector();
  double max0 = 0, max1 = 0, scale = 0;
  for (size_t i = 0; i < s0.size(); ++i) {
    max0 = std::max(max0, static_cast<double>(std::fabs(one0[i] - s0[i])));
    max1 = std::max(max1, static_cast<double>(std::fabs(one1[i] - s1[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(s0[i])));
  }
  EXPECT_LT(max0, 1e-6 * std::max(1.0, scale));
  EXPECT_LT(max1, 1e-6 * std::max(1.0, scale));
  // And the heads really differ (the test would be vacuous otherwise).
  EXPECT_GT(g[0].dot(g[0]), 0.0);
  EXPECT_NE(one0, one1);
}

TEST(Multitask, BatchNormStatisticsAfterAStepMatchASingleHeadForward) {
  Generator i1(5), i2(5);
  nn::ResNet18 two(nn::ResNetOptions().heads({10, 10}).width(4), i1);
  nn::ResNet18 one(nn::ResNetOptions().heads({10, 10}).width(4), i2);
  two.train();
  one.train();
  const Tensor x = images(2);
  const IndexTensor y0({1, 2, 3, 4}), y1({0, 1, 2, 3});
  // A multi-task step's forward (both heads) ...
  auto logits = two.forward(x);
  optim::per_loss_gradients({cross_entropy(logits[0], y0), cross_entropy(logits[1], y1)}, two.parameters());
  // ... updates the running statistics exactly like one forward used for one head.
  one.features(x);
  const StateDict a = two.state_dict(), b = one.state_dict();
  int checked = 0;
  for (const auto& n : a.tensor_names()) {
    if (n.find("running_") == std::string::npos) continue;
    EXPECT_EQ(a.tensor(n).to_vector(), b.tensor(n).to_vector()) << n;
    ++checked;
  }
  EXPECT_EQ(checked, 2 * 20);  // 20 BatchNorm layers in ResNet-18
  // Sanity: a second forward would have changed them.
  one.features(x);
  EXPECT_NE(one.state_dict().tensor("bn1.running_mean").to_vector(), a.tensor("bn1.running_mean").to_vector());
}

TEST(JointLm, ChangingAFutureByteDoesNotChangeEarlierLogits) {
  Generator init(7);
  nn::ByteLM lm(nn::ByteLMOptions().layers(2).heads(2).d_model(16).d_ff(32).max_len(12), init);
  std::vector<int64_t> seq{72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33};
  const Tensor a = lm.forward(IndexTensor(seq, {1, 12}));
  for (int64_t pos : {11, 6, 1}) {
    std::vector<int64_t> changed = seq;
    changed[pos] = (changed[pos] + 77) % 256;
    const Tensor b = lm.forward(IndexTensor(changed, {1, 12}));
    for (int64_t t = 0; t < 12; ++t) {
      const float d = max_abs_diff(a.select(1, t), b.select(1, t));
      if (t < pos)
        EXPECT_EQ(d, 0.0f) << "position " << t << " saw the change at " << pos;
      else
        EXPECT_GT(d, 0.0f) << "position " << t << " should see the change at " << pos;
    }
  }
}
