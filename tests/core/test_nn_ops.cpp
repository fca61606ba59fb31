// conv2d, pools, batch_norm, layer_norm and scaled_dot_product_attention: golden values from
// PyTorch 1.13, independent references (a composite attention built from matmul/softmax/where),
// exact semantics (ties, padding, running statistics) and error messages. conv2d's reference loop,
// its two algorithms and its errors are in test_conv.cpp.
//
// Golden fixture: tests/golden/nn_ops.json, written by tests/golden/gen_torch_nn_ops.py. Every case
// is checked on the fixture's contiguous inputs and on non-contiguous copies. Tolerances are
// |actual - expected| <= atol + rtol * |expected| with the values stated next to each check; they
// are float32 summation-order differences (observed errors are 10x or more below them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/ops.h"
#include "golden.h"
#include "gradcheck.h"
#include "test_util.h"

using namespace scalpel;
using scalpel::testing::bit_equal;
using scalpel::testing::error_of;
using scalpel::testing::GoldenFile;
using scalpel::testing::randn;
using scalpel::testing::tensors_close;

namespace {

constexpr const char* kFixture = "nn_ops.json";

const GoldenFile& fixture() {
  static const GoldenFile f(kFixture);
  return f;
}

std::vector<std::string> fixture_cases() {
  std::ifstream in(std::string(SCALPEL_GOLDEN_DIR) + "/" + kFixture);
  nlohmann::json j;
  in >> j;
  std::vector<std::string> names;
  for (const auto& kv : j.at("cases").items()) names.push_back(kv.key());
  return names;
}

std::string meta_op(const std::string& name) { return fixture().meta(name).at("op").get<std::string>(); }

std::vector<std::string> meta_inputs(const std::string& name) {
  return fixture().meta(name).at("inputs").get<std::vector<std::string>>();
}

using NamedFn = std::function<Tensor(const std::map<std::string, Tensor>&)>;

Tensor opt(const std::map<std::string, Tensor>& in, const std::string& k) {
  auto it = in.find(k);
  return it == in.end() ? Tensor() : it->second;
}

// Builds leaves from the case's inputs (fixture tensor `source[i]` for input i, default the input's
// own name), runs fn, and compares fn's output with `out_key` and every input gradient of
// <out, cotangent_key> with grad<suffix>_<input>.
::testing::AssertionResult check_against_fixture(const std::string& name, const NamedFn& fn, bool noncontiguous,
                                                 double atol, double rtol, const std::string& suffix = "",
                                                 const std::map<std::string, std::string>& source = {}) {
  const GoldenFile& f = fixture();
  const std::string variant = noncontiguous ? " (non-contiguous)" : " (contiguous)";
  const std::vector<std::string> names = meta_inputs(name);
  std::map<std::string, Tensor> in;
  std::vector<Tensor> leaves;
  for (const std::string& n : names) {
    auto it = source.find(n);
    Tensor t = f.tensor(name, it == source.end() ? n : it->second);
    if (noncontiguous) t = scalpel::testing::noncontiguous_copy(t);
    t.set_requires_grad();
    in[n] = t;
    leaves.push_back(t);
  }
  const Tensor out = fn(in);
  auto res = tensors_close(out, f.tensor(name, "out" + suffix), atol, rtol, name + " out" + suffix + variant);
  if (!res) return res;
  const std::vector<Tensor> grads =
      grad({out}, leaves, GradOptions().set_seeds({f.tensor(name, "cotangent" + suffix)}));
  for (size_t k = 0; k < names.size(); ++k) {
    res = tensors_close(grads[k], f.tensor(name, "grad" + suffix + "_" + names[k]), atol, rtol,
                        name + " grad" + suffix + " of " + names[k] + variant);
    if (!res) return res;
  }
  return ::testing::AssertionSuccess();
}

// The Scalpel call for each fixture op except batch_norm (which has its own two-phase test).
NamedFn op_for_case(const std::string& name) {
  const nlohmann::json& m = fixture().meta(name);
  const std::string op = m.at("op").get<std::string>();
  if (op == "conv2d") {
    const auto st = m.at("stride").get<std::vector<int64_t>>(), pd = m.at("padding").get<std::vector<int64_t>>();
    const Conv2dParams p = Conv2dParams().stride(st[0], st[1]).padding(pd[0], pd[1]);
    return [p](const auto& in) { return conv2d(in.at("x"), in.at("weight"), opt(in, "bias"), p); };
  }
  if (op == "max_pool2d" || op == "avg_pool2d") {
    const int64_t k = m.at("kernel").get<int64_t>(), s = m.at("stride").get<int64_t>(),
                  p = m.at("padding").get<int64_t>();
    if (op == "max_pool2d") return [=](const auto& in) { return max_pool2d(in.at("x"), k, s, p); };
    return [=](const auto& in) { return avg_pool2d(in.at("x"), k, s, p); };
  }
  if (op == "global_avg_pool2d") return [](const auto& in) { return global_avg_pool2d(in.at("x")); };
  if (op == "layer_norm") {
    const float eps = m.at("eps").get<float>();
    return [eps](const auto& in) { return layer_norm(in.at("x"), opt(in, "weight"), opt(in, "bias"), eps); };
  }
  if (op == "scaled_dot_product_attention") {
    const bool causal = m.at("causal").get<bool>();
    return
        [causal](const auto& in) { return scaled_dot_product_attention(in.at("q"), in.at("k"), in.at("v"), causal); };
  }
  return nullptr;
}

// Runs every fixture case of op `op` (both variants); returns the number of cases.
int run_golden(const std::string& op, double atol, double rtol) {
  int n = 0;
  for (const std::string& name : fixture_cases()) {
    if (meta_op(name) != op) continue;
    const NamedFn fn = op_for_case(name);
    EXPECT_TRUE(fn != nullptr) << name;
    if (!fn) continue;
    EXPECT_TRUE(check_against_fixture(name, fn, false, atol, rtol));
    EXPECT_TRUE(check_against_fixture(name, fn, true, atol, rtol));
    ++n;
  }
  return n;
}

}  // namespace

// ---- golden values from PyTorch ----------------------------------------------------------------

TEST(NNOpsGolden, FixtureCasesAreAllTested) {
  const std::set<std::string> known{"conv2d",
                                    "max_pool2d",
                                    "avg_pool2d",
                                    "global_avg_pool2d",
                                    "batch_norm",
                                    "layer_norm",
                                    "scaled_dot_product_attention"};
  std::map<std::string, int> per_op;
  for (const std::string& name : fixture_cases()) {
    const std::string op = meta_op(name);
    EXPECT_TRUE(known.count(op)) << "case " << name << " has op '" << op << "' that no test runs";
    ++per_op[op];
  }
  // What the brief asks the fixture to cover.
  EXPECT_GE(per_op["conv2d"], 3);
  EXPECT_GE(per_op["max_pool2d"], 2);
  EXPECT_GE(per_op["avg_pool2d"], 2);
  EXPECT_GE(per_op["batch_norm"], 3);
  EXPECT_GE(per_op["layer_norm"], 2);
  EXPECT_GE(per_op["scaled_dot_product_attention"], 2);
  EXPECT_TRUE(fixture().has("attention_causal") && fixture().has("attention_non_causal"));
  EXPECT_TRUE(fixture().has("conv2d_s1_p1") && fixture().has("conv2d_s2_p1"));
}

// Tolerance atol 2e-5, rtol 1e-5: sums of up to 27 products (forward) / 50 products (weight grads).
TEST(NNOpsGolden, Conv2d) { EXPECT_EQ(run_golden("conv2d", 2e-5, 1e-5), 4); }
// max is a selection: exact. avg: a handful of float adds, atol 1e-6.
TEST(NNOpsGolden, MaxPool2dExact) { EXPECT_EQ(run_golden("max_pool2d", 0.0, 0.0), 2); }
TEST(NNOpsGolden, AvgPool2d) { EXPECT_EQ(run_golden("avg_pool2d", 1e-6, 1e-6), 2); }
TEST(NNOpsGolden, GlobalAvgPool2d) { EXPECT_EQ(run_golden("global_avg_pool2d", 1e-6, 1e-6), 1); }
// Normalization: atol 2e-5, rtol 1e-5.
TEST(NNOpsGolden, LayerNorm) { EXPECT_EQ(run_golden("layer_norm", 2e-5, 1e-5), 2); }
// Attention: atol 1e-5, rtol 1e-5.
TEST(NNOpsGolden, Attention) { EXPECT_EQ(run_golden("scaled_dot_product_attention", 1e-5, 1e-5), 3); }

// One training step (output, gradients, updated running statistics), then an eval pass on a second
// input with the statistics this implementation updated. Outputs and gradients: atol 2e-5, rtol
// 1e-5. Running statistics: the same formula as PyTorch (momentum, unbiased variance) computed in
// double, so they agree to float rounding: atol 1e-7, rtol 1e-6.
TEST(NNOpsGolden, BatchNormTrainStepRunningStatsAndEval) {
  int cases = 0;
  for (const std::string& name : fixture_cases()) {
    if (meta_op(name) != "batch_norm") continue;
    ++cases;
    const nlohmann::json& m = fixture().meta(name);
    const float momentum = m.at("momentum").get<float>(), eps = m.at("eps").get<float>();
    for (bool nc : {false, true}) {
      Tensor rm = fixture().tensor(name, "running_mean"), rv = fixture().tensor(name, "running_var");
      const uint64_t v0 = rm.version();
      auto train = [&](const std::map<std::string, Tensor>& in) {
        return batch_norm(in.at("x"), opt(in, "weight"), opt(in, "bias"), rm, rv, true, momentum, eps);
      };
      EXPECT_TRUE(check_against_fixture(name, train, nc, 2e-5, 1e-5));
      EXPECT_GT(rm.version(), v0) << name << ": the running mean update must bump its version";
      EXPECT_TRUE(tensors_close(rm, fixture().tensor(name, "running_mean_after"), 1e-7, 1e-6, name + " running_mean"));
      EXPECT_TRUE(tensors_close(rv, fixture().tensor(name, "running_var_after"), 1e-7, 1e-6, name + " running_var"));
      EXPECT_FALSE(rm.requires_grad());
      // Eval with the statistics updated above (rm, rv), on x_eval.
      const uint64_t v1 = rm.version();
      auto eval = [&](const std::map<std::string, Tensor>& in) {
        return batch_norm(in.at("x"), opt(in, "weight"), opt(in, "bias"), rm, rv, false, momentum, eps);
      };
      EXPECT_TRUE(check_against_fixture(name, eval, nc, 2e-5, 1e-5, "_eval", {{"x", "x_eval"}}));
      EXPECT_EQ(rm.version(), v1) << name << ": eval must not touch the running statistics";
    }
  }
  EXPECT_EQ(cases, 3);
}

// ---- pooling semantics ---------------------------------------------------------------------------

TEST(NNOps, MaxPoolTiesSendTheGradientToTheFirstMaximum) {
  Tensor x = Tensor::ones({1, 1, 4, 4}).set_requires_grad();
  const Tensor out = max_pool2d(x, 2, 2);
  const Tensor g = grad({sum(out)}, {x})[0];
  const std::vector<float> expect{1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
  EXPECT_EQ(g.to_vector(), expect);
  // Padded windows: the first in-bounds element of each window (padding never wins).
  Tensor y = Tensor::full({1, 1, 3, 3}, -5.0f).set_requires_grad();
  const Tensor out2 = max_pool2d(y, 3, 2, 1);  // windows start at (-1,-1), (-1,1), (1,-1), (1,1)
  EXPECT_EQ(out2.to_vector(), std::vector<float>(4, -5.0f));
  const Tensor g2 = grad({sum(out2)}, {y})[0];
  EXPECT_EQ(g2.to_vector(), (std::vector<float>{1, 1, 0, 1, 1, 0, 0, 0, 0}));
}

TEST(NNOps, MaxPoolPropagatesNaN) {
  Tensor x = Tensor::from_vector({1, std::numeric_limits<float>::quiet_NaN(), 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
  const std::vector<float> out = max_pool2d(x, 2, 2).to_vector();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], 8.0f);
}

TEST(NNOps, AvgPoolCountsPaddingInTheDivisor) {
  const Tensor x = Tensor::ones({1, 1, 3, 3});
  const std::vector<float> out = avg_pool2d(x, 3, 1, 1).to_vector();
  const std::vector<float> expect{4.f / 9, 6.f / 9, 4.f / 9, 6.f / 9, 1.f, 6.f / 9, 4.f / 9, 6.f / 9, 4.f / 9};
  ASSERT_EQ(out.size(), expect.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_FLOAT_EQ(out[i], expect[i]) << i;
}

TEST(NNOps, GlobalAvgPoolEqualsMeanOverSpatialDims) {
  const Tensor x = randn({3, 4, 5, 6}, 300);
  EXPECT_TRUE(tensors_close(global_avg_pool2d(x), mean(x, {2, 3}), 1e-6, 1e-6, "global_avg_pool2d"));
}

TEST(NNOps, PoolErrors) {
  const Tensor x = Tensor::zeros({1, 2, 6, 6});
  EXPECT_NE(error_of([&] { max_pool2d(x, 0, 1); }).find("max_pool2d: kernel size must be positive, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { avg_pool2d(x, 2, 0); }).find("avg_pool2d: stride must be positive, got 0"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { max_pool2d(x, 3, 1, 2); }).find("max_pool2d: padding must be in [0, kernel/2] = [0, 1], got 2"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              max_pool2d(Tensor::zeros({2, 6, 6}), 2, 2);
            }).find("max_pool2d: input must be 4-D [N, C, H, W], got [2, 6, 6]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { avg_pool2d(x, 7, 1); }).find("avg_pool2d: kernel 7 is larger than the padded input 6x6"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              global_avg_pool2d(Tensor::zeros({2, 3}));
            }).find("global_avg_pool2d: input must be 4-D"),
            std::string::npos);
}

// ---- batch_norm / layer_norm semantics -----------------------------------------------------------

TEST(NNOps, BatchNormEvalIsAPerChannelAffineMap) {
  const Tensor x = randn({2, 3, 2, 2}, 400), w = randn({3}, 401), b = randn({3}, 402);
  const Tensor rm = randn({3}, 403);
  Generator gen(404);
  const Tensor rv = Tensor::uniform({3}, gen, 0.5f, 2.0f);
  const float eps = 1e-3f;
  const Tensor out = batch_norm(x, w, b, rm, rv, false, 0.1f, eps);
  const std::vector<float> xv = x.to_vector(), ov = out.to_vector(), wv = w.to_vector(), bv = b.to_vector(),
                           mv = rm.to_vector(), vv = rv.to_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / 4) % 3;
    const double expect = (xv[i] - mv[c]) / std::sqrt(static_cast<double>(vv[c]) + eps) * wv[c] + bv[c];
    EXPECT_NEAR(ov[i], expect, 1e-5) << i;
  }
}

TEST(NNOps, BatchNormRunningStatsFollowPyTorchFormula) {
  // Channel 0 holds {1, 3, 5, 7} over N=2 x 2 positions: mean 4, biased var 5, unbiased var 20/3.
  const Tensor x = Tensor::from_vector({1, 3, 10, 10, 5, 7, 10, 10}, {2, 2, 2});
  Tensor rm = Tensor::from_vector({1.0f, 2.0f}), rv = Tensor::from_vector({2.0f, 3.0f});
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.25f, 1e-5f);
  EXPECT_FLOAT_EQ(rm.at({0}), 0.75f * 1.0f + 0.25f * 4.0f);
  EXPECT_FLOAT_EQ(rv.at({0}), static_cast<float>(0.75 * 2.0 + 0.25 * 20.0 / 3.0));
  EXPECT_FLOAT_EQ(rm.at({1}), 0.75f * 2.0f + 0.25f * 10.0f);
  EXPECT_FLOAT_EQ(rv.at({1}), 0.75f * 3.0f);  // constant channel: variance 0
}

// batch_norm_relu must be relu(batch_norm(...)) bit for bit: outputs, running statistics and every
// gradient, in training and evaluation, with a seed gradient whose masked entries include a NaN
// (relu's backward turns it into NaN too: NaN * 0) and with an existing gradient to add to.
TEST(NNOps, BatchNormReluIsTheCompositionBitForBit) {
  const Tensor x = randn({3, 4, 5, 5}, 600), w = randn({4}, 601), b = randn({4}, 602);
  Tensor seed = randn({3, 4, 5, 5}, 603);
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "eval");
    std::vector<std::vector<float>> results[2];
    for (int fused = 0; fused < 2; ++fused) {
      Tensor xl = x.clone().set_requires_grad(), wl = w.clone().set_requires_grad(), bl = b.clone().set_requires_grad();
      Tensor rm = randn({4}, 604), rv = add(square(randn({4}, 605)), 0.5f);
      const Tensor out = fused ? batch_norm_relu(xl, wl, bl, rm, rv, training, 0.2f, 1e-4f)
                               : relu(batch_norm(xl, wl, bl, rm, rv, training, 0.2f, 1e-4f));
      const std::vector<Tensor> g = grad({out}, {xl, wl, bl}, GradOptions().set_seeds({seed}));
      for (const Tensor& t : {out, g[0], g[1], g[2], rm, rv}) results[fused].push_back(t.to_vector());
    }
    const char* names[6] = {"out", "dx", "dweight", "dbias", "running_mean", "running_var"};
    for (size_t i = 0; i < 6; ++i) {
      EXPECT_EQ(0, std::memcmp(results[0][i].data(), results[1][i].data(), results[0][i].size() * sizeof(float)))
          << names[i];
    }
  }
  // The ReLU really acts: some outputs are clamped and their gradient is masked.
  const Tensor out = batch_norm_relu(x, w, b, Tensor(), Tensor(), true);
  const std::vector<float> ov = out.to_vector();
  EXPECT_GT(std::count(ov.begin(), ov.end(), 0.0f), 10);
  EXPECT_GT(std::count_if(ov.begin(), ov.end(), [](float v) { return v > 0.0f; }), 10);
}

// add_relu must be relu(add(...)) bit for bit, values and both gradients, with broadcasting.
TEST(NNOps, AddReluIsTheCompositionBitForBit) {
  const Tensor a = randn({4, 3, 5}, 700), b = randn({3, 1}, 701), seed = randn({4, 3, 5}, 702);
  std::vector<std::vector<float>> results[2];
  for (int fused = 0; fused < 2; ++fused) {
    Tensor al = a.clone().set_requires_grad(), bl = b.clone().set_requires_grad();
    const Tensor out = fused ? add_relu(al, bl) : relu(add(al, bl));
    const std::vector<Tensor> g = grad({out}, {al, bl}, GradOptions().set_seeds({seed}));
    for (const Tensor& t : {out, g[0], g[1]}) results[fused].push_back(t.to_vector());
  }
  const char* names[3] = {"out", "da", "db"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(0, std::memcmp(results[0][i].data(), results[1][i].data(), results[0][i].size() * sizeof(float)))
        << names[i];
  }
  EXPECT_GT(std::count(results[1][0].begin(), results[1][0].end(), 0.0f), 5);  // the ReLU clamps some
}

TEST(NNOps, NormalizationIsStableUnderALargeOffset) {
  // Two-pass statistics: adding 300 to every value must not change the normalized output beyond
  // the float spacing of the shifted inputs (3e-5 around 300).
  const Tensor x = randn({4, 3, 4, 4}, 500);
  const Tensor shifted = add(x, 300.0f);
  EXPECT_TRUE(tensors_close(batch_norm(shifted, Tensor(), Tensor(), Tensor(), Tensor(), true),
                            batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), 2e-4, 0.0,
                            "batch_norm offset"));
  const Tensor y = randn({5, 64}, 501);
  EXPECT_TRUE(tensors_close(layer_norm(add(y, 300.0f), Tensor(), Tensor()), layer_norm(y, Tensor(), Tensor()), 2e-4,
                            0.0, "layer_norm offset"));
}

TEST(NNOps, NormalizationErrors) {
  const Tensor x = Tensor::zeros({4, 3, 2, 2});
  std::string e = error_of([&] { batch_norm(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true); });
  EXPECT_NE(e.find("batch_norm: weight has shape [4], expected [3] for input [4, 3, 2, 2]"), std::string::npos) << e;
  e = error_of([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); });
  EXPECT_NE(e.find("batch_norm: evaluation mode (training=false) needs running_mean and running_var"),
            std::string::npos)
      << e;
  e = error_of([&] { batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); });
  EXPECT_NE(e.find("batch_norm: expected more than 1 value per channel when training, got input [1, 3]"),
            std::string::npos)
      << e;
  e = error_of([&] { batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor(), true); });
  EXPECT_NE(e.find("batch_norm: running_mean and running_var must both be defined or both undefined"),
            std::string::npos)
      << e;
  e = error_of([&] { batch_norm(Tensor::zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true); });
  EXPECT_NE(e.find("batch_norm: input must be [N, C, ...] with at least 2 dims, got [4]"), std::string::npos) << e;
  e = error_of([&] { layer_norm(Tensor::zeros({2, 5}), Tensor::ones({4}), Tensor()); });
  EXPECT_NE(e.find("layer_norm: weight has shape [4], expected [5] for input [2, 5]"), std::string::npos) << e;
}

// ---- attention: fused against the composite of primitives ----------------------------------------

namespace {
// softmax(q kᵀ / sqrt(D) masked) v from matmul, mul, where and softmax: gradients by construction.
Tensor attention_composite(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(q.size(-1)));
  Tensor s = mul(matmul(q, k.transpose(-2, -1)), scale);
  if (causal) {
    const int64_t tq = q.size(-2), tk = k.size(-2);
    std::vector<float> keep(static_cast<size_t>(tq * tk));
    for (int64_t i = 0; i < tq; ++i)
      for (int64_t j = 0; j < tk; ++j) keep[i * tk + j] = j <= i ? 1.0f : 0.0f;
    s = where(Tensor::from_vector(keep, {tq, tk}), s, Tensor::scalar(-std::numeric_limits<float>::infinity()));
  }
  return matmul(softmax(s, -1), v);
}

::testing::AssertionResult fused_matches_composite(const Shape& qs, const Shape& ks, const Shape& vs, bool causal,
                                                   uint64_t seed) {
  Tensor q = randn(qs, seed).set_requires_grad(), k = randn(ks, seed + 1).set_requires_grad(),
         v = randn(vs, seed + 2).set_requires_grad();
  const Tensor fused = scaled_dot_product_attention(q, k, v, causal);
  const Tensor comp = attention_composite(q, k, v, causal);
  const std::string tag = std::string(causal ? "causal" : "non-causal") + " q " + shape_str(qs) + " k " + shape_str(ks);
  auto res = tensors_close(fused, comp, 1e-5, 1e-5, tag + " output");
  if (!res) return res;
  const Tensor r = randn(fused.shape(), seed + 3);
  const std::vector<Tensor> gf = grad({fused}, {q, k, v}, GradOptions().set_seeds({r}));
  const std::vector<Tensor> gc = grad({comp}, {q, k, v}, GradOptions().set_seeds({r}));
  const char* names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    res = tensors_close(gf[i], gc[i], 1e-5, 1e-5, tag + " " + names[i]);
    if (!res) return res;
  }
  return ::testing::AssertionSuccess();
}
}  // namespace

// Tolerance atol 1e-5, rtol 1e-5 (the composite sums in a different order).
TEST(NNOps, AttentionFusedEqualsComposite) {
  EXPECT_TRUE(fused_matches_composite({2, 3, 6, 4}, {2, 3, 6, 4}, {2, 3, 6, 5}, true, 600));  // B*H = 6: parallel
  EXPECT_TRUE(fused_matches_composite({2, 3, 6, 4}, {2, 3, 6, 4}, {2, 3, 6, 5}, false, 610));
  EXPECT_TRUE(fused_matches_composite({1, 1, 7, 8}, {1, 1, 7, 8}, {1, 1, 7, 3}, true, 620));   // B*H = 1: serial
  EXPECT_TRUE(fused_matches_composite({2, 2, 3, 4}, {2, 2, 9, 4}, {2, 2, 9, 2}, false, 630));  // Tq != Tk
  EXPECT_TRUE(fused_matches_composite({1, 2, 64, 16}, {1, 2, 64, 16}, {1, 2, 64, 16}, true, 640));
}

TEST(NNOps, CausalAttentionNeverProducesNaN) {
  // Huge scores: the first query sees only key 0, so its output is exactly v[..., 0, :].
  Tensor q = randn({1, 2, 5, 4}, 700, 50.0f).set_requires_grad(),
         k = randn({1, 2, 5, 4}, 701, 50.0f).set_requires_grad();
  Tensor v = randn({1, 2, 5, 3}, 702).set_requires_grad();
  const Tensor out = scaled_dot_product_attention(q, k, v, true);
  for (float f : out.to_vector()) ASSERT_TRUE(std::isfinite(f));
  EXPECT_TRUE(bit_equal(out.narrow(2, 0, 1), v.narrow(2, 0, 1)));
  const std::vector<Tensor> g = grad({sum(out)}, {q, k, v}, GradOptions().set_retain_graph(true));
  for (const Tensor& t : g)
    for (float f : t.to_vector()) ASSERT_TRUE(std::isfinite(f));
  // The first query's output ignores keys 1.. and (a softmax over one key is constant) every key
  // vector: those gradients are exactly zero.
  const std::vector<Tensor> g0 = grad({sum(out.narrow(2, 0, 1))}, {k, v});
  for (float f : g0[0].to_vector()) EXPECT_EQ(f, 0.0f);
  for (float f : g0[1].narrow(2, 1, 4).to_vector()) EXPECT_EQ(f, 0.0f);
  for (float f : g0[1].narrow(2, 0, 1).to_vector()) EXPECT_EQ(f, 1.0f);
}

TEST(NNOps, AttentionKeyPaddingEqualsTruncatedKeys) {
  // Batch element b with key length L_b gives exactly what attention over its first L_b keys gives
  // (same sums in the same order), and the padded keys get zero gradient.
  const std::vector<int64_t> lengths{3, 7, 1};
  Tensor q = randn({3, 2, 5, 4}, 800).set_requires_grad(), k = randn({3, 2, 7, 4}, 801).set_requires_grad(),
         v = randn({3, 2, 7, 3}, 802).set_requires_grad();
  const Tensor out = scaled_dot_product_attention(q, k, v, false, lengths);
  const std::vector<Tensor> g = grad({sum(out)}, {k, v});
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t L = lengths[static_cast<size_t>(b)];
    const Tensor ref = scaled_dot_product_attention(q.narrow(0, b, 1), k.narrow(0, b, 1).narrow(2, 0, L),
                                                    v.narrow(0, b, 1).narrow(2, 0, L), false);
    EXPECT_TRUE(bit_equal(out.narrow(0, b, 1), ref)) << "batch " << b;
    for (const Tensor& t : g)
      for (float f : t.narrow(0, b, 1).narrow(2, L, 7 - L).to_vector()) EXPECT_EQ(f, 0.0f) << "batch " << b;
  }
  // No lengths (empty) is the plain op, bit for bit.
  EXPECT_TRUE(bit_equal(scaled_dot_product_attention(q, k, v, true, {}), scaled_dot_product_attention(q, k, v, true)));
  const std::string e = error_of([&] { scaled_dot_product_attention(q, k, v, false, {3, 0, 2}); });
  EXPECT_NE(e.find("key_lengths[1] is 0, expected 1 to Tk = 7"), std::string::npos) << e;
  const std::string e2 = error_of([&] { scaled_dot_product_attention(q, k, v, false, {3, 2}); });
  EXPECT_NE(e2.find("key_lengths has 2 entries, expected one per batch element (3)"), std::string::npos) << e2;
}

TEST(NNOps, AttentionErrors) {
  const Tensor q = Tensor::zeros({1, 2, 3, 4});
  std::string e = error_of([&] {
    scaled_dot_product_attention(q, Tensor::zeros({1, 2, 3, 5}), Tensor::zeros({1, 2, 3, 4}), false);
  });
  EXPECT_NE(
      e.find("scaled_dot_product_attention: q and k must have the same feature dim D: q [1, 2, 3, 4], k [1, 2, 3, 5]"),
      std::string::npos)
      << e;
  e = error_of([&] { scaled_dot_product_attention(q, q, Tensor::zeros({1, 2, 5, 4}), false); });
  EXPECT_NE(e.find("k and v must have the same length Tk"), std::string::npos) << e;
  e = error_of([&] { scaled_dot_product_attention(Tensor::zeros({2, 3, 4}), q, q, false); });
  EXPECT_NE(e.find("scaled_dot_product_attention: q must be 4-D [B, H, T, D], got [2, 3, 4]"), std::string::npos) << e;
  e = error_of([&] {
    scaled_dot_product_attention(q, Tensor::zeros({1, 3, 3, 4}), Tensor::zeros({1, 3, 3, 4}), false);
  });
  EXPECT_NE(e.find("batch and head dims must agree"), std::string::npos) << e;
}

// ---- determinism of every op ---------------------------------------------------------------------

TEST(NNOps, RepeatedRunsAreBitIdentical) {
  auto run = [] {
    Tensor x = randn({6, 4, 9, 9}, 800).set_requires_grad();
    Tensor w = randn({4}, 801).set_requires_grad(), b = randn({4}, 802).set_requires_grad();
    Tensor h = batch_norm(x, w, b, Tensor(), Tensor(), true);
    h = add(max_pool2d(h, 3, 2, 1), avg_pool2d(h, 3, 2, 1));
    Tensor t = h.reshape({6, 4, 25});
    Tensor a = scaled_dot_product_attention(t.unsqueeze(0), t.unsqueeze(0), t.unsqueeze(0), true);
    Tensor y = layer_norm(a, Tensor(), Tensor());
    Tensor loss = sum(mul(y, y));
    std::vector<Tensor> g = grad({loss}, {x, w, b});
    g.push_back(y);
    return g;
  };
  const std::vector<Tensor> a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bit_equal(a[i], b[i])) << i;
}
