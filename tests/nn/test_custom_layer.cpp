// A user-written layer, exactly as documented in docs/nn.md: one class built from existing ops and
// modules, with no backward to write. The tests check that it registers its parameters under dotted
// names (also when nested), that it trains (the loss falls over a few plain SGD steps on a tiny
// regression problem), and that autograd's gradients through it pass the shared gradcheck.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "nn/linear.h"

using namespace scalpel;

// ---- the example (docs/nn.md, "Writing your own layer") -----------------------------------------
// Gated residual MLP: y = x + sigmoid(gate) * fc2(gelu(fc1(x))); x [..., dim] -> [..., dim].
class GatedResidual : public nn::Layer {
 public:
  GatedResidual(int64_t dim, int64_t hidden, Generator& gen) : Layer("GatedResidual") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(nn::LinearOptions(dim, hidden), gen));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(nn::LinearOptions(hidden, dim), gen));
    gate = register_parameter("gate", Tensor::zeros({dim}));  // sigmoid(0) = 1/2 at the start
  }
  Tensor forward(const Tensor& x) override { return x + sigmoid(gate) * fc2->forward(gelu(fc1->forward(x))); }
  std::shared_ptr<nn::Linear> fc1, fc2;
  Tensor gate;
};
// ---- end of the example -------------------------------------------------------------------------

namespace {
std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}
}  // namespace

TEST(CustomLayer, RegistersParametersWithDottedNames) {
  Generator gen(7);
  GatedResidual layer(4, 8, gen);
  EXPECT_EQ(names_of(layer.named_parameters()),
            (std::vector<std::string>{"gate", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(layer.num_parameters(), 4 + (8 * 4 + 8) + (4 * 8 + 4));
  EXPECT_EQ(layer.fc2->describe(), "Linear 'fc2'");
  for (const Tensor& p : layer.parameters()) EXPECT_TRUE(p.requires_grad());

  // Nested in a Sequential the names get the child's index as prefix, and a checkpoint written
  // from one model loads into a second one built the same way (strict: every key must match).
  nn::Sequential net;
  net.push_back(std::make_shared<GatedResidual>(4, 8, gen));
  net.push_back(std::make_shared<nn::Linear>(nn::LinearOptions(4, 2), gen));
  EXPECT_EQ(names_of(net.named_parameters()),
            (std::vector<std::string>{"0.gate", "0.fc1.weight", "0.fc1.bias", "0.fc2.weight", "0.fc2.bias", "1.weight",
                                      "1.bias"}));
  Generator gen2(99);
  nn::Sequential copy;
  copy.push_back(std::make_shared<GatedResidual>(4, 8, gen2));
  copy.push_back(std::make_shared<nn::Linear>(nn::LinearOptions(4, 2), gen2));
  copy.load_state_dict(net.state_dict());
  Generator gx(1);
  const Tensor x = Tensor::normal({3, 4}, gx);
  EXPECT_EQ(copy.forward(x).to_vector(), net.forward(x).to_vector());
}

TEST(CustomLayer, LossDecreasesUnderSGD) {
  // Fit y = x + 0.5 * tanh(x A) with one GatedResidual layer, full-batch SGD.
  Generator gen(3);
  const Tensor x = Tensor::normal({64, 4}, gen);
  const Tensor a = Tensor::normal({4, 4}, gen);
  Tensor target;
  {
    NoGradGuard ng;
    target = x + 0.5f * tanh(matmul(x, a));
  }
  GatedResidual layer(4, 16, gen);
  const float lr = 0.5f;
  std::vector<float> losses;
  for (int step = 0; step < 40; ++step) {
    layer.zero_grad();
    Tensor loss = mse_loss(layer.forward(x), target);
    losses.push_back(loss.item());
    loss.backward();
    NoGradGuard ng;
    for (Tensor& p : layer.parameters()) {
      ASSERT_TRUE(p.grad().defined());
      p.add_(p.grad(), -lr);
    }
  }
  for (size_t i = 1; i < losses.size(); ++i) EXPECT_LT(losses[i], losses[i - 1]) << "step " << i;
  EXPECT_LT(losses.back(), 0.5f * losses.front()) << "first " << losses.front() << ", last " << losses.back();
  // The gate moved away from its initial 0.
  float gate_change = 0.0f;
  for (float g : layer.gate.to_vector()) gate_change += std::abs(g);
  EXPECT_GT(gate_change, 1e-3f);
}

TEST(CustomLayer, PassesGradcheck) {
  // Defaults of tests/gradcheck.h (eps 1e-3, atol 1e-3, rtol 1e-2); GELU and sigmoid are smooth.
  Generator gen(5);
  GatedResidual layer(3, 5, gen);
  {
    NoGradGuard ng;
    layer.gate.copy_(Tensor::normal({3}, gen));  // away from the symmetric start
  }
  const Tensor x = Tensor::normal({4, 3}, gen);
  EXPECT_TRUE(
      scalpel::testing::gradcheck("GatedResidual input", [&](const auto& in) { return layer.forward(in[0]); }, {x}));
  EXPECT_TRUE(scalpel::testing::gradcheck_tensors(
      "GatedResidual params", [&] { return layer.forward(x); }, layer.named_parameters()));
}
