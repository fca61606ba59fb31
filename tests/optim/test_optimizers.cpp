// SGD / Adam / AdamW against PyTorch trajectories (tests/golden/optim.json, 5 steps each, 1e-5
// relative), state save/load, option validation.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/ops.h"
#include "golden.h"
#include "optim/optimizer.h"

using namespace scalpel;
using namespace scalpel::optim;
using scalpel::testing::GoldenFile;

namespace {

std::unique_ptr<Optimizer> make_from_meta(const nlohmann::json& m, std::vector<Tensor> params) {
  const std::string kind = m.at("optimizer");
  if (kind == "sgd") {
    return std::make_unique<SGD>(params, SGDOptions(m.at("lr").get<double>())
                                             .momentum(m.at("momentum").get<double>())
                                             .dampening(m.at("dampening").get<double>())
                                             .nesterov(m.at("nesterov").get<bool>())
                                             .weight_decay(m.at("weight_decay").get<double>()));
  }
  if (kind == "adam") {
    return std::make_unique<Adam>(params, AdamOptions(m.at("lr").get<double>())
                                              .beta1(m.at("beta1").get<double>())
                                              .beta2(m.at("beta2").get<double>())
                                              .eps(m.at("eps").get<double>())
                                              .weight_decay(m.at("weight_decay").get<double>()));
  }
  if (kind == "adamw") {
    return std::make_unique<AdamW>(params, AdamWOptions(m.at("lr").get<double>())
                                               .beta1(m.at("beta1").get<double>())
                                               .beta2(m.at("beta2").get<double>())
                                               .eps(m.at("eps").get<double>())
                                               .weight_decay(m.at("weight_decay").get<double>()));
  }
  throw std::runtime_error("unknown optimizer in fixture: " + kind);
}

std::vector<Tensor> fresh_params(const GoldenFile& f, const std::string& c) {
  const int n = f.meta(c).at("num_params").get<int>();
  std::vector<Tensor> params;
  for (int k = 0; k < n; ++k) params.push_back(f.tensor(c, "p" + std::to_string(k)).clone().set_requires_grad());
  return params;
}

void set_grads(const GoldenFile& f, const std::string& c, std::vector<Tensor>& params, int t) {
  for (size_t k = 0; k < params.size(); ++k) {
    params[k].set_grad(f.tensor(c, "g" + std::to_string(t) + "." + std::to_string(k)));
  }
}

}  // namespace

class OptimizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimizerGolden, FiveStepsMatchPyTorch) {
  GoldenFile f("optim.json");
  const std::string c = GetParam();
  ASSERT_TRUE(f.has(c)) << c;
  std::vector<Tensor> params = fresh_params(f, c);
  auto opt = make_from_meta(f.meta(c), params);
  const int steps = f.meta(c).at("steps").get<int>();
  ASSERT_EQ(steps, 5);
  for (int t = 0; t < steps; ++t) {
    set_grads(f, c, params, t);
    opt->step();
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string name = "p" + std::to_string(k) + ".step" + std::to_string(t);
      EXPECT_TRUE(scalpel::testing::tensors_close(params[k], f.tensor(c, name), 1e-7, 1e-5, c + " " + name));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optim, OptimizerGolden,
                         ::testing::Values("sgd_nesterov", "sgd_momentum_dampening", "sgd_plain", "adam",
                                           "adam_no_decay", "adamw"));

TEST(Optimizers, StateRoundTripResumesTheTrajectory) {
  GoldenFile f("optim.json");
  for (const std::string c : {"sgd_nesterov", "adam", "adamw"}) {
    // Two steps, save, continue in a fresh optimizer over fresh copies of the parameters.
    std::vector<Tensor> params = fresh_params(f, c);
    auto opt = make_from_meta(f.meta(c), params);
    for (int t = 0; t < 2; ++t) {
      set_grads(f, c, params, t);
      opt->step();
    }
    const StateDict saved = StateDict::deserialize(opt->state_dict().serialize());
    EXPECT_EQ(saved.get_int("step.0"), 2);
    EXPECT_EQ(saved.get_string("type"), f.meta(c).at("optimizer").get<std::string>());
    std::vector<Tensor> copies;
    for (const Tensor& p : params) copies.push_back(p.detach().clone().set_requires_grad());
    auto resumed = make_from_meta(f.meta(c), copies);
    resumed->load_state_dict(saved);
    for (int t = 2; t < 5; ++t) {
      set_grads(f, c, params, t);
      set_grads(f, c, copies, t);
      opt->step();
      resumed->step();
    }
    for (size_t k = 0; k < params.size(); ++k) {
      EXPECT_EQ(params[k].to_vector(), copies[k].to_vector()) << c;
      EXPECT_TRUE(
          scalpel::testing::tensors_close(copies[k], f.tensor(c, "p" + std::to_string(k) + ".step4"), 1e-7, 1e-5, c));
    }
  }
}

TEST(Optimizers, ParametersWithoutGradientAreSkipped) {
  Tensor a = Tensor::from_vector({1, 2}).set_requires_grad();
  Tensor b = Tensor::from_vector({3, 4}).set_requires_grad();
  Adam opt({a, b}, AdamOptions(0.1));
  a.set_grad(Tensor::from_vector({1, 1}));
  opt.step();
  EXPECT_EQ(b.to_vector(), (std::vector<float>{3, 4}));
  EXPECT_NE(a.to_vector(), (std::vector<float>{1, 2}));
  EXPECT_EQ(opt.step_count(0), 1);
  EXPECT_EQ(opt.step_count(1), 0);
  EXPECT_FALSE(opt.state_dict().has_tensor("exp_avg.1"));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optimizers, StepBumpsTheVersionSoStaleGraphsAreCaught) {
  Tensor w = Tensor::from_vector({1, 2}).set_requires_grad();
  SGD opt({w}, SGDOptions(0.1));
  Tensor y = mul(w, w).sum();  // saves w
  w.set_grad(Tensor::from_vector({1, 1}));
  opt.step();
  EXPECT_THROW(y.backward(), std::runtime_error);
}

TEST(Optimizers, SetLrDrivesTheUpdate) {
  Tensor w = Tensor::from_vector({1}).set_requires_grad();
  SGD opt({w}, SGDOptions(0.1));
  opt.set_lr(0.5);
  w.set_grad(Tensor::from_vector({2}));
  opt.step();
  EXPECT_FLOAT_EQ(w.item(), 0.0f);
  EXPECT_EQ(opt.lr(), 0.5);
}

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}
}  // namespace

TEST(Optimizers, ErrorsNameTheOptionOrKey) {
  Tensor w = Tensor::from_vector({1, 2}).set_requires_grad();
  EXPECT_NE(error_of([&] { SGD({w}, SGDOptions(0.1).nesterov(true)); }).find("nesterov needs momentum > 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SGD({w}, SGDOptions(-1)); }).find("sgd: option lr must be finite and >= 0, got -1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Adam({w}, AdamOptions(0.1).beta2(1.0)); }).find("adam: option beta2 must be in [0, 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              SGD({w, w}, SGDOptions(0.1));
            }).find("parameter 1 is the same tensor as parameter 0"),
            std::string::npos);
  Tensor t = Tensor::zeros({2, 3}).set_requires_grad();
  EXPECT_NE(error_of([&] { SGD({t.detach().t()}, SGDOptions(0.1)); }).find("is not contiguous"), std::string::npos);

  Tensor a = Tensor::from_vector({1, 2}).set_requires_grad();
  Adam adam({a}, AdamOptions(0.1));
  a.set_grad(Tensor::from_vector({1, 1}));
  adam.step();
  StateDict sd = adam.state_dict();
  Tensor b = Tensor::from_vector({1, 2, 3}).set_requires_grad();
  Adam other({b}, AdamOptions(0.1));
  EXPECT_NE(error_of([&] { other.load_state_dict(sd); }).find("'exp_avg.0' has shape [2], parameter 0 has shape [3]"),
            std::string::npos);
  SGD sgd({a}, SGDOptions(0.1));
  EXPECT_NE(error_of([&] { sgd.load_state_dict(sd); }).find("the state is for optimizer 'adam', expected 'sgd'"),
            std::string::npos);
  Adam two({a, b}, AdamOptions(0.1));
  EXPECT_NE(error_of([&] { two.load_state_dict(sd); }).find("the state has 1 parameters, this optimizer has 2"),
            std::string::npos);
}
