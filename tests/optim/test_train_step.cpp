// TrainStep end to end: the paper's 2-D toy (§3.3, full-batch GD), an underdetermined least-squares
// bilevel problem, clipping, schedules, non-finite detection, checkpoint/resume.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/ops.h"
#include "optim/train_step.h"

using namespace scalpel;
using namespace scalpel::optim;
using scalpel::surgery::make_surgeon;
using scalpel::surgery::SurgeonOptions;

namespace {

// θ = (a, b): main ½a², aux ½((a−1)² + b²).
struct Toy {
  Tensor a = Tensor::from_vector({1.5f}).set_requires_grad();
  Tensor b = Tensor::from_vector({1.0f}).set_requires_grad();
  std::vector<Tensor> losses() const {
    return {square(a).sum() * 0.5f, (square(a - 1.0f).sum() + square(b).sum()) * 0.5f};
  }
};

// Runs full-batch GD (SGD, lr 0.5) with the given method; returns (a, b).
std::pair<double, double> run_toy(const std::string& method, SurgeonOptions opts, int steps) {
  Toy toy;
  TrainStep step(std::make_unique<SGD>(std::vector<Tensor>{toy.a, toy.b}, SGDOptions(0.5)), make_surgeon(method, opts));
  for (int i = 0; i < steps; ++i) step.step(toy.losses());
  return {toy.a.item(), toy.b.item()};
}

}  // namespace

TEST(Toy, BloopConvergesToTheBilevelSolution) {
  // eps = 1e-30: with the default eps = 1e-7 the projection fades once ‖g0‖² ~ eps (see the next test).
  for (double lambda : {0.01, 0.1, 1.0}) {
    const auto [a, b] = run_toy("bloop", SurgeonOptions().lambda(lambda).rho(1.0).eps(1e-30), 3500);
    EXPECT_NEAR(a, 0.0, 1e-6) << "lambda " << lambda;
    EXPECT_NEAR(b, 0.0, 1e-6) << "lambda " << lambda;
  }
}

TEST(Toy, MixedConvergesToTheRegularizedSolution) {
  for (double lambda : {0.01, 0.1, 1.0}) {
    const auto [a, b] = run_toy("mixed", SurgeonOptions().lambda(lambda), 3500);
    EXPECT_NEAR(a, lambda / (1 + lambda), 1e-6) << "lambda " << lambda;
    EXPECT_NEAR(b, 0.0, 1e-6) << "lambda " << lambda;
  }
}

TEST(Toy, WithEpsTheMainCoordinateSettlesWhereTheProjectionFades) {
  // d_a = a + λ (a − 1) eps/(a² + eps): the fixed point solves a (a² + eps) = λ (1 − a) eps, i.e.
  // a ≈ (λ eps)^(1/3) for a² >> eps. This documents why the toy above uses a tiny eps.
  const double lambda = 1.0, eps = 1e-7;
  const auto [a, b] = run_toy("bloop", SurgeonOptions().lambda(lambda).rho(1.0).eps(eps), 400);
  double lo = 0, hi = 1;
  for (int i = 0; i < 200; ++i) {
    const double m = 0.5 * (lo + hi);
    (m * (m * m + eps) - lambda * (1 - m) * eps > 0 ? hi : lo) = m;
  }
  EXPECT_NEAR(a, lo, 1e-4 * lo);
  EXPECT_NEAR(lo, std::cbrt(lambda * eps), 0.01 * lo);
  EXPECT_NEAR(b, 0.0, 1e-6);
}

namespace {
// Solves the n×n system A x = b (row-major, double) by Gaussian elimination with partial pivoting.
std::vector<double> solve(std::vector<double> A, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t piv = c;
    for (size_t r = c + 1; r < n; ++r) {
      if (std::abs(A[r * n + c]) > std::abs(A[piv * n + c])) piv = r;
    }
    for (size_t k = 0; k < n; ++k) std::swap(A[c * n + k], A[piv * n + k]);
    std::swap(b[c], b[piv]);
    for (size_t r = c + 1; r < n; ++r) {
      const double f = A[r * n + c] / A[c * n + c];
      for (size_t k = c; k < n; ++k) A[r * n + k] -= f * A[c * n + k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (size_t r = n; r-- > 0;) {
    double s = b[r];
    for (size_t k = r + 1; k < n; ++k) s -= A[r * n + k] * x[k];
    x[r] = s / A[r * n + r];
  }
  return x;
}
}  // namespace

TEST(TrainStep, LeastSquaresEndToEnd) {
  // main ½‖Xθ − y‖² (8 equations, 4 unknowns), aux ½‖θ‖², full batch, SGD through TrainStep.
  // Mixed converges to the ridge solution (XᵀX + λI)⁻¹Xᵀy; Bloop (with its EMA) to the bilevel
  // solution, which for a full-rank main loss is the least-squares solution (XᵀX)⁻¹Xᵀy.
  Generator gen(7);
  const Tensor X = Tensor::normal({8, 4}, gen);
  const Tensor y = Tensor::normal({8}, gen);
  const std::vector<float> xv = X.to_vector(), yv = y.to_vector();
  const double lambda = 0.5;
  auto closed_form = [&](double ridge) {
    std::vector<double> A(16, 0.0), b(4, 0.0);
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        for (int r = 0; r < 8; ++r) A[i * 4 + j] += static_cast<double>(xv[r * 4 + i]) * xv[r * 4 + j];
      }
      A[i * 4 + i] += ridge;
      for (int r = 0; r < 8; ++r) b[i] += static_cast<double>(xv[r * 4 + i]) * yv[r];
    }
    return solve(A, b);
  };
  auto run = [&](const std::string& method, SurgeonOptions opts) {
    Tensor theta = Tensor::zeros({4}).set_requires_grad();
    TrainStep step(std::make_unique<SGD>(std::vector<Tensor>{theta}, SGDOptions(0.05)), make_surgeon(method, opts),
                   TrainStepOptions().loss_names({"fit", "norm"}));
    StepResult first, last;
    for (int i = 0; i < 3000; ++i) {
      Tensor resid = linear(X, theta.reshape({1, 4})).reshape({8}) - y;
      last = step.step({square(resid).sum() * 0.5f, square(theta).sum() * 0.5f});
      if (i == 0) first = last;
    }
    EXPECT_EQ(last.step, 2999);
    EXPECT_LT(last.losses[0], first.losses[0]) << method;
    return theta.to_vector();
  };
  const std::vector<double> ridge = closed_form(lambda), ols = closed_form(0.0);
  const std::vector<float> mixed = run("mixed", SurgeonOptions().lambda(lambda));
  const std::vector<float> bloop = run("bloop", SurgeonOptions().lambda(lambda).rho(0.01).eps(1e-20));
  double ridge_ols_gap = 0;
  for (int j = 0; j < 4; ++j) {
    EXPECT_NEAR(mixed[j], ridge[j], 1e-5) << j;
    EXPECT_NEAR(bloop[j], ols[j], 1e-3) << j;
    ridge_ols_gap = std::max(ridge_ols_gap, std::abs(ridge[j] - ols[j]));
  }
  EXPECT_GT(ridge_ols_gap, 0.05) << "the two solutions must be distinguishable";
}

TEST(TrainStep, ClippingScheduleAndResult) {
  Tensor w = Tensor::from_vector({3.0f, 4.0f}).set_requires_grad();
  TrainStep step(std::make_unique<SGD>(std::vector<Tensor>{w}, SGDOptions(1.0)),
                 make_surgeon("mixed", SurgeonOptions().lambda(0.0)),
                 TrainStepOptions().clip_grad_norm(1.0).lr_schedule(linear(0.5, 1.0, 1)));
  // Main loss ½‖w‖²: g0 = w = (3, 4), ‖d‖ = 5, clipped to 1 -> d ≈ (0.6, 0.8); lr = 0.5 at step 0.
  StepResult r = step.step({square(w).sum() * 0.5f});
  EXPECT_DOUBLE_EQ(r.grad_norm, 5.0);
  EXPECT_TRUE(r.clipped);
  EXPECT_EQ(r.lr, 0.5);
  EXPECT_NEAR(w.to_vector()[0], 3.0 - 0.5 * 0.6, 1e-5);
  EXPECT_NEAR(w.to_vector()[1], 4.0 - 0.5 * 0.8, 1e-5);
  EXPECT_NEAR(step.direction().norm(), 1.0, 1e-5);
  r = step.step({square(w).sum() * 0.5f});
  EXPECT_EQ(r.lr, 1.0);
  EXPECT_EQ(r.step, 1);
  EXPECT_NEAR(r.diagnostics.g0_norm, std::sqrt(2.7 * 2.7 + 3.6 * 3.6), 1e-5);
}

TEST(TrainStep, NonFiniteLossOrGradientIsReportedAndNothingChanges) {
  Tensor w = Tensor::from_vector({0.0f, 1.0f}).set_requires_grad();
  TrainStep step(std::make_unique<Adam>(std::vector<Tensor>{w}, AdamOptions(0.1)),
                 make_surgeon("bloop", SurgeonOptions().lambda(0.5)), TrainStepOptions().loss_names({"fit", "aux"}));
  step.step({square(w).sum(), w.sum()});
  const std::vector<float> before = w.to_vector();
  const StateDict state_before = step.state_dict();
  // A NaN loss value: log of a negative number.
  try {
    step.step({square(w).sum(), log(w - 5.0f).sum()});
    FAIL() << "expected NonFiniteError";
  } catch (const NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("step 1: loss 1 ('aux') is nan"), std::string::npos) << e.what();
    EXPECT_EQ(e.step(), 1);
    EXPECT_EQ(e.loss(), 1);
  }
  // A finite loss (0) with a NaN gradient: sqrt(|u|) at u = 0 (backward inf · 0).
  try {
    step.step({sqrt(abs(w - w.detach())).sum(), w.sum()});
    FAIL() << "expected NonFiniteError";
  } catch (const NonFiniteError& e) {
    EXPECT_NE(std::string(e.what()).find("step 1: the gradient of loss 0 ('fit') is not finite"), std::string::npos)
        << e.what();
    EXPECT_EQ(e.loss(), 0);
  }
  EXPECT_EQ(w.to_vector(), before);
  EXPECT_EQ(step.step_count(), 1);
  EXPECT_EQ(step.state_dict().serialize(), state_before.serialize()) << "optimizer and surgeon state untouched";
}

TEST(TrainStep, CheckpointResumesBitForBit) {
  Generator gen(9);
  const Tensor X = Tensor::normal({8, 4}, gen), y = Tensor::normal({8}, gen);
  auto losses = [&](const Tensor& w) {
    Tensor r = linear(X, w.reshape({1, 4})).reshape({8}) - y;
    return std::vector<Tensor>{square(r).mean(), square(w).sum() * 0.5f};
  };
  auto make = [&](Tensor w) {
    return std::make_unique<TrainStep>(std::make_unique<AdamW>(std::vector<Tensor>{w}, AdamWOptions(0.05)),
                                       make_surgeon("bloop", SurgeonOptions().lambda(0.3).rho(0.1)));
  };
  Tensor w1 = Tensor::zeros({4}).set_requires_grad();
  auto s1 = make(w1);
  for (int i = 0; i < 3; ++i) s1->step(losses(w1));
  Tensor w2 = w1.detach().clone().set_requires_grad();
  auto s2 = make(w2);
  s2->load_state_dict(StateDict::deserialize(s1->state_dict().serialize()));
  EXPECT_EQ(s2->step_count(), 3);
  EXPECT_EQ(s2->surgeon().step(), s1->surgeon().step());
  for (int i = 0; i < 4; ++i) {
    s1->step(losses(w1));
    s2->step(losses(w2));
  }
  EXPECT_EQ(w1.to_vector(), w2.to_vector());
}

TEST(TrainStep, ErrorsNameTheProblem) {
  Tensor w = Tensor::from_vector({1.0f}).set_requires_grad();
  TrainStep step(std::make_unique<SGD>(std::vector<Tensor>{w}, SGDOptions(0.1)), make_surgeon("mixed"),
                 TrainStepOptions().loss_names({"a", "b"}));
  try {
    step.step({w.sum()});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1 losses but 2 loss names"), std::string::npos) << e.what();
  }
  try {
    TrainStep bad(std::make_unique<SGD>(std::vector<Tensor>{w}, SGDOptions(0.1)), make_surgeon("mixed"),
                  TrainStepOptions().clip_grad_norm(-1));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("clip_grad_norm must be finite and >= 0"), std::string::npos) << e.what();
  }
}

TEST(TrainStep, ClipGradNormOverParameters) {
  Tensor a = Tensor::from_vector({3.0f}).set_requires_grad(), b = Tensor::from_vector({0.0f}).set_requires_grad();
  a.set_grad(Tensor::from_vector({3.0f}));
  b.set_grad(Tensor::from_vector({4.0f}));
  EXPECT_DOUBLE_EQ(clip_grad_norm(std::vector<Tensor>{a, b}, 2.5), 5.0);
  EXPECT_NEAR(a.grad().item(), 1.5, 1e-5);
  EXPECT_NEAR(b.grad().item(), 2.0, 1e-5);
  GradVector d = GradVector::from_vector({0.3f, 0.4f});
  EXPECT_NEAR(clip_grad_norm(d, 1.0), 0.5, 1e-7);
  EXPECT_EQ(d.to_vector(), (std::vector<float>{0.3f, 0.4f}));  // below the threshold: unchanged
}

// The fused Mixed path (one backward of L0 + Σ λk Lk) gives the direction of the per-loss path,
// without the per-gradient diagnostics, and takes exactly the same optimizer step.
TEST(TrainStep, FusedMixedMatchesPerLossMixed) {
  for (bool rescale : {false, true}) {
    Generator g(11);
    const Tensor x = Tensor::normal({16, 5}, g), y = Tensor::normal({16, 1}, g);
    const Tensor w0 = Tensor::normal({5, 1}, g);
    auto make = [&](bool fused) {
      Tensor w = w0.clone().set_requires_grad();
      auto step =
          std::make_unique<TrainStep>(std::make_unique<SGD>(std::vector<Tensor>{w}, SGDOptions(0.1)),
                                      make_surgeon("mixed", SurgeonOptions().lambdas({0.3, 2.0}).rescale(rescale)),
                                      TrainStepOptions().fused_mixed(fused));
      return std::make_pair(w, std::move(step));
    };
    auto [wa, a] = make(false);
    auto [wb, b] = make(true);
    for (int s = 0; s < 3; ++s) {
      auto losses = [&](const Tensor& w) {
        const Tensor r = sub(matmul(x, w), y);
        return std::vector<Tensor>{mean(square(r)), mul(sum(square(w)), 0.5f), mean(abs(r))};
      };
      const StepResult ra = a->step(losses(wa));
      const StepResult rb = b->step(losses(wb));
      EXPECT_NEAR(ra.grad_norm, rb.grad_norm, 1e-5 * ra.grad_norm);
      EXPECT_LT(max_abs_diff(a->direction().tensor(), b->direction().tensor()), 1e-5f);
      EXPECT_TRUE(std::isfinite(ra.diagnostics.cos_g0_gk.at(0)));
      EXPECT_TRUE(rb.diagnostics.cos_g0_gk.empty() || std::isnan(rb.diagnostics.cos_g0_gk.at(0)));
      EXPECT_EQ(rb.diagnostics.lambdas, (std::vector<double>{0.3, 2.0}));
    }
    EXPECT_LT(max_abs_diff(wa, wb), 1e-5f);
  }
}
