// Golden and hand-computed values for the stateful multi-task aggregators of issue 12 part 2
// (nash-mtl, gradvac, graddrop, moco) on TorchJD's matrix J = [[-4, 1, 1], [6, 1, 1]], GradDrop's
// sampling law, and for every stateful method a save / restore mid-run that must continue bit for
// bit (through a serialised checkpoint), next to a fresh surgeon that must not.
//
// Where a value is "hand-computed" it came from a 20-line double-precision script that implements
// the paper's formula directly (no Scalpel code); the arithmetic is given in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/random.h"
#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

namespace scalpel {
namespace {

using surgery::make_surgeon;
using surgery::SurgeonOptions;
using testing::gv;

const std::vector<std::vector<float>> kJ = {{-4, 1, 1}, {6, 1, 1}};

// `steps` combines of the same J on one surgeon; returns the last d (and weights).
std::vector<float> run(const std::string& method, SurgeonOptions o, int steps = 1, std::vector<double>* w = nullptr) {
  auto s = make_surgeon(method, o);
  std::vector<GradVector> g = {gv(kJ[0]), gv(kJ[1])};
  GradVector d;
  surgery::SurgeryDiagnostics diag;
  for (int i = 0; i < steps; ++i) s->combine(g, d, &diag);
  if (w) *w = diag.weights;
  return d.to_vector();
}

void expect_near(const std::vector<float>& d, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(d.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(d[i], want[i], tol) << what << " index " << i;
}

// ---- Nash-MTL -----------------------------------------------------------------------------------

TEST(MtlGoldenNash, TorchJDMaxNorm1) {
  // TorchJD's NashMTL(n_tasks=2) (max_norm = 1) on J: [0.0542, 0.7061, 0.7061], atol 1e-4.
  expect_near(run("nash-mtl", SurgeonOptions().set("max_norm", "1")), {0.0542, 0.7061, 0.7061}, 1e-4,
              "nash-mtl max_norm=1");
}

TEST(MtlGoldenNash, ExactBargainingSolution) {
  // G = [[18, -22], [-22, 38]]; α solves α_i (Gα)_i = 1: α = [0.591461152229, 0.407071482884]
  // (plain Newton on Gα − 1/α from α = 1, 60 iterations). d = Jᵀα = [0.076584288, 0.998532635 ×2],
  // ‖d‖² = 2 = T; with max_norm = 1, d/‖d‖ = [0.054153270, 0.706069198 ×2] (TorchJD's golden).
  std::vector<double> w;
  expect_near(run("nash-mtl", SurgeonOptions(), 1, &w), {0.076584288, 0.998532635, 0.998532635}, 1e-6, "nash d");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0], 0.591461152229, 1e-9);
  EXPECT_NEAR(w[1], 0.407071482884, 1e-9);
  expect_near(run("nash-mtl", SurgeonOptions().set("max_norm", "1")), {0.054153270, 0.706069198, 0.706069198}, 1e-6,
              "nash clipped");
  // A max_norm above ‖d‖ = √2 changes nothing.
  expect_near(run("nash-mtl", SurgeonOptions().set("max_norm", "1.5")), {0.076584288, 0.998532635, 0.998532635}, 1e-6,
              "nash max_norm=1.5");
}

TEST(MtlGoldenNash, UpdateEveryReusesAlpha) {
  // update_every = 2: step 0 solves on J, step 1 reuses that α on 2J (d doubles), step 2 solves on
  // 2J again (α halves, d back to the J value: Nash's d is invariant under scaling J).
  auto s = make_surgeon("nash-mtl", SurgeonOptions().set("update_every", "2"));
  std::vector<GradVector> g = {gv(kJ[0]), gv(kJ[1])};
  std::vector<GradVector> g2 = {gv({-8, 2, 2}), gv({12, 2, 2})};
  GradVector d;
  s->combine(g, d);
  expect_near(d.to_vector(), {0.076584288, 0.998532635, 0.998532635}, 1e-6, "step 0");
  s->combine(g2, d);
  expect_near(d.to_vector(), {2 * 0.076584288, 2 * 0.998532635, 2 * 0.998532635}, 2e-6, "step 1 (reused α)");
  s->combine(g2, d);
  expect_near(d.to_vector(), {0.076584288, 0.998532635, 0.998532635}, 1e-6, "step 2 (solved again)");
}

// ---- GradVac ------------------------------------------------------------------------------------

TEST(MtlGoldenGradVac, FirstCallIsTorchJDPCGrad) {
  // φ̂ = 0: PCGrad. TorchJD's PCGrad on J: d = [0.5848, 3.8012, 3.8012], weights [2.2222, 1.5789].
  std::vector<double> w;
  expect_near(run("gradvac", SurgeonOptions(), 1, &w), {0.5848, 3.8012, 3.8012}, 1e-4, "gradvac first call");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0], 2.2222, 1e-4);
  EXPECT_NEAR(w[1], 1.5789, 1e-4);
}

TEST(MtlGoldenGradVac, EmaTargetsHandComputed) {
  // β = 0.5, the same J every call. cos(g0, g1) = −22/√(18·38) = −0.841191; after call 1
  // φ̂ = 0.5·φ = −0.420596 (both pairs). Call 2: φ < φ̂, so g_i' = g_i + w g_j with
  // w = ‖g_i‖(φ̂√(1−φ²) − φ√(1−φ̂²))/(‖g_j‖√(1−φ̂²)); d = [1.006540436, 3.264403081 ×2].
  // Call 3 (φ̂ = −0.630893): d = [1.324534657, 2.859683164 ×2].
  expect_near(run("gradvac", SurgeonOptions().set("beta", "0.5"), 2), {1.006540436, 3.264403081, 3.264403081}, 2e-6,
              "call 2");
  expect_near(run("gradvac", SurgeonOptions().set("beta", "0.5"), 3), {1.324534657, 2.859683164, 2.859683164}, 2e-6,
              "call 3");
  // β = 0 keeps φ̂ = 0: PCGrad on every call.
  expect_near(run("gradvac", SurgeonOptions().set("beta", "0"), 3), {0.584795322, 3.801169591, 3.801169591}, 2e-6,
              "beta=0");
}

TEST(MtlGoldenGradVac, CorrectedCosineEqualsTarget) {
  // After a correction, cos(g_i', g_j) = φ̂_ij exactly (the paper's closed form). T = 2: d − g_j = g_i'.
  auto s = make_surgeon("gradvac", SurgeonOptions().set("beta", "0.5"));
  std::vector<GradVector> g = {gv(kJ[0]), gv(kJ[1])};
  GradVector d;
  surgery::SurgeryDiagnostics diag;
  s->combine(g, d, &diag);
  const double target = s->state_dict().get_double("gradvac.phi.0.1");
  EXPECT_NEAR(target, -0.420595512, 1e-9);
  s->combine(g, d, &diag);
  // g_0' = w00 g0 + w01 g1 with w00 = 1 (only g1 is added to g0); d weights = [1 + w10, 1 + w01].
  ASSERT_EQ(diag.weights.size(), 2u);
  const double w01 = diag.weights[1] - 1.0;
  std::vector<double> g0p(3);
  for (int p = 0; p < 3; ++p) g0p[p] = kJ[0][p] + w01 * kJ[1][p];
  double dot = 0, n0 = 0, n1 = 0;
  for (int p = 0; p < 3; ++p) dot += g0p[p] * kJ[1][p], n0 += g0p[p] * g0p[p], n1 += kJ[1][p] * kJ[1][p];
  EXPECT_NEAR(dot / std::sqrt(n0 * n1), target, 1e-9);
}

// ---- GradDrop -----------------------------------------------------------------------------------

TEST(MtlGoldenGradDrop, AgreeingSignsKeepTheSum) {
  // Columns 1 and 2 agree (purity 1): always kept, 1 + 1 = 2. Column 0 (−4, 6) keeps one sign:
  // 6 or −4. TorchJD's golden [6, 2, 2] is one draw of that coin.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto d = run("graddrop", SurgeonOptions().seed(seed));
    EXPECT_EQ(d[1], 2.0f);
    EXPECT_EQ(d[2], 2.0f);
    EXPECT_TRUE(d[0] == 6.0f || d[0] == -4.0f) << d[0];
  }
  // leak = 1 is the plain sum; leak = 0.25 keeps a quarter of the dropped side: 6 − 1 or −4 + 1.5.
  expect_near(run("graddrop", SurgeonOptions().set("leak", "1")), {2, 2, 2}, 0, "leak=1");
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto d = run("graddrop", SurgeonOptions().set("leak", "0.25").seed(seed));
    EXPECT_TRUE(d[0] == 5.0f || d[0] == -2.5f) << d[0];
    EXPECT_EQ(d[1], 2.0f);
  }
}

TEST(MtlGoldenGradDrop, KeepsThePositiveSideWithProbabilityPurity) {
  // Every element is (−4, 6) or (3, −1): purity P = ½(1 + 2/10) = 0.6 and ½(1 + 2/4) = 0.75. Over
  // n = 200000 elements the kept-positive fractions are 0.6 and 0.75 within 5σ (σ ≈ 0.0015).
  const int64_t n = 200000;
  std::vector<float> a(n), b(n);
  for (int64_t p = 0; p < n; ++p) {
    a[p] = p % 2 ? -4.0f : 3.0f;
    b[p] = p % 2 ? 6.0f : -1.0f;
  }
  auto s = make_surgeon("graddrop", SurgeonOptions().seed(5));
  std::vector<GradVector> g = {GradVector::from_vector(a), GradVector::from_vector(b)};
  GradVector d;
  s->combine(g, d);
  const auto v = d.to_vector();
  int64_t pos_odd = 0, pos_even = 0;
  for (int64_t p = 0; p < n; ++p) {
    if (p % 2) {
      ASSERT_TRUE(v[p] == 6.0f || v[p] == -4.0f) << p;
      pos_odd += v[p] > 0;
    } else {
      ASSERT_TRUE(v[p] == 3.0f || v[p] == -1.0f) << p;
      pos_even += v[p] > 0;
    }
  }
  const double sd = std::sqrt(0.25 / (n / 2));
  EXPECT_NEAR(static_cast<double>(pos_odd) / (n / 2), 0.6, 5 * sd);
  EXPECT_NEAR(static_cast<double>(pos_even) / (n / 2), 0.75, 5 * sd);
  // A new draw every step: the second call differs from the first somewhere.
  GradVector d2;
  s->combine(g, d2);
  EXPECT_NE(d2.to_vector(), v);
}

TEST(MtlGoldenGradDrop, SameBitsForAnyThreadCount) {
  Generator gen(17);
  std::vector<GradVector> g;
  for (int k = 0; k < 3; ++k) g.push_back(testing::random_gv(100003, gen));
  std::vector<std::vector<float>> out;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    auto s = make_surgeon("graddrop", SurgeonOptions().seed(3));
    GradVector d;
    s->combine(g, d);
    out.push_back(d.to_vector());
  }
  set_num_threads(0);
  EXPECT_EQ(out[0], out[1]);
}

// ---- MoCo ---------------------------------------------------------------------------------------

TEST(MtlGoldenMoCo, FirstStepsHandComputed) {
  // Defaults β = 0.5/√t, γ = 0.1/√t, ρ = 0, y = 0, λ = [½, ½]. Step 1: y = ½J, YᵀY = [[4.5, −5.5],
  // [−5.5, 9.5]], λ − 0.1·YᵀYλ = [0.55, 0.30] -> simplex [0.625, 0.375], d = [−0.125, 0.5, 0.5].
  // Steps 2 and 3 (same script): λ = [0.584515777, 0.415484223], d = [0.104793611, 0.676776695 ×2];
  // λ = [0.611023603, 0.388976397], d = [−0.084890921, 0.770083226 ×2].
  std::vector<double> w;
  expect_near(run("moco", SurgeonOptions(), 1, &w), {-0.125, 0.5, 0.5}, 1e-7, "step 1");
  EXPECT_NEAR(w[0], 0.625, 1e-12);
  EXPECT_NEAR(w[1], 0.375, 1e-12);
  expect_near(run("moco", SurgeonOptions(), 2, &w), {0.104793611, 0.676776695, 0.676776695}, 1e-6, "step 2");
  EXPECT_NEAR(w[0], 0.584515777, 1e-7);
  expect_near(run("moco", SurgeonOptions(), 3, &w), {-0.084890921, 0.770083226, 0.770083226}, 1e-6, "step 3");
  EXPECT_NEAR(w[1], 0.388976397, 1e-7);
}

TEST(MtlGoldenMoCo, RegularisationAndStepOptions) {
  // moco_beta = 1, moco_beta_sigma = 0: y = g. moco_gamma = 0: λ stays ½, d = mean = [1, 1, 1].
  expect_near(run("moco", SurgeonOptions().set("moco_beta", "1").set("moco_beta_sigma", "0").set("moco_gamma", "0"), 3),
              {1, 1, 1}, 1e-7, "gamma=0");
  // y = g, γ = 0.01, ρ = 10: λ − 0.01(Gλ + 10λ) = [0.5 − 0.01(−2 + 5), 0.5 − 0.01(8 + 5)] = [0.47, 0.37]
  // -> simplex [0.55, 0.45], d = 0.55 g0 + 0.45 g1 = [0.5, 1, 1].
  std::vector<double> w;
  expect_near(run("moco",
                  SurgeonOptions()
                      .set("moco_beta", "1")
                      .set("moco_beta_sigma", "0")
                      .set("moco_gamma", "0.01")
                      .set("moco_rho", "10"),
                  1, &w),
              {0.5, 1, 1}, 1e-6, "rho=10");
  EXPECT_NEAR(w[0], 0.55, 1e-12);
}

// ---- save / restore mid-run ---------------------------------------------------------------------

struct StatefulCase {
  std::string method;
  SurgeonOptions options;
};

std::vector<StatefulCase> stateful_cases() {
  return {
      {"nash-mtl", SurgeonOptions().set("update_every", "3").set("max_norm", "2")},
      {"gradvac", SurgeonOptions().set("beta", "0.3").seed(7)},
      {"graddrop", SurgeonOptions().set("leak", "0.1").seed(11)},
      {"moco", SurgeonOptions().set("moco_rho", "0.1")},
  };
}

// Six steps of four tasks with fresh random gradients each step (P = 9000, above the threaded size).
std::vector<std::vector<GradVector>> step_inputs() {
  Generator gen(23);
  std::vector<std::vector<GradVector>> steps(6);
  for (auto& s : steps) {
    const GradVector common = testing::random_gv(9000, gen);
    for (int k = 0; k < 4; ++k) {
      GradVector g = testing::random_gv(9000, gen);
      float* p = g.data();
      const float* c = common.data();
      for (int64_t i = 0; i < 9000; ++i) p[i] = (k % 2 ? -0.5f : 0.8f) * c[i] + p[i];
      s.push_back(std::move(g));
    }
  }
  return steps;
}

TEST(MtlStateful, SaveRestoreMidRunIsBitIdentical) {
  const auto steps = step_inputs();
  for (const auto& c : stateful_cases()) {
    // Straight run.
    auto a = make_surgeon(c.method, c.options);
    std::vector<std::vector<float>> want;
    GradVector d;
    for (const auto& g : steps) {
      a->combine(g, d);
      want.push_back(d.to_vector());
    }
    // Four steps, a checkpoint through bytes, a new surgeon, two more steps. Step 4 is mid-cycle
    // for nash-mtl's update_every = 3 (steps 0 and 3 solve, 4 and 5 reuse the saved α).
    auto b = make_surgeon(c.method, c.options);
    GradVector db;
    for (int i = 0; i < 4; ++i) b->combine(steps[i], db);
    const StateDict saved = StateDict::deserialize(b->state_dict().serialize());
    auto r = make_surgeon(c.method, c.options);
    r->load_state_dict(saved);
    EXPECT_EQ(r->step(), 4) << c.method;
    GradVector dr;
    for (int i = 4; i < 6; ++i) {
      r->combine(steps[i], dr);
      EXPECT_EQ(dr.to_vector(), want[i]) << c.method << " step " << i;
    }
    // Saving did not disturb the original, and the test can fail: a fresh surgeon (no state)
    // gives something else on steps 4 and 5.
    for (int i = 4; i < 6; ++i) b->combine(steps[i], db);
    EXPECT_EQ(db.to_vector(), want[5]) << c.method;
    auto fresh = make_surgeon(c.method, c.options);
    GradVector df;
    bool differs = false;
    for (int i = 4; i < 6; ++i) {
      fresh->combine(steps[i], df);
      differs = differs || df.to_vector() != want[i];
    }
    EXPECT_TRUE(differs) << c.method << ": the state made no difference; the test could not fail";
  }
}

TEST(MtlStateful, NashReuseStepsNeedTheSavedAlpha) {
  // Step 4 (mid-cycle of update_every = 3) reuses the α solved at step 3, so that α must come from
  // the state: the restored surgeon matches, and one whose saved α was edited does not.
  const auto steps = step_inputs();
  auto a = make_surgeon("nash-mtl", SurgeonOptions().set("update_every", "3"));
  GradVector d;
  for (int i = 0; i < 4; ++i) a->combine(steps[i], d);
  StateDict s = a->state_dict();
  auto r1 = make_surgeon("nash-mtl", SurgeonOptions().set("update_every", "3"));
  r1->load_state_dict(s);
  s.set_double("nash.alpha.0", 2 * s.get_double("nash.alpha.0"));
  auto r2 = make_surgeon("nash-mtl", SurgeonOptions().set("update_every", "3"));
  r2->load_state_dict(s);
  GradVector d1, d2;
  a->combine(steps[4], d);
  r1->combine(steps[4], d1);
  r2->combine(steps[4], d2);
  EXPECT_EQ(d1.to_vector(), d.to_vector());
  EXPECT_NE(d2.to_vector(), d.to_vector());
}

TEST(MtlStateful, LoadRejectsAnotherMethodsOrSeedsState) {
  auto g = make_surgeon("graddrop", SurgeonOptions().seed(1));
  auto other = make_surgeon("graddrop", SurgeonOptions().seed(2));
  EXPECT_THROW(other->load_state_dict(g->state_dict()), std::invalid_argument);
  auto m = make_surgeon("moco");
  EXPECT_THROW(m->load_state_dict(g->state_dict()), std::invalid_argument);
}

}  // namespace
}  // namespace scalpel
