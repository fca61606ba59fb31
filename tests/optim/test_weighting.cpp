// Loss weightings (optim/weighting/, issue 12 item 2): each on a toy whose fixed point is known,
// hand-computed weights, finite-difference checks of the combined loss, bit-identical save/restore
// mid-run for every stateful weighting, the option errors, and the weighting inside TrainStep.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "gradcheck.h"
#include "optim/train_step.h"
#include "optim/weighting/weighting.h"

using namespace scalpel;
using scalpel::weighting::LossWeighting;
using scalpel::weighting::make_weighting;
using scalpel::weighting::WeightingOptions;

namespace {

std::unique_ptr<LossWeighting> make(const std::string& name,
                                    const std::vector<std::pair<std::string, std::string>>& kv = {}) {
  WeightingOptions o;
  for (const auto& [k, v] : kv) o.set(k, v);
  return make_weighting(name, o);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

// Plain gradient step on a weighting's learned parameters (what the optimizer does in a run).
void sgd_on_parameters(LossWeighting& w, float lr) {
  NoGradGuard ng;
  for (Tensor p : w.parameters()) {  // a copy shares the storage
    const std::vector<float> g = p.grad().to_vector();
    float* d = p.data();
    for (size_t i = 0; i < g.size(); ++i) d[i] -= lr * g[i];
  }
  w.after_step();
}

// A deterministic, positive, wandering loss sequence for the save/restore tests.
std::vector<double> losses_at(int t, int K) {
  std::vector<double> L(K);
  for (int i = 0; i < K; ++i) L[i] = 1.0 + 0.5 * std::sin(0.7 * t + 1.3 * i) + 0.1 * i;
  return L;
}

std::vector<double> norms_at(int t, int K) {
  std::vector<double> n(K);
  for (int i = 0; i < K; ++i) n[i] = 1.0 + 0.3 * std::cos(0.4 * t + i) + i;
  return n;
}

// Gradient of weighting->combine(L) with respect to the loss tensors, at the values L.
std::vector<double> tape_weights(const LossWeighting& w, const std::vector<double>& L) {
  std::vector<Tensor> lt;
  for (double v : L) lt.push_back(Tensor::scalar(static_cast<float>(v)).set_requires_grad());
  const Tensor f = w.combine(lt);
  const std::vector<Tensor> g = grad({f}, lt);
  std::vector<double> out;
  for (const Tensor& t : g) out.push_back(t.item());
  return out;
}

}  // namespace

// ---- registry and option errors -----------------------------------------------------------------

TEST(Weighting, RegistryKnowsEveryMethodAndNoneIsNull) {
  const std::vector<std::string> names = weighting::weighting_names();
  for (const char* n : {"none", "uw", "dwa", "gls", "stch", "rlw", "famo", "gradnorm", "imtl-l", "imtl"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    EXPECT_FALSE(weighting::weighting_summary(n).empty()) << n;
  }
  EXPECT_EQ(make_weighting("none"), nullptr);
  for (const std::string& n : names) {
    if (n == "none") continue;
    auto w = make_weighting(n);
    ASSERT_NE(w, nullptr) << n;
    EXPECT_EQ(w->name(), n);
  }
}

TEST(Weighting, BadNamesOptionsAndTaskCountsNameTheOptionAndMethod) {
  std::string e = error_of([] { make("uniform"); });
  EXPECT_NE(e.find("unknown weighting 'uniform'"), std::string::npos) << e;
  EXPECT_NE(e.find("gradnorm"), std::string::npos) << e;  // the list of known names
  e = error_of([] { make("dwa", {{"tau", "-1"}}); });
  EXPECT_NE(e.find("'dwa'"), std::string::npos) << e;
  EXPECT_NE(e.find("'tau'"), std::string::npos) << e;
  EXPECT_NE(e.find("-1"), std::string::npos) << e;
  e = error_of([] { make("dwa", {{"tau", "0"}}); });  // τ > 0 strictly
  EXPECT_NE(e.find("'tau'"), std::string::npos) << e;
  e = error_of([] { make("dwa", {{"window", "2.5"}}); });
  EXPECT_NE(e.find("'window'"), std::string::npos) << e;
  e = error_of([] { make("uw", {{"tau", "2"}}); });
  EXPECT_NE(e.find("weighting 'uw': unknown option 'tau'"), std::string::npos) << e;
  EXPECT_NE(e.find("init"), std::string::npos) << e;
  e = error_of([] { make("stch", {{"mu", "abc"}}); });
  EXPECT_NE(e.find("'mu'"), std::string::npos) << e;
  EXPECT_NE(e.find("'stch'"), std::string::npos) << e;
  e = error_of([] { make("stch", {{"transform", "sqrt"}}); });
  EXPECT_NE(e.find("'transform'"), std::string::npos) << e;
  e = error_of([] { make("gradnorm", {{"alpha", "-0.5"}}); });
  EXPECT_NE(e.find("'alpha'"), std::string::npos) << e;
  e = error_of([] { make("famo", {{"w_lr", "nan"}}); });
  EXPECT_NE(e.find("'w_lr'"), std::string::npos) << e;
  e = error_of([] { make("gls", {{"seed", "1"}}); });
  EXPECT_NE(e.find("takes no options"), std::string::npos) << e;
  e = error_of([] { make_weighting("none", WeightingOptions().set("tau", "2")); });
  EXPECT_NE(e.find("'tau'"), std::string::npos) << e;
  // K = 1 and a changing K.
  for (const char* n : {"uw", "dwa", "gls", "stch", "rlw", "famo", "imtl-l"}) {
    auto w = make(n);
    e = error_of([&] { w->weigh({1.0}); });
    EXPECT_NE(e.find("needs at least 2 task losses, got 1"), std::string::npos) << n << ": " << e;
    EXPECT_NE(e.find(std::string("'") + n + "'"), std::string::npos) << e;
    w->weigh({1.0, 2.0});
    e = error_of([&] { w->weigh({1.0, 2.0, 3.0}); });
    EXPECT_NE(e.find("set up for 2 task losses, got 3"), std::string::npos) << n << ": " << e;
  }
  auto g = make("gls");
  e = error_of([&] { g->weigh({1.0, 0.0}); });
  EXPECT_NE(e.find("task loss 1 must be > 0"), std::string::npos) << e;
  EXPECT_EQ(g->step(), 0);  // nothing changed
  // A negative loss (the smooth MLP's log Lipschitz bound) is refused by the methods that take
  // logs or ratios, with the names of those that take any sign.
  for (const char* n : {"gls", "famo", "stch"}) {
    auto m = std::string(n) == "stch" ? make(n, {{"warmup", "0"}}) : make(n);
    e = error_of([&] { m->weigh({1.0, -0.5}); });
    EXPECT_NE(e.find("task loss 1 must be"), std::string::npos) << n << ": " << e;
    EXPECT_NE(e.find("hint: uw, imtl-l, dwa, rlw and stch with transform=none"), std::string::npos) << n << ": " << e;
  }
  auto gn = make("gradnorm");
  e = error_of([&] { gn->weigh({1.0, 2.0}); });
  EXPECT_NE(e.find("gradient norms"), std::string::npos) << e;
}

// ---- fixed points and hand-computed weights ------------------------------------------------------

// Shared θ, L1 = (θ-1)² + 0.5, L2 = 4(θ+1)² + 0.2: UW's scales reach exp(s_i) = L_i(θ*) at the joint
// optimum (∂f/∂s_i = 1 - exp(-s_i) L_i = 0), through TrainStep with the SGD optimizer over θ and s.
TEST(Weighting, UwLearnsLogVariancesEqualToTheTaskLosses) {
  Tensor theta = Tensor::from_vector({0.3f}).set_requires_grad();
  auto w = make("uw");
  w->ensure_tasks(2);
  std::vector<Tensor> params{theta, w->parameters()[0]};
  optim::TrainStep step(std::make_unique<optim::SGD>(params, optim::SGDOptions(0.05)),
                        surgery::make_surgeon("mixed", surgery::SurgeonOptions().lambda(1.0)),
                        optim::TrainStepOptions(), std::move(w));
  optim::StepResult r;
  for (int i = 0; i < 4000; ++i) {
    r = step.step({square(theta - 1.0f).sum() + 0.5f, square(theta + 1.0f).sum() * 4.0f + 0.2f});
  }
  const std::vector<float> s = step.weighting()->parameters()[0].to_vector();
  const double t = theta.item();
  const double L1 = (t - 1) * (t - 1) + 0.5, L2 = 4 * (t + 1) * (t + 1) + 0.2;
  EXPECT_NEAR(std::exp(s[0]), L1, 1e-3 * L1);
  EXPECT_NEAR(std::exp(s[1]), L2, 1e-3 * L2);
  // θ* is the stationary point of Σ L_i / L_i(θ*): Σ ∇L_i / L_i = 0.
  EXPECT_NEAR(2 * (t - 1) / L1 + 8 * (t + 1) / L2, 0.0, 1e-3);
  EXPECT_NEAR(r.loss_weights[0], 1.0 / L1, 1e-3 / L1);
  EXPECT_NEAR(r.loss_weights[1], 1.0 / L2, 1e-3 / L2);
}

TEST(Weighting, ImtlLScalesEveryLossToOne) {
  auto w = make("imtl-l");
  const std::vector<double> L{0.25, 4.0, 1.5};
  for (int i = 0; i < 3000; ++i) {
    w->weigh(L);
    sgd_on_parameters(*w, 0.05f);
  }
  const std::vector<double> wt = w->weigh(L).weights;
  for (size_t i = 0; i < L.size(); ++i) EXPECT_NEAR(wt[i] * L[i], 1.0, 1e-4) << i;
}

TEST(Weighting, GlsIsTheGeometricMeanWithWeightsLgeoOverKLi) {
  auto w = make("gls");
  const std::vector<double> L{0.5, 2.0, 8.0};
  const auto& r = w->weigh(L);
  const double geo = std::cbrt(0.5 * 2.0 * 8.0);  // = 2
  EXPECT_NEAR(r.loss, geo, 1e-12);
  EXPECT_NEAR(r.loss, std::exp((std::log(0.5) + std::log(2.0) + std::log(8.0)) / 3), 1e-12);
  for (size_t i = 0; i < L.size(); ++i) EXPECT_NEAR(r.weights[i], geo / (3 * L[i]), 1e-12) << i;
  const std::vector<double> tw = tape_weights(*w, L);
  for (size_t i = 0; i < L.size(); ++i) EXPECT_NEAR(tw[i], r.weights[i], 1e-5) << i;
}

TEST(Weighting, DwaWeightsAreKSoftmaxOfTheLossRatiosOverTau) {
  auto w = make("dwa", {{"tau", "2"}, {"window", "1"}});
  EXPECT_EQ(w->weigh({1.0, 2.0, 3.0}).weights, std::vector<double>({1.0, 1.0, 1.0}));  // window 0
  EXPECT_EQ(w->weigh({0.5, 1.8, 3.3}).weights, std::vector<double>({1.0, 1.0, 1.0}));  // window 1
  const std::vector<double> wt = w->weigh({9.0, 9.0, 9.0}).weights;                    // uses windows 0, 1
  // r = [0.5/1, 1.8/2, 3.3/3] = [0.5, 0.9, 1.1]; w = 3 e^{r/2} / Σ e^{r/2}.
  const double e0 = std::exp(0.25), e1 = std::exp(0.45), e2 = std::exp(0.55), s = e0 + e1 + e2;
  EXPECT_NEAR(wt[0], 3 * e0 / s, 1e-12);
  EXPECT_NEAR(wt[1], 3 * e1 / s, 1e-12);
  EXPECT_NEAR(wt[2], 3 * e2 / s, 1e-12);
  EXPECT_NEAR(wt[0] + wt[1] + wt[2], 3.0, 1e-12);
  // Windows of two steps average their losses: means [1, 3] then [2, 3] -> r = [2, 1].
  auto w2 = make("dwa", {{"window", "2"}});
  for (const auto& L : std::vector<std::vector<double>>{{0.5, 2.0}, {1.5, 4.0}, {1.0, 3.0}, {3.0, 3.0}}) {
    EXPECT_EQ(w2->weigh(L).weights, std::vector<double>({1.0, 1.0}));
  }
  const std::vector<double> w5 = w2->weigh({1.0, 1.0}).weights;
  const double a = std::exp(1.0), b = std::exp(0.5);
  EXPECT_NEAR(w5[0], 2 * a / (a + b), 1e-12);
  EXPECT_NEAR(w5[1], 2 * b / (a + b), 1e-12);
}

TEST(Weighting, RlwWeightsSumToOneAndAreReproducibleFromTheSeed) {
  auto a = make("rlw", {{"seed", "7"}}), b = make("rlw", {{"seed", "7"}}), c = make("rlw", {{"seed", "8"}});
  bool differs_from_other_seed = false, differs_between_steps = false;
  std::vector<double> prev;
  double mean0 = 0.0;
  const int n = 400;
  for (int t = 0; t < n; ++t) {
    const std::vector<double> wa = a->weigh({1.0, 2.0, 3.0}).weights;
    const std::vector<double> wb = b->weigh({5.0, 1.0, 0.1}).weights;  // the losses do not matter
    const std::vector<double> wc = c->weigh({1.0, 2.0, 3.0}).weights;
    EXPECT_EQ(wa, wb) << t;
    differs_from_other_seed = differs_from_other_seed || wa != wc;
    differs_between_steps = differs_between_steps || (!prev.empty() && prev != wa);
    EXPECT_NEAR(wa[0] + wa[1] + wa[2], 1.0, 1e-12);
    for (double x : wa) EXPECT_GT(x, 0.0);
    mean0 += wa[0] / n;
    prev = wa;
  }
  EXPECT_TRUE(differs_from_other_seed);
  EXPECT_TRUE(differs_between_steps);
  EXPECT_NEAR(mean0, 1.0 / 3.0, 0.03);  // exchangeable draws: every task 1/K on average
}

TEST(Weighting, StchApproachesTheTchebycheffMaxAsMuShrinks) {
  // transform=none, no warm-up: z = the first losses; then u = L - z = [0.3, -0.1, 0.5].
  const std::vector<double> z{1.0, 2.0, 0.5}, L{1.3, 1.9, 1.0};
  double prev_gap = HUGE_VAL;
  for (double mu : {1.0, 0.1, 0.01, 0.001}) {
    auto w = make("stch", {{"mu", std::to_string(mu)}, {"warmup", "0"}, {"transform", "none"}});
    w->weigh(z);
    const auto& r = w->weigh(L);
    const double gap = r.loss - 0.5;
    EXPECT_GE(gap, 0.0) << mu;                         // μ log Σ exp(u/μ) >= max u
    EXPECT_LE(gap, mu * std::log(3.0) + 1e-12) << mu;  // ... <= max u + μ log K
    EXPECT_LT(gap, prev_gap) << mu;
    prev_gap = gap;
    EXPECT_NEAR(r.weights[0] + r.weights[1] + r.weights[2], 1.0, 1e-12);
    if (mu <= 0.01) {
      EXPECT_GT(r.weights[2], 0.99) << mu;
    }  // the worst task takes the weight
  }
  // With the log transform: f -> max_i log(L_i / z_i) = log 2 (task 2).
  auto w = make("stch", {{"mu", "0.001"}, {"warmup", "0"}});
  w->weigh(z);
  EXPECT_NEAR(w->weigh(L).loss, std::log(2.0), 1e-3);
  // The nadir is the mean of the warm-up losses: after [1, 2] and [3, 4], z = [2, 3].
  auto ww = make("stch", {{"mu", "0.0001"}, {"warmup", "2"}, {"transform", "none"}});
  EXPECT_NEAR(ww->weigh({1.0, 2.0}).loss, 3.0, 1e-12);  // warm-up: Σ L
  ww->weigh({3.0, 4.0});
  EXPECT_NEAR(ww->weigh({2.5, 3.0}).loss, 0.5, 1e-3);  // max(2.5 - 2, 3 - 3)
}

// Two tasks on separate parameters, L1 = θ1², L2 = 10 θ2², from θ = (1, 3). Plain descent shrinks
// log L2 about ten times faster per step than log L1. FAMO's 1/L normalisation alone (logits frozen,
// w_lr = 0) overshoots the other way (log L1 falls about nine times faster), and only the Adam on
// the logits brings the two log-decreases together. γ = 0 here: the default γ = 0.001 decays ξ
// towards 0 and, with log-decreases of 1e-2 per step, holds it short of the exact balance. The
// losses of the FAMO runs stay above 1e-6, far from the 1e-8 floor in its log(L + 1e-8).
TEST(Weighting, FamoEqualisesTheLogLossDecrease) {
  auto decrease_ratio = [](const std::string& method, const std::string& w_lr) {
    auto w = method == "none" ? nullptr : make(method, {{"w_lr", w_lr}, {"gamma", "0"}});
    double t1 = 1.0, t2 = 3.0, ratio_sum = 0.0, min_loss = 1e300;
    const double lr = 0.002;
    const int steps = 1000, averaged = 200;
    for (int step = 0; step < steps; ++step) {
      const double L1 = t1 * t1, L2 = 10 * t2 * t2;
      min_loss = std::min({min_loss, L1, L2});
      std::vector<double> wt{1.0, 1.0};
      if (w) wt = w->weigh({L1, L2}).weights;
      t1 -= lr * wt[0] * 2 * t1;
      t2 -= lr * wt[1] * 20 * t2;
      const double d1 = std::log(L1) - std::log(t1 * t1), d2 = std::log(L2) - std::log(10 * t2 * t2);
      if (step >= steps - averaged) ratio_sum += d1 / d2;
    }
    if (w) {
      EXPECT_GT(min_loss, 1e-6) << "FAMO reads log(L + 1e-8): keep the losses well above 1e-8";
    }
    return ratio_sum / averaged;
  };
  const double plain = decrease_ratio("none", "0");
  const double frozen = decrease_ratio("famo", "0");
  const double famo = decrease_ratio("famo", "0.025");
  EXPECT_LT(plain, 0.15) << "plain descent: log L1 falls much slower than log L2";
  EXPECT_GT(frozen, 5.0) << "1/L weights with equal logits: log L1 falls much faster";
  EXPECT_NEAR(famo, 1.0, 0.02);
}

// GradNorm's learned weights drive w_i ‖∇_W L_i‖ to the target ratio r_i^α (fixed losses and
// norms, so the fixed point is known): with equal training rates, to equal weighted norms.
TEST(Weighting, GradNormDrivesWeightedGradientNormsToTheTargetRatio) {
  auto run = [](const std::vector<double>& first, const std::vector<double>& now, const std::vector<double>& n) {
    auto w = make("gradnorm", {{"alpha", "1.5"}});
    w->weigh(first, [&] { return n; });
    sgd_on_parameters(*w, 0.002f);
    std::vector<double> G(n.size());
    for (int i = 0; i < 4000; ++i) {
      const std::vector<double> wt = w->weigh(now, [&] { return n; }).weights;
      for (size_t k = 0; k < n.size(); ++k) G[k] = wt[k] * n[k];
      sgd_on_parameters(*w, 0.002f);
    }
    const std::vector<float> wv = w->parameters()[0].to_vector();
    double s = 0.0;
    for (float x : wv) s += x;
    EXPECT_NEAR(s, static_cast<double>(n.size()), 1e-5);  // renormalised to sum K
    return G;
  };
  // r = 1: equal weighted norms, w ∝ 1/n = [1.6, 0.4].
  std::vector<double> G = run({1.0, 1.0}, {1.0, 1.0}, {1.0, 4.0});
  EXPECT_NEAR(G[0] / G[1], 1.0, 0.02);
  // L̃ = [0.5, 1]: r = [2/3, 4/3], target G1/G2 = (r1/r2)^1.5 = 0.5^1.5.
  G = run({1.0, 1.0}, {0.5, 1.0}, {2.0, 1.0});
  EXPECT_NEAR(G[0] / G[1], std::pow(0.5, 1.5), 0.03);
}

// ---- the combined loss on the tape ---------------------------------------------------------------

TEST(Weighting, CombinedLossGradcheckAndWeightsMatchTheTape) {
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::string>> options;
    int warm;  // weigh() calls before the check (past STCH's warm-up)
  };
  const std::vector<Case> cases{{"uw", {{"init", "0.3"}}, 1},
                                {"imtl-l", {{"init", "-0.2"}}, 1},
                                {"gls", {}, 1},
                                {"stch", {{"mu", "0.5"}, {"warmup", "2"}}, 3},
                                {"stch", {{"mu", "0.5"}, {"warmup", "0"}, {"transform", "none"}}, 1},
                                {"famo", {}, 3},
                                {"dwa", {{"window", "1"}}, 3},
                                {"rlw", {}, 1}};
  for (const Case& c : cases) {
    auto w = make(c.name, c.options);
    for (int t = 0; t < c.warm; ++t) w->weigh(losses_at(t, 3));
    const std::vector<double> L{0.8, 1.7, 1.2};
    const std::vector<Tensor> lt{Tensor::scalar(0.8f), Tensor::scalar(1.7f), Tensor::scalar(1.2f)};
    // Finite differences of f with respect to the losses and the learned parameters.
    std::vector<std::pair<std::string, Tensor>> named{{"L0", lt[0]}, {"L1", lt[1]}, {"L2", lt[2]}};
    for (const Tensor& p : w->parameters()) named.emplace_back("s", p);
    for (auto& [n, t] : named) t.set_requires_grad(true);
    // FAMO holds c = Σ z_i / L_i constant by design (the authors' detach), so finite differences of
    // its f in L, which move c too, are not its weights; its weights are checked below.
    if (c.name != "famo") {
      EXPECT_TRUE(scalpel::testing::gradcheck_tensors(
          c.name, [&] { return w->combine(lt); }, named,
          scalpel::testing::GradcheckOptions().set_eps(1e-3).set_atol(2e-3)))
          << c.name;
    }
    // The weights weigh() returns are ∂f/∂L_i of the same f (dwa, rlw and famo build f from the
    // state of the last weigh(), so weigh first).
    const std::vector<double> wt = w->weigh(L).weights;
    const std::vector<double> tw = tape_weights(*w, L);
    for (size_t i = 0; i < L.size(); ++i)
      EXPECT_NEAR(tw[i], wt[i], 1e-5 * (1 + std::fabs(wt[i]))) << c.name << " " << i;
  }
}

// uw and imtl-l write ∂f/∂s into their parameter's .grad: the same as the tape's.
TEST(Weighting, LearnedScaleGradientsMatchTheTape) {
  for (const char* name : {"uw", "imtl-l"}) {
    auto w = make(name, {{"init", "0.4"}});
    const std::vector<double> L{0.7, 2.5};
    w->weigh(L);
    const std::vector<float> g = w->parameters()[0].grad().to_vector();
    const Tensor f = w->combine({Tensor::scalar(0.7f), Tensor::scalar(2.5f)});
    const std::vector<float> tg = grad({f}, w->parameters())[0].to_vector();
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], tg[i], 1e-5) << name << " " << i;
  }
}

// ---- state ---------------------------------------------------------------------------------------

// Every stateful weighting, stopped at step 10, saved through a serialised StateDict and restored
// into a fresh instance, continues with the same weights bit for bit (learned parameters included).
TEST(Weighting, SaveRestoreMidRunIsBitIdentical) {
  const std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> cases{
      {"uw", {}},
      {"imtl-l", {}},
      {"dwa", {{"window", "3"}}},
      {"stch", {{"warmup", "4"}, {"mu", "0.3"}}},
      {"rlw", {{"seed", "11"}}},
      {"famo", {}},
      {"gradnorm", {}}};
  const int K = 3;
  for (const auto& [name, opts] : cases) {
    auto a = make(name, opts);
    auto step = [&](LossWeighting& w, int t) {
      const std::vector<double> n = norms_at(t, K);
      const std::vector<double> out = w.weigh(losses_at(t, K), [&] { return n; }).weights;
      if (!w.parameters().empty()) sgd_on_parameters(w, 0.01f);
      return out;
    };
    for (int t = 0; t < 10; ++t) step(*a, t);
    const std::string bytes = a->state_dict().serialize();
    std::vector<std::vector<double>> expect;
    for (int t = 10; t < 20; ++t) expect.push_back(step(*a, t));
    auto b = make(name, opts);
    b->load_state_dict(StateDict::deserialize(bytes));
    EXPECT_EQ(b->step(), 10) << name;
    bool changed = false;
    for (int t = 10; t < 20; ++t) {
      const std::vector<double> got = step(*b, t);
      EXPECT_EQ(got, expect[t - 10]) << name << " step " << t;
      changed = changed || got != expect[0];
    }
    EXPECT_TRUE(changed) << name << ": the weights never moved, so the test shows nothing";
    // A state of another method is refused, naming both.
    auto other = make(name == "uw" ? "famo" : "uw");
    const std::string e = error_of([&] { other->load_state_dict(StateDict::deserialize(bytes)); });
    EXPECT_NE(e.find("'" + name + "'"), std::string::npos) << e;
  }
}

// ---- inside TrainStep ----------------------------------------------------------------------------

namespace {

// A tiny two-task model: shared w (2), heads h1, h2; L1 = (h1·w - 1)² + 0.1, L2 = (h2·w + 2)² + 0.3.
struct TwoTask {
  Tensor w = Tensor::from_vector({0.5f, -0.3f}).set_requires_grad();
  Tensor h1 = Tensor::from_vector({1.0f, 0.2f}).set_requires_grad();
  Tensor h2 = Tensor::from_vector({-0.4f, 0.8f}).set_requires_grad();
  std::vector<Tensor> losses() const {
    return {square(dot(h1, w) - 1.0f) + 0.1f, square(dot(h2, w) + 2.0f) * 3.0f + 0.3f};
  }
  std::vector<Tensor> params() const { return {w, h1, h2}; }
};

std::unique_ptr<optim::TrainStep> make_step(const TwoTask& m, const std::string& weighting, const std::string& method) {
  auto w = make_weighting(weighting);
  std::vector<Tensor> params = m.params();
  if (w) {
    w->ensure_tasks(2);
    for (const Tensor& p : w->parameters()) params.push_back(p);
  }
  return std::make_unique<optim::TrainStep>(std::make_unique<optim::Adam>(params, optim::AdamOptions(0.01)),
                                            surgery::make_surgeon(method, surgery::SurgeonOptions().lambda(1.0)),
                                            optim::TrainStepOptions().weighting_group({m.w}), std::move(w));
}

}  // namespace

TEST(WeightingTrainStep, CheckpointMidRunContinuesBitIdentically) {
  for (const char* weighting : {"uw", "famo", "gradnorm", "stch", "dwa", "rlw", "gls", "imtl-l"}) {
    for (const char* method : {"mixed", "mgda"}) {
      TwoTask a;
      auto sa = make_step(a, weighting, method);
      for (int i = 0; i < 6; ++i) sa->step(a.losses());
      const std::string bytes = sa->state_dict().serialize();
      const std::vector<float> w6 = a.w.to_vector(), h16 = a.h1.to_vector(), h26 = a.h2.to_vector();
      std::vector<std::vector<double>> expect;
      for (int i = 0; i < 6; ++i) expect.push_back(sa->step(a.losses()).loss_weights);
      TwoTask b;
      {
        NoGradGuard ng;
        std::copy(w6.begin(), w6.end(), b.w.data());
        std::copy(h16.begin(), h16.end(), b.h1.data());
        std::copy(h26.begin(), h26.end(), b.h2.data());
      }
      auto sb = make_step(b, weighting, method);
      sb->load_state_dict(StateDict::deserialize(bytes));
      for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(sb->step(b.losses()).loss_weights, expect[i]) << weighting << " " << method << " step " << i;
      }
      EXPECT_EQ(a.w.to_vector(), b.w.to_vector()) << weighting << " " << method;
      EXPECT_EQ(a.h2.to_vector(), b.h2.to_vector()) << weighting << " " << method;
      if (!sa->weighting()->parameters().empty()) {
        EXPECT_EQ(sa->weighting()->parameters()[0].to_vector(), sb->weighting()->parameters()[0].to_vector())
            << weighting;
      }
    }
  }
}

// The step scales each per-loss gradient by its weight: with mixed (λ = 1) d = Σ w_k ∇L_k.
TEST(WeightingTrainStep, DirectionIsTheWeightedSumAndGradNormSeesTheGroup) {
  TwoTask m;
  // The reference gradients on a graph of their own (a backward frees the graph it ran on).
  const std::vector<GradVector> g = optim::per_loss_gradients(m.losses(), m.params());
  auto step = make_step(m, "gls", "mixed");
  const optim::StepResult r = step->step(m.losses());
  ASSERT_EQ(r.loss_weights.size(), 2u);
  const double l0 = r.losses[0], l1 = r.losses[1], geo = std::sqrt(l0 * l1);
  EXPECT_NEAR(r.weighted_loss, geo, 1e-6 * geo);
  for (int64_t i = 0; i < g[0].size(); ++i) {
    const double want = geo / (2 * l0) * g[0][i] + geo / (2 * l1) * g[1][i];
    EXPECT_NEAR(step->direction()[i], want, 1e-5 * (1 + std::fabs(want))) << i;
  }
  // GradNorm gets ‖∇_w L_k‖ of the group {w} only (the first two entries of the gradients).
  TwoTask m2;
  auto gn = make_step(m2, "gradnorm", "mixed");
  gn->step(m2.losses());
  const std::vector<float> gw = gn->weighting()->parameters()[0].grad().to_vector();
  const double n0 = std::hypot(g[0][0], g[0][1]), n1 = std::hypot(g[1][0], g[1][1]);
  EXPECT_NEAR(std::fabs(gw[0]), n0, 1e-4 * n0);
  EXPECT_NEAR(std::fabs(gw[1]), n1, 1e-4 * n1);
}

TEST(WeightingTrainStep, LearnedParametersMustBeInTheOptimizer) {
  TwoTask m;
  auto w = make_weighting("uw");
  w->ensure_tasks(2);
  const std::string e = error_of([&] {
    optim::TrainStep s(std::make_unique<optim::SGD>(m.params(), optim::SGDOptions(0.1)), surgery::make_surgeon("mixed"),
                       optim::TrainStepOptions(), std::move(w));
  });
  EXPECT_NE(e.find("does not hold the parameters of weighting 'uw'"), std::string::npos) << e;
  auto w2 = make_weighting("uw");  // parameters not created yet
  const std::string e2 = error_of([&] {
    optim::TrainStep s(std::make_unique<optim::SGD>(m.params(), optim::SGDOptions(0.1)), surgery::make_surgeon("mixed"),
                       optim::TrainStepOptions(), std::move(w2));
  });
  EXPECT_NE(e2.find("ensure_tasks"), std::string::npos) << e2;
  // gradnorm cannot run on the fused single backward (no per-loss gradients).
  TwoTask m3;
  auto g = make_weighting("gradnorm");
  g->ensure_tasks(2);
  std::vector<Tensor> params = m3.params();
  params.push_back(g->parameters()[0]);
  optim::TrainStep s(std::make_unique<optim::SGD>(params, optim::SGDOptions(0.1)), surgery::make_surgeon("mixed"),
                     optim::TrainStepOptions().fused_mixed(true), std::move(g));
  const std::string e3 = error_of([&] { s.step(m3.losses()); });
  EXPECT_NE(e3.find("fused-mixed"), std::string::npos) << e3;
}

// The fused single backward of mixed gives the same d as the per-loss path under a weighting.
TEST(WeightingTrainStep, FusedMixedAppliesTheWeights) {
  TwoTask a, b;
  auto make_fused = [](const TwoTask& m, bool fused) {
    return std::make_unique<optim::TrainStep>(std::make_unique<optim::SGD>(m.params(), optim::SGDOptions(0.1)),
                                              surgery::make_surgeon("mixed", surgery::SurgeonOptions().lambda(0.5)),
                                              optim::TrainStepOptions().fused_mixed(fused), make_weighting("gls"));
  };
  auto sa = make_fused(a, false), sb = make_fused(b, true);
  sa->step(a.losses());
  sb->step(b.losses());
  for (int64_t i = 0; i < sa->direction().size(); ++i) {
    EXPECT_NEAR(sa->direction()[i], sb->direction()[i], 1e-5) << i;
  }
}
