// Finite-difference gradchecks for every layer at small sizes (tests/gradcheck.h defaults:
// atol 1e-3, rtol 1e-2, eps 1e-3, unless stated). Parameters are checked by wrapping them as
// inputs of the checked function.
#include <gtest/gtest.h>

#include "gradcheck.h"
#include "nn/byte_lm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/resnet.h"
#include "nn/transformer.h"

using namespace scalpel;
using scalpel::testing::gradcheck;
using scalpel::testing::GradcheckOptions;

namespace {
Tensor randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return mul(Tensor::normal(s, g), scale);
}
// Gradcheck of a module's parameters through `fwd` (perturbed in place).
::testing::AssertionResult check_params(const std::string& op, nn::Module& m, const std::function<Tensor()>& fwd,
                                        GradcheckOptions o = GradcheckOptions().set_max_checks(200)) {
  return scalpel::testing::gradcheck_tensors(op, fwd, m.named_parameters(), o);
}
const GradcheckOptions kKinky = GradcheckOptions().set_skip_kinks(true);
}  // namespace

TEST(LayerGradcheck, Linear) {
  Generator gen(1);
  nn::Linear l(nn::LinearOptions(4, 3), gen);
  EXPECT_TRUE(gradcheck("Linear input", [&](const auto& x) { return l.forward(x[0]); }, {randn({5, 4}, 2)}));
  Tensor x = randn({5, 4}, 3);
  EXPECT_TRUE(check_params("Linear params", l, [&] { return l.forward(x); }));
}

TEST(LayerGradcheck, MLPAndActivations) {
  Generator gen(1);
  for (const char* act : {"relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "identity"}) {
    nn::MLP mlp(nn::MLPOptions({4, 6, 3}).activation(act), gen);
    Tensor x = randn({5, 4}, 4);
    EXPECT_TRUE(gradcheck(
        std::string("MLP input ") + act, [&](const auto& in) { return mlp.forward(in[0]); }, {x}, kKinky));
    EXPECT_TRUE(check_params(
        std::string("MLP params ") + act, mlp, [&] { return mlp.forward(x); }, kKinky));
  }
}

TEST(LayerGradcheck, DropoutWithFixedMask) {
  Generator gen(1);
  nn::Dropout d(nn::DropoutOptions(0.3), gen);
  const StateDict start = d.state_dict();
  // Restoring the RNG state before every forward fixes the mask, so the function is differentiable.
  auto f = [&](const std::vector<Tensor>& x) {
    d.load_state_dict(start);
    return d.forward(x[0]);
  };
  EXPECT_TRUE(gradcheck("Dropout train", f, {randn({4, 5}, 5)}));
  d.eval();
  EXPECT_TRUE(gradcheck("Dropout eval", f, {randn({4, 5}, 5)}));
}

TEST(LayerGradcheck, Conv2dVariants) {
  Generator gen(1);
  for (int64_t stride : {1, 2}) {
    for (int64_t pad : {0, 1}) {
      nn::Conv2d c(nn::Conv2dOptions(2, 3, 3).stride(stride).padding(pad), gen);
      Tensor x = randn({2, 2, 5, 5}, 6);
      const std::string name = "Conv2d s" + std::to_string(stride) + " p" + std::to_string(pad);
      EXPECT_TRUE(gradcheck(name + " input", [&](const auto& in) { return c.forward(in[0]); }, {x}));
      EXPECT_TRUE(check_params(name + " params", c, [&] { return c.forward(x); }));
    }
  }
}

TEST(LayerGradcheck, BatchNorm2dTrainAndEval) {
  nn::BatchNorm2d bn(nn::BatchNorm2dOptions(3));
  {
    NoGradGuard ng;
    bn.weight.copy_(Tensor::from_vector({1.5f, 0.5f, -1.0f}));
    bn.bias.copy_(Tensor::from_vector({0.1f, -0.2f, 0.3f}));
  }
  Tensor x = randn({4, 3, 2, 2}, 7);
  bn.train();
  EXPECT_TRUE(gradcheck("BatchNorm2d train input", [&](const auto& in) { return bn.forward(in[0]); }, {x}));
  EXPECT_TRUE(check_params("BatchNorm2d train params", bn, [&] { return bn.forward(x); }));
  bn.eval();
  EXPECT_TRUE(gradcheck("BatchNorm2d eval input", [&](const auto& in) { return bn.forward(in[0]); }, {x}));
  EXPECT_TRUE(check_params("BatchNorm2d eval params", bn, [&] { return bn.forward(x); }));
}

TEST(LayerGradcheck, Pools) {
  nn::MaxPool2d mp(nn::Pool2dOptions(2));
  nn::AvgPool2d ap(nn::Pool2dOptions(3).stride(2).padding(1));
  nn::GlobalAvgPool2d gp;
  nn::Flatten fl;
  Tensor x = randn({2, 2, 4, 4}, 8);
  EXPECT_TRUE(gradcheck(
      "MaxPool2d", [&](const auto& in) { return mp.forward(in[0]); }, {x}, kKinky));
  EXPECT_TRUE(gradcheck("AvgPool2d", [&](const auto& in) { return ap.forward(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck("GlobalAvgPool2d", [&](const auto& in) { return gp.forward(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck("Flatten", [&](const auto& in) { return fl.forward(in[0]); }, {x}));
}

TEST(LayerGradcheck, EmbeddingAndLayerNorm) {
  Generator gen(1);
  nn::Embedding e(nn::EmbeddingOptions(5, 3), gen);
  IndexTensor ids({0, 4, 4, 2}, {2, 2});
  EXPECT_TRUE(check_params("Embedding", e, [&] { return e.forward(ids); }));
  nn::LayerNorm ln(nn::LayerNormOptions(6));
  {
    NoGradGuard ng;
    ln.weight.copy_(randn({6}, 9));
    ln.bias.copy_(randn({6}, 10));
  }
  Tensor x = randn({3, 6}, 11);
  EXPECT_TRUE(gradcheck("LayerNorm input", [&](const auto& in) { return ln.forward(in[0]); }, {x}));
  EXPECT_TRUE(check_params("LayerNorm params", ln, [&] { return ln.forward(x); }));
}

TEST(LayerGradcheck, AttentionCausalAndNot) {
  Generator gen(1);
  for (bool causal : {false, true}) {
    nn::MultiheadSelfAttention a(nn::AttentionOptions(8, 2).causal(causal), gen);
    Tensor x = randn({2, 3, 8}, 12);
    const std::string name = causal ? "MHSA causal" : "MHSA";
    EXPECT_TRUE(gradcheck(name + " input", [&](const auto& in) { return a.forward(in[0]); }, {x}));
    EXPECT_TRUE(check_params(name + " params", a, [&] { return a.forward(x); }));
  }
}

TEST(LayerGradcheck, TransformerBlock) {
  Generator gen(1);
  nn::TransformerBlock b(nn::TransformerBlockOptions(8, 2).d_ff(12), gen);
  Tensor x = randn({2, 3, 8}, 13);
  EXPECT_TRUE(gradcheck("TransformerBlock input", [&](const auto& in) { return b.forward(in[0]); }, {x}));
  EXPECT_TRUE(check_params(
      "TransformerBlock params", b, [&] { return b.forward(x); }, GradcheckOptions().set_max_checks(40)));
}

TEST(LayerGradcheck, ByteLMTiedAndUntied) {
  Generator gen(1);
  for (bool tied : {true, false}) {
    nn::ByteLM lm(
        nn::ByteLMOptions().vocab(11).layers(1).heads(2).d_model(8).d_ff(8).max_len(4).tied(tied).init_std(0.3), gen);
    IndexTensor tok({1, 3, 5, 7, 2, 4}, {2, 3}), tgt({3, 5, 7, 2, 4, 6}, {2, 3});
    EXPECT_TRUE(check_params(
        tied ? "ByteLM tied" : "ByteLM untied", lm, [&] { return lm.loss(tok, tgt); },
        GradcheckOptions().set_max_checks(20)));
  }
}

// Eval mode (BatchNorm as a per-channel affine map). Train mode through the whole network is a
// composition of the layers checked above, and is compared with PyTorch in the golden tests: at
// gradcheck sizes, batch statistics over a handful of values and many ReLU kinks make finite
// differences of the whole network uninformative.
TEST(LayerGradcheck, ResNet18SmallWidth) {
  Generator gen(1);
  nn::ResNet18 net(nn::ResNetOptions().width(2).heads({3, 2}), gen);
  net.eval();
  Tensor x = randn({2, 3, 8, 8}, 14);
  auto both = [&](const std::vector<Tensor>& in) {
    auto outs = net.forward(in[0]);
    return concat({outs[0], outs[1]}, 1);
  };
  EXPECT_TRUE(gradcheck("ResNet18 eval input", both, {x}, GradcheckOptions().set_max_checks(60).set_skip_kinks(true)));
  EXPECT_TRUE(check_params(
      "ResNet18 eval params", net, [&] { return both({x}); },
      GradcheckOptions().set_max_checks(3).set_skip_kinks(true)));
}

TEST(LayerGradcheck, Losses) {
  nn::CrossEntropyLoss ce(nn::CrossEntropyLossOptions().label_smoothing(0.1));
  IndexTensor t({0, 2, 1});
  EXPECT_TRUE(gradcheck("CrossEntropyLoss", [&](const auto& in) { return ce.forward(in[0], t); }, {randn({3, 4}, 15)}));
  nn::MSELoss mse;
  EXPECT_TRUE(gradcheck("MSELoss", [&](const auto& in) { return mse.forward(in[0], in[1]); },
                        {randn({3, 4}, 16), randn({3, 4}, 17)}));
  EXPECT_TRUE(gradcheck("l2_norm",
                        [&](const auto& in) {
                          return nn::l2_norm({in[0], in[1]});
                        },
                        {randn({3, 4}, 18), randn({4}, 19)}));
  EXPECT_TRUE(gradcheck(
      "l2_norm weights only",
      [&](const auto& in) {
        return nn::l2_norm({in[0], in[1]}, true);
      },
      {randn({3, 4}, 18), randn({4}, 19)}, GradcheckOptions()));
}
