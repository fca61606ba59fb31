// Finite-difference gradchecks for the nn ops in core (conv2d, pools, batch_norm, layer_norm,
// scaled_dot_product_attention), on contiguous and non-contiguous inputs (tests/gradcheck.h).
// Tolerances: the gradcheck defaults (atol 1e-3, rtol 1e-2, 4-point stencil) everywhere. Steps:
// eps 1e-2 for ops that are linear in each input (conv2d, avg pools: the 4-point stencil is exact
// on them and a larger step means less float rounding), 1e-3 for max_pool2d (inputs are spaced
// 0.05 apart so no step crosses a kink) and for the nonlinear ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/ops.h"
#include "gradcheck.h"

using namespace scalpel;
using scalpel::testing::gradcheck;
using scalpel::testing::GradcheckOptions;

namespace {
Tensor randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return mul(Tensor::normal(s, g), scale);
}
// Distinct values 0.05 apart in a random order: every pooling window has a unique maximum with a
// margin much larger than the finite-difference step.
Tensor distinct(const Shape& s, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.05f * static_cast<float>(i) - 1.0f;
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(g.randint(static_cast<int64_t>(i)))]);
  return Tensor::from_vector(v, s);
}
Tensor positive(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::uniform(s, g, 0.5f, 2.0f);
}
const GradcheckOptions kLinear = GradcheckOptions().set_eps(1e-2);
}  // namespace

// ---- conv2d ----

TEST(GradcheckNN, Conv2dStride1Pad0) {
  EXPECT_TRUE(gradcheck(
      "conv2d s1 p0", [](const auto& x) { return conv2d(x[0], x[1], x[2]); },
      {randn({2, 3, 5, 5}, 1), randn({4, 3, 3, 3}, 2), randn({4}, 3)}, kLinear));
}
TEST(GradcheckNN, Conv2dStride1Pad1) {
  EXPECT_TRUE(gradcheck(
      "conv2d s1 p1", [](const auto& x) { return conv2d(x[0], x[1], x[2], Conv2dParams().padding(1)); },
      {randn({2, 3, 5, 4}, 4), randn({2, 3, 3, 3}, 5), randn({2}, 6)}, kLinear));
}
TEST(GradcheckNN, Conv2dStride2Pad1) {
  EXPECT_TRUE(gradcheck(
      "conv2d s2 p1", [](const auto& x) { return conv2d(x[0], x[1], x[2], Conv2dParams().stride(2).padding(1)); },
      {randn({2, 2, 7, 6}, 7), randn({3, 2, 3, 3}, 8), randn({3}, 9)}, kLinear));
}
TEST(GradcheckNN, Conv2dNonSquareKernelPerAxisStridePadNoBias) {
  EXPECT_TRUE(gradcheck(
      "conv2d 2x3 kernel, stride (2,1), pad (0,1), no bias",
      [](const auto& x) { return conv2d(x[0], x[1], Tensor(), Conv2dParams().stride(2, 1).padding(0, 1)); },
      {randn({2, 3, 6, 5}, 10), randn({2, 3, 2, 3}, 11)}, kLinear));
}
TEST(GradcheckNN, Conv2dManyImagesUsesGroups) {
  // 3x3 outputs: the batch of 5 is one group of 5 images (the gathered-group path).
  EXPECT_TRUE(gradcheck(
      "conv2d grouped batch",
      [](const auto& x) { return conv2d(x[0], x[1], x[2], Conv2dParams().stride(2).padding(1)); },
      {randn({5, 2, 5, 5}, 12), randn({3, 2, 3, 3}, 13), randn({3}, 14)}, kLinear));
}

TEST(GradcheckNN, Conv2dDirectPath) {
  const Conv2dParams p = Conv2dParams().padding(1).algo(ConvAlgo::kDirect);
  EXPECT_TRUE(gradcheck(
      "conv2d direct s1 p1", [p](const auto& x) { return conv2d(x[0], x[1], x[2], p); },
      {randn({2, 3, 5, 4}, 15), randn({5, 3, 3, 3}, 16), randn({5}, 17)}, kLinear));
  const Conv2dParams q = Conv2dParams().padding(0, 1).algo(ConvAlgo::kDirect);
  EXPECT_TRUE(gradcheck(
      "conv2d direct 2x3 kernel, pad (0, 1), no bias", [q](const auto& x) { return conv2d(x[0], x[1], Tensor(), q); },
      {randn({3, 2, 4, 5}, 18), randn({3, 2, 2, 3}, 19)}, kLinear));
  const Conv2dParams r = Conv2dParams().stride(2).padding(1).algo(ConvAlgo::kDirect);
  EXPECT_TRUE(gradcheck(
      "conv2d direct s2 p1", [r](const auto& x) { return conv2d(x[0], x[1], x[2], r); },
      {randn({2, 2, 7, 6}, 20), randn({3, 2, 3, 3}, 21), randn({3}, 22)}, kLinear));
}

TEST(GradcheckNN, Conv2dEveryPathToSecondOrder) {
  // The same layer on each path (first and second order; the create_graph branch is shared).
  for (ConvAlgo algo : {ConvAlgo::kIm2col, ConvAlgo::kIm2colRows, ConvAlgo::kDirect}) {
    const Conv2dParams p = Conv2dParams().padding(1).algo(algo);
    EXPECT_TRUE(gradcheck(
        "conv2d path " + std::to_string(static_cast<int>(algo)),
        [p](const auto& x) { return conv2d(x[0], x[1], x[2], p); },
        {randn({2, 3, 5, 4}, 15), randn({4, 3, 3, 3}, 16, 0.5f), randn({4}, 17)}, kLinear));
  }
}

// ---- pooling ----

TEST(GradcheckNN, MaxPool2d) {
  EXPECT_TRUE(gradcheck("max_pool2d k2 s2", [](const auto& x) { return max_pool2d(x[0], 2, 2); },
                        {distinct({2, 2, 4, 6}, 20)}));
  EXPECT_TRUE(gradcheck("max_pool2d k3 s2 p1 (overlapping, padded)",
                        [](const auto& x) { return max_pool2d(x[0], 3, 2, 1); }, {distinct({2, 2, 7, 5}, 21)}));
  EXPECT_TRUE(gradcheck("max_pool2d k3 s1 p1", [](const auto& x) { return max_pool2d(x[0], 3, 1, 1); },
                        {distinct({1, 2, 4, 4}, 22)}));
}
TEST(GradcheckNN, AvgPool2d) {
  EXPECT_TRUE(gradcheck(
      "avg_pool2d k2 s2", [](const auto& x) { return avg_pool2d(x[0], 2, 2); }, {randn({2, 2, 4, 6}, 23)}, kLinear));
  EXPECT_TRUE(gradcheck(
      "avg_pool2d k3 s2 p1", [](const auto& x) { return avg_pool2d(x[0], 3, 2, 1); }, {randn({2, 2, 7, 5}, 24)},
      kLinear));
}
TEST(GradcheckNN, GlobalAvgPool2d) {
  EXPECT_TRUE(gradcheck(
      "global_avg_pool2d", [](const auto& x) { return global_avg_pool2d(x[0]); }, {randn({2, 3, 4, 5}, 25)}, kLinear));
}

// ---- batch_norm ----

TEST(GradcheckNN, BatchNormTrain4dAffine) {
  // Fresh running buffers per call: the training update must not feed back into later calls.
  EXPECT_TRUE(
      gradcheck("batch_norm train 4-D affine",
                [](const auto& x) { return batch_norm(x[0], x[1], x[2], Tensor::zeros({3}), Tensor::ones({3}), true); },
                {randn({3, 3, 3, 2}, 30), positive({3}, 31), randn({3}, 32)}));
}
TEST(GradcheckNN, BatchNormTrain2dAffine) {
  EXPECT_TRUE(gradcheck("batch_norm train 2-D affine",
                        [](const auto& x) { return batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true); },
                        {randn({6, 4}, 33), positive({4}, 34), randn({4}, 35)}));
}
TEST(GradcheckNN, BatchNormTrainNoAffine) {
  EXPECT_TRUE(gradcheck("batch_norm train 4-D no affine",
                        [](const auto& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                        {randn({2, 3, 2, 3}, 36)}));
  EXPECT_TRUE(gradcheck("batch_norm train 2-D no affine",
                        [](const auto& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                        {randn({5, 3}, 37)}));
}
TEST(GradcheckNN, BatchNormReluTrainAndEval) {
  // Inputs chosen so that no pre-ReLU output lies within 0.05 of the kink (checked here), far more
  // than a finite-difference step moves it.
  const Tensor x = randn({3, 3, 2, 2}, 160), w = positive({3}, 161), b = randn({3}, 162, 0.3f);
  const Tensor pre = batch_norm(x, w, b, Tensor(), Tensor(), true);
  for (float v : pre.to_vector()) ASSERT_GT(std::fabs(v), 0.05f) << "inputs too close to the ReLU kink";
  EXPECT_TRUE(gradcheck("batch_norm_relu train",
                        [](const auto& in) { return batch_norm_relu(in[0], in[1], in[2], Tensor(), Tensor(), true); },
                        {x, w, b}));
  const Tensor rm = randn({3}, 163, 0.2f), rv = positive({3}, 164);
  const Tensor pre_eval = batch_norm(x, w, b, rm, rv, false);
  for (float v : pre_eval.to_vector()) ASSERT_GT(std::fabs(v), 0.05f) << "inputs too close to the ReLU kink";
  EXPECT_TRUE(gradcheck("batch_norm_relu eval",
                        [rm, rv](const auto& in) { return batch_norm_relu(in[0], in[1], in[2], rm, rv, false); },
                        {x, w, b}));
}
TEST(GradcheckNN, BatchNormEval) {
  const Tensor rm = randn({3}, 40), rv = positive({3}, 41);
  EXPECT_TRUE(gradcheck("batch_norm eval 4-D affine",
                        [rm, rv](const auto& x) { return batch_norm(x[0], x[1], x[2], rm, rv, false); },
                        {randn({2, 3, 2, 2}, 42), positive({3}, 43), randn({3}, 44)}));
  EXPECT_TRUE(gradcheck("batch_norm eval 2-D no affine",
                        [rm, rv](const auto& x) { return batch_norm(x[0], Tensor(), Tensor(), rm, rv, false); },
                        {randn({4, 3}, 45)}));
}

// ---- layer_norm ----

TEST(GradcheckNN, LayerNorm) {
  EXPECT_TRUE(gradcheck("layer_norm affine", [](const auto& x) { return layer_norm(x[0], x[1], x[2]); },
                        {randn({2, 3, 5}, 50), positive({5}, 51), randn({5}, 52)}));
  EXPECT_TRUE(gradcheck("layer_norm no affine", [](const auto& x) { return layer_norm(x[0], Tensor(), Tensor()); },
                        {randn({4, 6}, 53)}));
  EXPECT_TRUE(gradcheck("layer_norm weight only", [](const auto& x) { return layer_norm(x[0], x[1], Tensor()); },
                        {randn({3, 4}, 54), positive({4}, 55)}));
}

// ---- attention ----

TEST(GradcheckNN, AttentionNonCausal) {
  EXPECT_TRUE(gradcheck("sdpa non-causal",
                        [](const auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], false); },
                        {randn({2, 2, 4, 3}, 60), randn({2, 2, 4, 3}, 61), randn({2, 2, 4, 5}, 62)}));
}
TEST(GradcheckNN, AttentionCausal) {
  EXPECT_TRUE(gradcheck("sdpa causal",
                        [](const auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); },
                        {randn({2, 2, 5, 3}, 63), randn({2, 2, 5, 3}, 64), randn({2, 2, 5, 2}, 65)}));
}
TEST(GradcheckNN, AttentionCrossLengths) {
  EXPECT_TRUE(gradcheck("sdpa Tq != Tk",
                        [](const auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], false); },
                        {randn({1, 2, 3, 4}, 66), randn({1, 2, 6, 4}, 67), randn({1, 2, 6, 2}, 68)}));
}
TEST(GradcheckNN, AttentionSelfSameTensor) {
  // q = k = v = x: the three gradients add into one input.
  EXPECT_TRUE(gradcheck("sdpa self (q = k = v)",
                        [](const auto& x) { return scaled_dot_product_attention(x[0], x[0], x[0], true); },
                        {randn({1, 2, 4, 3}, 69)}));
}
TEST(GradcheckNN, AttentionKeyPadding) {
  // Cross-attention over a padded encoder output: batch 0 sees 4 of 6 keys, batch 1 all 6; and
  // the same with the causal mask (self-attention over padded decoder inputs).
  for (bool causal : {false, true}) {
    EXPECT_TRUE(gradcheck(causal ? "sdpa key padding, causal" : "sdpa key padding",
                          [=](const auto& x) {
                            return scaled_dot_product_attention(x[0], x[1], x[2], causal, {4, 6});
                          },
                          {randn({2, 2, 6, 3}, 70), randn({2, 2, 6, 3}, 71), randn({2, 2, 6, 2}, 72)}));
  }
}
