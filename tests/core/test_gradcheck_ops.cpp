// Finite-difference gradchecks for every core op, on contiguous and non-contiguous inputs, with
// broadcasting where the op broadcasts. Tolerances: the defaults of tests/gradcheck.h
// (atol 1e-3, rtol 1e-2, eps 1e-3, 4-point stencil) unless a test says otherwise.
#include <gtest/gtest.h>

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
// Values bounded away from zero (for kinks and log/sqrt/div).
Tensor away_from_zero(const Shape& s, uint64_t seed, float lo = 0.3f) {
  Generator g(seed);
  Tensor t = Tensor::uniform(s, g, lo, 1.5f);
  Tensor sign = Tensor::uniform(s, g, -1.0f, 1.0f);
  NoGradGuard ng;
  std::vector<float> v = t.to_vector(), sg = sign.to_vector();
  for (size_t i = 0; i < v.size(); ++i) v[i] = sg[i] < 0 ? -v[i] : v[i];
  return Tensor::from_vector(v, s);
}
Tensor positive(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::uniform(s, g, 0.5f, 2.0f);
}
}  // namespace

// ---- elementwise binary, with broadcasting ----

TEST(Gradcheck, Add) {
  EXPECT_TRUE(gradcheck("add", [](const auto& x) { return add(x[0], x[1]); }, {randn({3, 4}, 1), randn({3, 4}, 2)}));
  EXPECT_TRUE(gradcheck("add broadcast", [](const auto& x) { return add(x[0], x[1]); },
                        {randn({2, 3, 4}, 1), randn({3, 1}, 2)}));
  EXPECT_TRUE(
      gradcheck("add scalar-tensor", [](const auto& x) { return add(x[0], x[1]); }, {randn({3, 4}, 1), randn({}, 2)}));
  EXPECT_TRUE(gradcheck("add float", [](const auto& x) { return add(x[0], 2.5f); }, {randn({3, 4}, 1)}));
}
TEST(Gradcheck, Sub) {
  EXPECT_TRUE(
      gradcheck("sub broadcast", [](const auto& x) { return sub(x[0], x[1]); }, {randn({4, 1}, 3), randn({1, 5}, 4)}));
  EXPECT_TRUE(gradcheck("rsub", [](const auto& x) { return rsub(1.5f, x[0]); }, {randn({3, 4}, 3)}));
}
TEST(Gradcheck, Mul) {
  EXPECT_TRUE(gradcheck("mul", [](const auto& x) { return mul(x[0], x[1]); }, {randn({3, 4}, 5), randn({3, 4}, 6)}));
  EXPECT_TRUE(
      gradcheck("mul broadcast", [](const auto& x) { return mul(x[0], x[1]); }, {randn({2, 3, 4}, 5), randn({4}, 6)}));
  EXPECT_TRUE(gradcheck("mul same input", [](const auto& x) { return mul(x[0], x[0]); }, {randn({3, 4}, 5)}));
  EXPECT_TRUE(gradcheck("mul float", [](const auto& x) { return mul(x[0], -3.0f); }, {randn({3, 4}, 5)}));
}
TEST(Gradcheck, Div) {
  EXPECT_TRUE(gradcheck("div", [](const auto& x) { return div(x[0], x[1]); },
                        {randn({3, 4}, 7), away_from_zero({3, 4}, 8, 0.5f)}));
  EXPECT_TRUE(gradcheck("div broadcast", [](const auto& x) { return div(x[0], x[1]); },
                        {randn({3, 4}, 7), away_from_zero({3, 1}, 8, 0.5f)}));
}
TEST(Gradcheck, Maximum) {
  EXPECT_TRUE(gradcheck("maximum", [](const auto& x) { return maximum(x[0], x[1]); },
                        {randn({3, 4}, 9), add(randn({3, 4}, 10), 0.05f)}));
}
TEST(Gradcheck, Where) {
  Tensor mask = Tensor::from_vector({1, 0, 0, 1, 1, 0}, {2, 3});
  EXPECT_TRUE(gradcheck("where", [mask](const auto& x) { return where(mask, x[0], x[1]); },
                        {randn({2, 3}, 11), randn({1, 3}, 12)}));
}

// ---- elementwise unary ----

TEST(Gradcheck, Unary) {
  EXPECT_TRUE(gradcheck("neg", [](const auto& x) { return neg(x[0]); }, {randn({3, 4}, 20)}));
  EXPECT_TRUE(gradcheck("pow 3", [](const auto& x) { return pow(x[0], 3.0f); }, {randn({3, 4}, 21)}));
  EXPECT_TRUE(gradcheck("pow -0.5", [](const auto& x) { return pow(x[0], -0.5f); }, {positive({3, 4}, 21)}));
  EXPECT_TRUE(gradcheck("pow 2", [](const auto& x) { return pow(x[0], 2.0f); }, {randn({3, 4}, 21)}));
  EXPECT_TRUE(gradcheck("exp", [](const auto& x) { return exp(x[0]); }, {randn({3, 4}, 22)}));
  EXPECT_TRUE(gradcheck("log", [](const auto& x) { return log(x[0]); }, {positive({3, 4}, 23)}));
  EXPECT_TRUE(gradcheck("sqrt", [](const auto& x) { return sqrt(x[0]); }, {positive({3, 4}, 24)}));
  EXPECT_TRUE(gradcheck("abs", [](const auto& x) { return abs(x[0]); }, {away_from_zero({3, 4}, 25)}));
  EXPECT_TRUE(gradcheck("tanh", [](const auto& x) { return tanh(x[0]); }, {randn({3, 4}, 26)}));
  EXPECT_TRUE(gradcheck("sigmoid", [](const auto& x) { return sigmoid(x[0]); }, {randn({3, 4}, 27, 3.0f)}));
  EXPECT_TRUE(gradcheck("relu", [](const auto& x) { return relu(x[0]); }, {away_from_zero({3, 4}, 28)}));
  EXPECT_TRUE(gradcheck("gelu erf", [](const auto& x) { return gelu(x[0]); }, {randn({3, 4}, 29, 2.0f)}));
  EXPECT_TRUE(
      gradcheck("gelu tanh", [](const auto& x) { return gelu(x[0], GeluApprox::Tanh); }, {randn({3, 4}, 30, 2.0f)}));
  EXPECT_TRUE(
      gradcheck("clamp", [](const auto& x) { return clamp(x[0], -0.5f, 0.5f); }, {away_from_zero({4, 5}, 31, 0.6f)}));
  EXPECT_TRUE(
      gradcheck("clamp inside", [](const auto& x) { return clamp(x[0], -2.0f, 2.0f); }, {randn({4, 5}, 31, 0.5f)}));
  EXPECT_TRUE(gradcheck("square", [](const auto& x) { return square(x[0]); }, {randn({3, 4}, 32)}));
  // a + b stays at least 0.1 away from the kink: |a| >= 0.3 and |b| <= 0.2 by construction.
  const Tensor a = away_from_zero({3, 4}, 33), b = clamp(randn({1, 4}, 34, 0.1f), -0.2f, 0.2f);
  EXPECT_TRUE(gradcheck("add_relu broadcast", [](const auto& x) { return add_relu(x[0], x[1]); }, {a, b}));
}

// ---- reductions ----

TEST(Gradcheck, Reductions) {
  EXPECT_TRUE(gradcheck("sum", [](const auto& x) { return sum(x[0]); }, {randn({3, 4}, 40)}));
  EXPECT_TRUE(gradcheck("sum dim", [](const auto& x) { return sum(x[0], {1}); }, {randn({2, 3, 4}, 41)}));
  EXPECT_TRUE(gradcheck("sum dims keepdim",
                        [](const auto& x) {
                          return sum(x[0], {0, 2}, true);
                        },
                        {randn({2, 3, 4}, 42)}));
  EXPECT_TRUE(gradcheck("mean", [](const auto& x) { return mean(x[0]); }, {randn({3, 4}, 43)}));
  EXPECT_TRUE(gradcheck("mean dim", [](const auto& x) { return mean(x[0], {-1}, true); }, {randn({2, 3, 4}, 44)}));
  EXPECT_TRUE(gradcheck("max dim", [](const auto& x) { return max(x[0], 1); }, {randn({3, 5, 2}, 45)}));
  EXPECT_TRUE(gradcheck("max dim keepdim", [](const auto& x) { return max(x[0], 0, true); }, {randn({4, 3}, 46)}));
  EXPECT_TRUE(gradcheck("max all", [](const auto& x) { return max(x[0]); }, {randn({4, 3}, 47)}));
  EXPECT_TRUE(gradcheck("logsumexp", [](const auto& x) { return logsumexp(x[0], 1); }, {randn({3, 5}, 48)}));
  EXPECT_TRUE(gradcheck("logsumexp dim0 keepdim", [](const auto& x) { return logsumexp(x[0], 0, true); },
                        {randn({3, 5, 2}, 49)}));
  EXPECT_TRUE(gradcheck("sum_to", [](const auto& x) { return sum_to(x[0], {3, 1}); }, {randn({2, 3, 4}, 50)}));
}

// ---- matmul ----

TEST(Gradcheck, Matmul) {
  EXPECT_TRUE(
      gradcheck("matmul 2d", [](const auto& x) { return matmul(x[0], x[1]); }, {randn({3, 4}, 60), randn({4, 5}, 61)}));
  EXPECT_TRUE(gradcheck("matmul batched", [](const auto& x) { return matmul(x[0], x[1]); },
                        {randn({2, 3, 4}, 62), randn({2, 4, 5}, 63)}));
  EXPECT_TRUE(gradcheck("matmul batch x 2d", [](const auto& x) { return matmul(x[0], x[1]); },
                        {randn({2, 3, 4}, 64), randn({4, 5}, 65)}));
  EXPECT_TRUE(gradcheck("matmul 2d x batch", [](const auto& x) { return matmul(x[0], x[1]); },
                        {randn({3, 4}, 66), randn({2, 4, 5}, 67)}));
  EXPECT_TRUE(gradcheck("matmul batch broadcast", [](const auto& x) { return matmul(x[0], x[1]); },
                        {randn({2, 1, 3, 4}, 68), randn({3, 4, 2}, 69)}));
  EXPECT_TRUE(gradcheck("matmul transposed view", [](const auto& x) { return matmul(x[0].t(), x[1]); },
                        {randn({4, 3}, 70), randn({4, 5}, 71)}));
  EXPECT_TRUE(gradcheck("matmul same input", [](const auto& x) { return matmul(x[0], x[0]); }, {randn({4, 4}, 72)}));
}

TEST(Gradcheck, Linear) {
  EXPECT_TRUE(gradcheck("linear", [](const auto& x) { return linear(x[0], x[1], x[2]); },
                        {randn({5, 4}, 73), randn({3, 4}, 74), randn({3}, 75)}));
  EXPECT_TRUE(gradcheck("linear 3d no bias", [](const auto& x) { return linear(x[0], x[1]); },
                        {randn({2, 5, 4}, 76), randn({3, 4}, 77)}));
}

// ---- shape ops ----

TEST(Gradcheck, Views) {
  EXPECT_TRUE(gradcheck("reshape",
                        [](const auto& x) {
                          return mul(x[0].reshape({4, 3}), x[1]);
                        },
                        {randn({3, 4}, 80), randn({4, 3}, 81)}));
  EXPECT_TRUE(
      gradcheck("transpose", [](const auto& x) { return mul(x[0].transpose(0, 2), 2.0f); }, {randn({2, 3, 4}, 82)}));
  EXPECT_TRUE(gradcheck("permute",
                        [](const auto& x) {
                          return mul(x[0].permute({2, 0, 1}), x[1]);
                        },
                        {randn({2, 3, 4}, 83), randn({4, 2, 3}, 84)}));
  EXPECT_TRUE(gradcheck("narrow", [](const auto& x) { return square(x[0].narrow(1, 1, 2)); }, {randn({3, 4}, 85)}));
  EXPECT_TRUE(gradcheck("select", [](const auto& x) { return square(x[0].select(0, 1)); }, {randn({3, 4}, 86)}));
  EXPECT_TRUE(gradcheck("unsqueeze/squeeze", [](const auto& x) { return square(x[0].unsqueeze(1)).squeeze(1); },
                        {randn({3, 4}, 87)}));
  EXPECT_TRUE(gradcheck("expand",
                        [](const auto& x) {
                          return mul(x[0].expand({3, 4}), x[1]);
                        },
                        {randn({3, 1}, 88), randn({3, 4}, 89)}));
  EXPECT_TRUE(
      gradcheck("contiguous", [](const auto& x) { return square(x[0].t().contiguous()); }, {randn({3, 4}, 90)}));
  EXPECT_TRUE(gradcheck("clone", [](const auto& x) { return square(x[0].clone()); }, {randn({3, 4}, 91)}));
  EXPECT_TRUE(gradcheck("flatten", [](const auto& x) { return square(x[0].flatten(1)); }, {randn({2, 3, 4}, 92)}));
}

TEST(Gradcheck, ConcatStack) {
  EXPECT_TRUE(gradcheck("concat",
                        [](const auto& x) {
                          return square(concat({x[0], x[1]}, 1));
                        },
                        {randn({2, 3}, 100), randn({2, 2}, 101)}));
  EXPECT_TRUE(gradcheck("concat same twice",
                        [](const auto& x) {
                          return square(concat({x[0], x[0]}, 0));
                        },
                        {randn({2, 3}, 102)}));
  EXPECT_TRUE(gradcheck("stack",
                        [](const auto& x) {
                          return square(stack({x[0], x[1]}, 1));
                        },
                        {randn({2, 3}, 103), randn({2, 3}, 104)}));
}

TEST(Gradcheck, IndexOps) {
  IndexTensor idx({2, 0, 2});
  EXPECT_TRUE(gradcheck("index_select", [idx](const auto& x) { return square(index_select(x[0], 1, idx)); },
                        {randn({2, 3, 2}, 110)}));
  IndexTensor gidx({0, 2, 1, 1, 0, 0}, {2, 3});
  EXPECT_TRUE(
      gradcheck("gather", [gidx](const auto& x) { return square(gather(x[0], 1, gidx)); }, {randn({2, 4}, 111)}));
  IndexTensor ids({1, 3, 1, 0}, {2, 2});
  EXPECT_TRUE(
      gradcheck("embedding", [ids](const auto& x) { return square(embedding(x[0], ids)); }, {randn({4, 3}, 112)}));
  EXPECT_TRUE(gradcheck("pad2d", [](const auto& x) { return mul(pad2d(x[0], 1, 2), 3.0f); }, {randn({2, 3, 3}, 113)}));
}
TEST(Gradcheck, IndexAddScatterAdd) {
  // Repeated indices (0 twice, 2 twice) must add up in both directions.
  IndexTensor idx({2, 0, 2, 0});
  EXPECT_TRUE(gradcheck("index_add", [idx](const auto& x) { return square(index_add(x[0], 1, idx, x[1])); },
                        {randn({2, 3, 2}, 114), randn({2, 4, 2}, 115)}));
  IndexTensor sidx({0, 2, 2, 1, 0, 0}, {2, 3});
  EXPECT_TRUE(gradcheck("scatter_add", [sidx](const auto& x) { return square(scatter_add(x[0], 1, sidx, x[1])); },
                        {randn({2, 4}, 116), randn({2, 3}, 117)}));
  // Values: index_add is the transpose of index_select, scatter_add that of gather.
  const Tensor base = Tensor::zeros({2, 3});
  const Tensor src = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  EXPECT_EQ(index_add(base, 1, IndexTensor({2, 0, 2, 0}), src).to_vector(), (std::vector<float>{6, 0, 4, 14, 0, 12}));
  const Tensor ssrc = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(scatter_add(base, 1, IndexTensor({0, 2, 2, 1, 0, 0}, {2, 3}), ssrc).to_vector(),
            (std::vector<float>{1, 0, 5, 11, 4, 0}));
  EXPECT_THROW(index_add(base, 1, IndexTensor({3}), Tensor::zeros({2, 1})), std::invalid_argument);
  EXPECT_THROW(index_add(base, 1, IndexTensor({0}), Tensor::zeros({2, 2})), std::invalid_argument);
  EXPECT_THROW(scatter_add(base, 1, IndexTensor({0, 1}, {1, 2}), Tensor::zeros({2, 2})), std::invalid_argument);
}

// ---- softmax family and losses ----

TEST(Gradcheck, SoftmaxLosses) {
  EXPECT_TRUE(gradcheck("softmax", [](const auto& x) { return softmax(x[0], 1); }, {randn({3, 5}, 120)}));
  EXPECT_TRUE(gradcheck("softmax dim0", [](const auto& x) { return softmax(x[0], 0); }, {randn({3, 5, 2}, 121)}));
  EXPECT_TRUE(gradcheck("log_softmax", [](const auto& x) { return log_softmax(x[0], -1); }, {randn({3, 5}, 122)}));
  EXPECT_TRUE(
      gradcheck("log_softmax dim1", [](const auto& x) { return log_softmax(x[0], 1); }, {randn({2, 4, 3}, 123)}));
  IndexTensor t({1, 0, 4, 2});
  EXPECT_TRUE(gradcheck("cross_entropy", [t](const auto& x) { return cross_entropy(x[0], t); }, {randn({4, 5}, 124)}));
  IndexTensor ti({1, -100, 4, 2});
  EXPECT_TRUE(gradcheck("cross_entropy ignore_index", [ti](const auto& x) { return cross_entropy(x[0], ti); },
                        {randn({4, 5}, 125)}));
  EXPECT_TRUE(
      gradcheck("cross_entropy smoothing",
                [t](const auto& x) { return cross_entropy(x[0], t, CrossEntropyOptions().set_label_smoothing(0.1f)); },
                {randn({4, 5}, 126)}));
  EXPECT_TRUE(gradcheck("mse_loss", [](const auto& x) { return mse_loss(x[0], x[1]); },
                        {randn({3, 4}, 127), randn({3, 4}, 128)}));
  EXPECT_TRUE(gradcheck("dot", [](const auto& x) { return dot(x[0], x[1]); }, {randn({6}, 129), randn({6}, 130)}));
  EXPECT_TRUE(gradcheck("norm", [](const auto& x) { return norm(x[0]); }, {randn({3, 4}, 131)}));
  EXPECT_TRUE(gradcheck("norm dim", [](const auto& x) { return norm(x[0], 1); }, {randn({3, 4}, 132)}));
}

// ---- variants not covered above: other dims, broadcast shapes, views and index layouts ----

TEST(Gradcheck, MoreVariants) {
  EXPECT_TRUE(gradcheck("view",
                        [](const auto& x) {
                          return mul(x[0].contiguous().view({2, 6}), x[1]);
                        },
                        {randn({3, 4}, 140), randn({2, 6}, 141)}));
  EXPECT_TRUE(gradcheck("view -1", [](const auto& x) { return square(x[0].contiguous().view({-1})); },
                        {randn({2, 3, 2}, 142)}));
  EXPECT_TRUE(gradcheck("reshape copy path", [](const auto& x) { return mul(x[0].t().reshape({-1}), 2.0f); },
                        {randn({3, 4}, 143)}));
  EXPECT_TRUE(gradcheck("maximum broadcast", [](const auto& x) { return maximum(x[0], x[1]); },
                        {randn({3, 4}, 144), add(randn({4}, 145), 0.05f)}));
  Tensor mask = Tensor::from_vector({1, 0, 1}, {3, 1});
  EXPECT_TRUE(gradcheck("where broadcast mask", [mask](const auto& x) { return where(mask, x[0], x[1]); },
                        {randn({3, 4}, 146), randn({4}, 147)}));
  EXPECT_TRUE(gradcheck("div both broadcast", [](const auto& x) { return div(x[0], x[1]); },
                        {randn({3, 1}, 148), away_from_zero({1, 4}, 149, 0.5f)}));
  EXPECT_TRUE(gradcheck("operator/ float", [](const auto& x) { return x[0] / 4.0f - 1.0f; }, {randn({3, 4}, 150)}));
  EXPECT_TRUE(gradcheck("max dim -1", [](const auto& x) { return max(x[0], -1); }, {randn({2, 3, 5}, 151)}));
  EXPECT_TRUE(gradcheck("mean dims 0,1", [](const auto& x) { return mean(x[0], {0, 1}); }, {randn({2, 3, 4}, 152)}));
  EXPECT_TRUE(gradcheck("logsumexp mid", [](const auto& x) { return logsumexp(x[0], 1); }, {randn({2, 4, 3}, 153)}));
  EXPECT_TRUE(gradcheck("softmax mid", [](const auto& x) { return softmax(x[0], 1); }, {randn({2, 4, 3}, 154)}));
  EXPECT_TRUE(gradcheck("norm dim 0 keepdim", [](const auto& x) { return norm(x[0], 0, true); }, {randn({3, 4}, 155)}));
  EXPECT_TRUE(gradcheck("sum_to leading", [](const auto& x) { return sum_to(x[0], {4}); }, {randn({2, 3, 4}, 156)}));
  EXPECT_TRUE(gradcheck("transpose mid", [](const auto& x) { return mul(x[0].transpose(1, 2), x[1]); },
                        {randn({2, 3, 4}, 157), randn({2, 4, 3}, 158)}));
  EXPECT_TRUE(gradcheck("narrow dim0 select neg",
                        [](const auto& x) { return square(x[0].narrow(0, 1, 2).select(1, -1)); },
                        {randn({4, 3}, 159)}));
  EXPECT_TRUE(gradcheck("slice", [](const auto& x) { return square(x[0].slice(1, -3, -1)); }, {randn({3, 5}, 160)}));
  EXPECT_TRUE(gradcheck("expand leading",
                        [](const auto& x) {
                          return mul(x[0].expand({2, 3}), x[1]);
                        },
                        {randn({3}, 161), randn({2, 3}, 162)}));
  EXPECT_TRUE(gradcheck("squeeze mid", [](const auto& x) { return square(x[0].squeeze(1)); }, {randn({3, 1, 4}, 163)}));
  EXPECT_TRUE(gradcheck("linear 1d input", [](const auto& x) { return linear(x[0], x[1], x[2]); },
                        {randn({4}, 164), randn({3, 4}, 165), randn({3}, 166)}));
}

TEST(Gradcheck, MoreIndexAndLossVariants) {
  IndexTensor g0({2, 0, 1, 1, 0, 2}, {2, 3});
  EXPECT_TRUE(
      gradcheck("gather dim0", [g0](const auto& x) { return square(gather(x[0], 0, g0)); }, {randn({3, 3}, 170)}));
  IndexTensor i0({1, 1, 0});
  EXPECT_TRUE(gradcheck("index_select dim0", [i0](const auto& x) { return square(index_select(x[0], 0, i0)); },
                        {randn({2, 4}, 171)}));
  EXPECT_TRUE(gradcheck("index_select last", [i0](const auto& x) { return square(index_select(x[0], -1, i0)); },
                        {randn({3, 2}, 172)}));
  IndexTensor ids({2, 0, 2});
  EXPECT_TRUE(gradcheck("embedding 1d ids", [ids](const auto& x) { return square(embedding(x[0], ids)); },
                        {randn({3, 4}, 173)}));
  EXPECT_TRUE(gradcheck("concat three dim0",
                        [](const auto& x) {
                          return square(concat({x[0], x[1], x[2]}, 0));
                        },
                        {randn({1, 3}, 174), randn({2, 3}, 175), randn({3, 3}, 176)}));
  EXPECT_TRUE(gradcheck("stack dim0",
                        [](const auto& x) {
                          return square(stack({x[0], x[1]}, 0));
                        },
                        {randn({2, 3}, 177), randn({2, 3}, 178)}));
  EXPECT_TRUE(gradcheck("stack last",
                        [](const auto& x) {
                          return square(stack({x[0], x[1]}, -1));
                        },
                        {randn({2, 3}, 179), randn({2, 3}, 180)}));
  EXPECT_TRUE(
      gradcheck("pad2d 4d", [](const auto& x) { return square(pad2d(x[0], 2, 1)); }, {randn({2, 1, 2, 3}, 181)}));
  IndexTensor t({3, -100, 0, 2, 4});
  EXPECT_TRUE(
      gradcheck("cross_entropy smoothing+ignore",
                [t](const auto& x) { return cross_entropy(x[0], t, CrossEntropyOptions().set_label_smoothing(0.2f)); },
                {randn({5, 5}, 182)}));
  IndexTensor tc({2, 0, 2, 1});
  EXPECT_TRUE(
      gradcheck("cross_entropy custom ignore",
                [tc](const auto& x) { return cross_entropy(x[0], tc, CrossEntropyOptions().set_ignore_index(2)); },
                {randn({4, 3}, 183)}));
}
