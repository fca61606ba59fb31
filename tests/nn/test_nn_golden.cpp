// Golden tests: Scalpel's nn modules and models against PyTorch reference modules.
//
// tests/golden/nn_modules.json is written by tests/golden/gen_torch_nn.py (torch 1.13, float32, CPU)
// and committed; CI never needs torch. The script builds torch modules that mirror ours name for
// name, so each case's weights are loaded here with a STRICT load_state_dict() (any missing,
// unexpected or mis-shaped key fails the test). Then the forward output, the gradients of
// <out, r> (fixed cotangent r) with respect to the input and to EVERY parameter, and the updated
// buffers (BatchNorm running statistics) are compared with torch's. Models with BatchNorm are also
// run in eval mode after the train step. ByteLM compares logits, the mean next-byte loss and every
// parameter's gradient of that loss. Each test states its tolerance (|a - e| <= atol + rtol |e|).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "golden.h"
#include "golden_nn.h"
#include "nn/byte_lm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/resnet.h"
#include "nn/transformer.h"

using namespace scalpel;
using scalpel::testing::GoldenFile;
using scalpel::testing::tensors_close;

namespace {

constexpr const char* kFixture = "nn_modules.json";

const GoldenFile& fixture() {
  static const GoldenFile f(kFixture);
  return f;
}

std::vector<std::string> strings(const nlohmann::json& j) { return j.get<std::vector<std::string>>(); }

struct Tolerance {
  double atol, rtol;
};

::testing::AssertionResult load_case(nn::Module& m, const std::string& c) {
  return scalpel::testing::load_golden_state(m, fixture(), c);
}

// Forward of `outs = f(x)` with x from the fixture, then d<outs, r>/d(x, every parameter).
// `suffixes` names the outputs in the fixture ("" for a single "out", ".0", ".1" for heads).
void check_forward_backward(nn::Module& m, const std::string& c, const std::vector<std::string>& suffixes,
                            const std::function<std::vector<Tensor>(const Tensor&)>& f, Tolerance tol) {
  const GoldenFile& fx = fixture();
  Tensor x = fx.tensor(c, "x").set_requires_grad(true);
  std::vector<Tensor> outs = f(x);
  ASSERT_EQ(outs.size(), suffixes.size());
  std::vector<Tensor> seeds;
  for (size_t k = 0; k < outs.size(); ++k) {
    EXPECT_TRUE(
        tensors_close(outs[k], fx.tensor(c, "out" + suffixes[k]), tol.atol, tol.rtol, c + " out" + suffixes[k]));
    seeds.push_back(fx.tensor(c, "cotangent" + suffixes[k]));
  }
  const auto named = m.named_parameters();
  std::vector<Tensor> wrt{x};
  for (const auto& [n, p] : named) wrt.push_back(p);
  const std::vector<Tensor> grads = grad(outs, wrt, GradOptions().set_seeds(seeds));
  EXPECT_TRUE(tensors_close(grads[0], fx.tensor(c, "grad.x"), tol.atol, tol.rtol, c + " grad.x"));
  for (size_t i = 0; i < named.size(); ++i) {
    EXPECT_TRUE(tensors_close(grads[i + 1], fx.tensor(c, "grad." + named[i].first), tol.atol, tol.rtol,
                              c + " grad." + named[i].first));
  }
}

// Buffers after the step (BatchNorm running statistics) against torch's.
void check_buffers(nn::Module& m, const std::string& c, Tolerance tol) {
  const GoldenFile& fx = fixture();
  std::set<std::string> theirs;
  for (const std::string& n : strings(fx.meta(c).at("buffers"))) theirs.insert(n);
  std::set<std::string> ours;
  for (const auto& [n, b] : m.named_buffers()) {
    ours.insert(n);
    EXPECT_TRUE(tensors_close(b, fx.tensor(c, "buffer_after." + n), tol.atol, tol.rtol, c + " buffer_after." + n));
  }
  EXPECT_EQ(ours, theirs) << c << ": buffer names differ from the torch reference";
}

void check_layer(nn::Layer& m, const std::string& c, Tolerance tol) {
  ASSERT_TRUE(load_case(m, c));
  check_forward_backward(
      m, c, {""}, [&](const Tensor& x) { return std::vector<Tensor>{m.forward(x)}; }, tol);
  check_buffers(m, c, tol);
}

}  // namespace

// Every case in the fixture is exercised by one of the tests below (none is silently unchecked).
TEST(NNGolden, FixtureCasesAreAllTested) {
  std::ifstream in(std::string(SCALPEL_GOLDEN_DIR) + "/" + kFixture);
  ASSERT_TRUE(in) << kFixture << " missing";
  nlohmann::json j;
  in >> j;
  std::set<std::string> cases;
  for (const auto& kv : j.at("cases").items()) cases.insert(kv.key());
  const std::set<std::string> tested{"linear",
                                     "linear_no_bias",
                                     "conv2d_k3_s1_p1",
                                     "conv2d_k3_s2_p1",
                                     "conv2d_k1_s2_p0_nobias",
                                     "batchnorm2d",
                                     "layernorm",
                                     "attention_causal",
                                     "attention_non_causal",
                                     "transformer_block",
                                     "resnet18_w4_two_heads",
                                     "byte_lm_tied",
                                     "byte_lm_untied"};
  EXPECT_EQ(cases, tested);
}

// Single layers: float32 sums of a few dozen terms; atol 1e-5, rtol 1e-5.
TEST(NNGolden, Linear) {
  for (const char* c : {"linear", "linear_no_bias"}) {
    SCOPED_TRACE(c);
    const auto& meta = fixture().meta(c);
    Generator gen(0);
    nn::Linear m(nn::LinearOptions(meta.at("in"), meta.at("out")).bias(meta.at("bias").get<bool>()), gen);
    check_layer(m, c, {1e-5, 1e-5});
  }
}

TEST(NNGolden, Conv2dStrideAndPadding) {
  for (const char* c : {"conv2d_k3_s1_p1", "conv2d_k3_s2_p1", "conv2d_k1_s2_p0_nobias"}) {
    SCOPED_TRACE(c);
    const auto& meta = fixture().meta(c);
    Generator gen(0);
    nn::Conv2d m(nn::Conv2dOptions(meta.at("in"), meta.at("out"), meta.at("kernel"))
                     .stride(meta.at("stride"))
                     .padding(meta.at("padding"))
                     .bias(meta.at("bias").get<bool>()),
                 gen);
    check_layer(m, c, {1e-5, 1e-5});
  }
}

// Train step (batch statistics, in-place running-stat update), then eval with the updated
// statistics. Normalisation divides by a batch std; atol 1e-5, rtol 1e-4.
TEST(NNGolden, BatchNorm2dTrainStepThenEval) {
  const std::string c = "batchnorm2d";
  const auto& meta = fixture().meta(c);
  nn::BatchNorm2d m(nn::BatchNorm2dOptions(meta.at("features")).momentum(meta.at("momentum")).eps(meta.at("eps")));
  ASSERT_TRUE(m.is_training());
  check_layer(m, c, {1e-5, 1e-4});
  const StateDict after_train = m.state_dict();
  m.eval();
  NoGradGuard ng;
  EXPECT_TRUE(tensors_close(m.forward(fixture().tensor(c, "x_eval")), fixture().tensor(c, "out_eval"), 1e-5, 1e-4,
                            c + " out_eval"));
  // Eval must not touch the running statistics.
  for (const auto& [n, b] : m.named_buffers())
    EXPECT_TRUE(tensors_close(b, after_train.tensor(n), 0, 0, n + " after eval"));
}

TEST(NNGolden, LayerNorm) {
  const std::string c = "layernorm";
  const auto& meta = fixture().meta(c);
  nn::LayerNorm m(nn::LayerNormOptions(meta.at("dim")).eps(meta.at("eps")));
  check_layer(m, c, {1e-5, 1e-4});
}

// qkv / proj mapped to torch's in_proj / out_proj (checked against nn.MultiheadAttention by the
// script); softmax and two products per head: atol 1e-5, rtol 1e-4.
TEST(NNGolden, MultiheadSelfAttention) {
  for (const char* c : {"attention_causal", "attention_non_causal"}) {
    SCOPED_TRACE(c);
    const auto& meta = fixture().meta(c);
    Generator gen(0);
    nn::MultiheadSelfAttention m(
        nn::AttentionOptions(meta.at("d_model"), meta.at("heads")).causal(meta.at("causal").get<bool>()), gen);
    check_layer(m, c, {1e-5, 1e-4});
  }
}

// Pre-LN block with exact (erf) GELU (checked against nn.TransformerEncoderLayer(norm_first=True)
// by the script): atol 1e-5, rtol 1e-4.
TEST(NNGolden, TransformerBlock) {
  const std::string c = "transformer_block";
  const auto& meta = fixture().meta(c);
  Generator gen(0);
  nn::TransformerBlock m(nn::TransformerBlockOptions(meta.at("d_model"), meta.at("heads"))
                             .d_ff(meta.at("d_ff"))
                             .causal(meta.at("causal").get<bool>()),
                         gen);
  check_layer(m, c, {1e-5, 1e-4});
}

// ResNet-18 (width 4, CIFAR stem, two heads) in TRAIN mode: both heads' logits, the gradients of
// every parameter and of the input, and all 20 BatchNorm layers' updated running statistics; then
// an eval-mode forward with those statistics. 21 layers deep with batch statistics on as few as 8
// values per channel: atol 1e-4, rtol 1e-4.
TEST(NNGolden, ResNet18TrainStepAndEval) {
  const std::string c = "resnet18_w4_two_heads";
  const auto& meta = fixture().meta(c);
  Generator gen(0);
  nn::ResNet18 net(nn::ResNetOptions()
                       .width(meta.at("width"))
                       .heads(meta.at("heads").get<std::vector<int64_t>>())
                       .stem(meta.at("stem").get<std::string>()),
                   gen);
  ASSERT_TRUE(load_case(net, c));
  ASSERT_TRUE(net.is_training());
  const Tolerance tol{1e-4, 1e-4};
  check_forward_backward(
      net, c, {".0", ".1"}, [&](const Tensor& x) { return net.forward(x); }, tol);
  check_buffers(net, c, tol);
  EXPECT_EQ(net.named_buffers().size(), 40u);  // running_mean + running_var of 20 BatchNorms

  net.eval();
  NoGradGuard ng;
  const std::vector<Tensor> outs = net.forward(fixture().tensor(c, "x"));
  ASSERT_EQ(outs.size(), 2u);
  for (size_t k = 0; k < outs.size(); ++k) {
    const std::string key = "out_eval." + std::to_string(k);
    EXPECT_TRUE(tensors_close(outs[k], fixture().tensor(c, key), tol.atol, tol.rtol, c + " " + key));
  }
}

// 2-layer ByteLM, tied and untied head: logits, mean next-byte cross-entropy, and the gradient of
// that loss for every parameter (the tied embedding gets both the lookup's and the head's share;
// position rows past T get exactly zero). atol 1e-5, rtol 1e-4.
TEST(NNGolden, ByteLMTiedAndUntied) {
  for (const char* c : {"byte_lm_tied", "byte_lm_untied"}) {
    SCOPED_TRACE(c);
    const GoldenFile& fx = fixture();
    const auto& meta = fx.meta(c);
    Generator gen(0);
    nn::ByteLM lm(nn::ByteLMOptions()
                      .vocab(meta.at("vocab"))
                      .layers(meta.at("layers"))
                      .heads(meta.at("heads"))
                      .d_model(meta.at("d_model"))
                      .d_ff(meta.at("d_ff"))
                      .max_len(meta.at("max_len"))
                      .tied(meta.at("tied").get<bool>()),
                  gen);
    ASSERT_TRUE(load_case(lm, c));
    EXPECT_EQ(lm.head == nullptr, meta.at("tied").get<bool>());
    const Tolerance tol{1e-5, 1e-4};
    const IndexTensor tokens = fx.index(c, "tokens"), targets = fx.index(c, "targets");
    EXPECT_TRUE(tensors_close(lm.forward(tokens), fx.tensor(c, "out"), tol.atol, tol.rtol, std::string(c) + " logits"));
    Tensor loss = lm.loss(tokens, targets);
    EXPECT_TRUE(tensors_close(loss, fx.tensor(c, "loss"), tol.atol, tol.rtol, std::string(c) + " loss"));
    const auto named = lm.named_parameters();
    const std::vector<Tensor> grads = grad({loss}, lm.parameters());
    for (size_t i = 0; i < named.size(); ++i) {
      EXPECT_TRUE(tensors_close(grads[i], fx.tensor(c, "grad." + named[i].first), tol.atol, tol.rtol,
                                std::string(c) + " grad." + named[i].first));
    }
  }
}
