// Surgery methods against every reference vector of ALGORITHMS.md §2-3 (to 1e-5), and the
// single-level invariants: Bloop orthogonality with and without eps, λ = 0, ρ = 1, g0 = 0.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

using namespace scalpel;
using namespace scalpel::surgery;
using scalpel::testing::ema_state;
using scalpel::testing::gv;
using scalpel::testing::vec_near;

namespace {

const std::vector<float> kG0{1, 2, 3}, kG1{3, -1, 2}, kEBefore{0.5f, 0.5f, 0.5f}, kEAuxBefore{-1, 0, 1};

// One combine() of `method` from the reference EMAs (e_before, and e_aux_before for PCGrad).
std::vector<float> reference_step(const std::string& method, SurgeonOptions opts, SurgeryDiagnostics* diag = nullptr,
                                  const std::vector<float>& g0 = kG0, const std::vector<float>& g1 = kG1) {
  auto s = make_surgeon(method, opts);
  const double rho = opts.rho().value_or(-1);
  if (rho != 1.0) {  // ρ = 1 keeps no EMA: the reference's e_before is irrelevant there
    std::vector<std::vector<float>> emas{kEBefore};
    if (s->name() == "pcgrad") emas.push_back(kEAuxBefore);
    s->load_state_dict(ema_state(s->name(), emas));
  }
  GradVector a = gv(g0), b = gv(g1), d;
  s->combine({&a, &b}, {}, d, diag);
  return d.to_vector();
}

constexpr double kTol = 1e-5;

}  // namespace

TEST(SurgeryReference, Rho01Lambda05) {
  const auto o = SurgeonOptions().rho(0.1).lambda(0.5);
  SurgeryDiagnostics diag;
  EXPECT_TRUE(vec_near(reference_step("bloop", o, &diag), {1.966019, 0.868932, 3.271845}, kTol, "bloop"));
  EXPECT_NEAR(diag.ratio, 1.941748, 1e-6);
  EXPECT_NEAR(diag.ema_norm, std::sqrt(0.55 * 0.55 + 0.65 * 0.65 + 0.75 * 0.75), 1e-6);
  SurgeryDiagnostics db_diag;
  EXPECT_TRUE(vec_near(reference_step("db", o, &db_diag), {1.966019, 0.868932, 3.271845}, kTol, "db (r < 1/λ)"));
  EXPECT_FALSE(db_diag.db_clipped);
  EXPECT_NEAR(db_diag.ratio, 1.941748, 1e-6);
  EXPECT_TRUE(vec_near(reference_step("bloop", SurgeonOptions(o).ratio_only(true)), {1.529126, -0.441748, 1.087379},
                       kTol, "ratio_only"));
  SurgeryDiagnostics pc_diag;
  EXPECT_TRUE(vec_near(reference_step("pcgrad", o, &pc_diag), {2.5, 1.5, 4.0}, kTol, "pcgrad (no conflict)"));
  EXPECT_FALSE(pc_diag.pcgrad_projected);
  EXPECT_TRUE(vec_near(reference_step("mixed", o), {2.5, 1.5, 4.0}, kTol, "mixed"));
}

TEST(SurgeryReference, Rho1Lambda05) {
  const auto o = SurgeonOptions().rho(1.0).lambda(0.5);
  for (const char* m : {"bloop", "dynamic-barrier"}) {
    EXPECT_TRUE(vec_near(reference_step(m, o), {2.25, 1.0, 3.25}, kTol, m));
  }
  EXPECT_TRUE(
      vec_near(reference_step("bloop", SurgeonOptions(o).ratio_only(true)), {2.25, 1.0, 3.25}, kTol, "ratio_only"));
  EXPECT_TRUE(vec_near(reference_step("pcgrad", o), {2.5, 1.5, 4.0}, kTol, "pcgrad"));
  EXPECT_TRUE(vec_near(reference_step("mixed", o), {2.5, 1.5, 4.0}, kTol, "mixed"));
}

TEST(SurgeryReference, Rho1Lambda4) {
  const auto o = SurgeonOptions().rho(1.0).lambda(4.0);
  EXPECT_TRUE(vec_near(reference_step("bloop", o), {11, -6, 5}, kTol, "bloop"));
  EXPECT_TRUE(vec_near(reference_step("bloop", SurgeonOptions(o).ratio_only(true)), {11, -6, 5}, kTol, "ratio_only"));
  SurgeryDiagnostics diag;
  EXPECT_TRUE(vec_near(reference_step("db", o, &diag), {12, -4, 8}, kTol, "db"));
  EXPECT_TRUE(diag.db_clipped);
  EXPECT_TRUE(vec_near(reference_step("pcgrad", o), {13, -2, 11}, kTol, "pcgrad"));
  EXPECT_TRUE(vec_near(reference_step("mixed", o), {13, -2, 11}, kTol, "mixed"));
}

TEST(SurgeryReference, ConflictRho1Lambda1) {
  const auto o = SurgeonOptions().rho(1.0).lambda(1.0);
  SurgeryDiagnostics diag;
  EXPECT_TRUE(vec_near(reference_step("pcgrad", o, &diag, {1, 0}, {-1, 1}), {0.5, 1.5}, kTol, "pcgrad"));
  EXPECT_TRUE(diag.pcgrad_projected);
  EXPECT_TRUE(vec_near(reference_step("db", o, nullptr, {1, 0}, {-1, 1}), {1, 1}, kTol, "db"));
  EXPECT_TRUE(vec_near(reference_step("mixed", o, nullptr, {1, 0}, {-1, 1}), {0, 1}, kTol, "mixed"));
}

TEST(SurgeryReference, ZeroMainGradientWithZeroInit) {
  // g0 = 0, zero init, ρ = 0.01, λ = 0.3, g1 = (1, 2): d = λ g1 (the paper's footnote).
  auto s = make_surgeon("bloop", SurgeonOptions().rho(0.01).lambda(0.3).ema_init(EmaInit::Zeros));
  GradVector g0 = gv({0, 0}), g1 = gv({1, 2}), d;
  SurgeryDiagnostics diag;
  s->combine({&g0, &g1}, {}, d, &diag);
  EXPECT_TRUE(vec_near(d.to_vector(), {0.3, 0.6}, kTol, "bloop"));
  EXPECT_EQ(d.to_vector(), (std::vector<float>{static_cast<float>(0.3 * 1.0f), static_cast<float>(0.3 * 2.0f)}));
  EXPECT_EQ(diag.ratio, 0.0);
}

TEST(SurgeryReference, ProjectThenUpdateProjectsOnTheOldEma) {
  // The paper's Algorithm 1 order: r uses e_before, then e is updated.
  auto s = make_surgeon("bloop", SurgeonOptions().rho(0.1).lambda(0.5).ema_order(EmaOrder::ProjectThenUpdate));
  s->load_state_dict(ema_state("bloop", {kEBefore}));
  GradVector a = gv(kG0), b = gv(kG1), d;
  SurgeryDiagnostics diag;
  s->combine({&a, &b}, {}, d, &diag);
  const double r = (0.5 * 3 - 0.5 * 1 + 0.5 * 2) / (0.75 + 1e-7);  // <e_before, g1>/(‖e_before‖² + eps)
  EXPECT_NEAR(diag.ratio, r, 1e-9);
  std::vector<double> expect(3);
  for (int i = 0; i < 3; ++i) expect[i] = kG0[i] + 0.5 * (kG1[i] - r * 0.5);
  EXPECT_TRUE(vec_near(d.to_vector(), expect, kTol, "project_then_update"));
  EXPECT_TRUE(vec_near(scalpel::testing::ema_of(*s, 0), {0.55, 0.65, 0.75}, 1e-7, "EMA after the step"));
}

TEST(SurgeryReference, RescaleDividesByOnePlusLambda) {
  const auto o = SurgeonOptions().rho(1.0).lambda(4.0).rescale(true);
  EXPECT_TRUE(vec_near(reference_step("bloop", o), {11 / 5.0, -6 / 5.0, 5 / 5.0}, kTol, "bloop"));
  EXPECT_TRUE(vec_near(reference_step("db", o), {12 / 5.0, -4 / 5.0, 8 / 5.0}, kTol, "db"));
  EXPECT_TRUE(vec_near(reference_step("pcgrad", o), {13 / 5.0, -2 / 5.0, 11 / 5.0}, kTol, "pcgrad"));
  EXPECT_TRUE(vec_near(reference_step("mixed", o), {13 / 5.0, -2 / 5.0, 11 / 5.0}, kTol, "mixed"));
}

// ---- invariants -----------------------------------------------------------------------------------

namespace {
// Small gradients so that ‖e‖² is comparable to eps and the eps term is measurable.
struct OrthoCase {
  GradVector g0, g1;
  std::vector<float> e_before;
};
OrthoCase ortho_case(uint64_t seed, float scale) {
  Generator gen(seed);
  OrthoCase c{scalpel::testing::random_gv(50, gen, scale), scalpel::testing::random_gv(50, gen, scale), {}};
  c.e_before = scalpel::testing::random_gv(50, gen, scale).to_vector();
  return c;
}
}  // namespace

TEST(SurgeryInvariants, BloopOrthogonalityMatchesTheEpsFormula) {
  using scalpel::testing::dot_d;
  for (uint64_t seed : {1u, 2u, 3u}) {
    OrthoCase c = ortho_case(seed, 1e-4f);  // ‖e‖² ≈ 50 · 1e-8 = 5e-7, comparable to eps
    const double lambda = 0.7, eps = 1e-7;
    auto s = make_surgeon("bloop", SurgeonOptions().rho(0.3).lambda(lambda).eps(eps));
    s->load_state_dict(ema_state("bloop", {c.e_before}));
    GradVector d;
    s->combine({&c.g0, &c.g1}, {}, d);
    const std::vector<float> e = scalpel::testing::ema_of(*s, 0);
    const double ee = dot_d(e, e), g1e = dot_d(c.g1.to_vector(), e);
    const double expected = lambda * g1e * eps / (ee + eps);
    const double actual = dot_d(scalpel::testing::sub(d.to_vector(), c.g0.to_vector()), e);
    EXPECT_GT(std::abs(expected), 1e-3 * lambda * std::abs(g1e)) << "the eps term must be measurable here";
    EXPECT_NEAR(actual, expected, 1e-4 * std::abs(expected)) << "seed " << seed;
  }
}

TEST(SurgeryInvariants, BloopOrthogonalityIsExactWithZeroEps) {
  using scalpel::testing::dot_d;
  using scalpel::testing::norm_d;
  for (uint64_t seed : {4u, 5u, 6u}) {
    for (float scale : {1e-4f, 1.0f, 1e6f}) {
      OrthoCase c = ortho_case(seed, scale);
      const double lambda = 0.7;
      auto s = make_surgeon("bloop", SurgeonOptions().rho(0.3).lambda(lambda).eps(0.0));
      s->load_state_dict(ema_state("bloop", {c.e_before}));
      GradVector d;
      s->combine({&c.g0, &c.g1}, {}, d);
      const std::vector<float> e = scalpel::testing::ema_of(*s, 0);
      const std::vector<float> diff = scalpel::testing::sub(d.to_vector(), c.g0.to_vector());
      // Zero up to float32 rounding of d (a few ulps of each element).
      const double bound = 1e-6 * norm_d(d.to_vector()) * norm_d(e);
      EXPECT_LE(std::abs(dot_d(diff, e)), bound) << "seed " << seed << " scale " << scale;
      EXPECT_GT(std::abs(dot_d(c.g1.to_vector(), e)), 1e3 * bound) << "g1 must have a component along e";
    }
  }
}

TEST(SurgeryInvariants, LambdaZeroGivesTheMainGradientForEveryMethod) {
  Generator gen(11);
  GradVector g0 = scalpel::testing::random_gv(300, gen), g1 = scalpel::testing::random_gv(300, gen);
  g1.axpy(-3.0f, g0);  // strong conflict, so PCGrad and DB would act if λ were not 0
  // The main + auxiliary methods only: the multi-task aggregators weigh every task alike and do not use λ.
  for (const std::string& m : main_aux_surgeon_names()) {
    for (double rho : {1.0, 0.2}) {
      for (bool rescale : {false, true}) {
        auto s = make_surgeon(m, SurgeonOptions().lambda(0.0).rho(rho).rescale(rescale).ema_init(EmaInit::Random));
        GradVector d;
        SurgeryDiagnostics diag;
        for (int step = 0; step < 2; ++step) {
          s->combine({&g0, &g1}, {}, d, &diag);
          EXPECT_EQ(d.to_vector(), g0.to_vector()) << m << " rho " << rho << " rescale " << rescale;
          EXPECT_FALSE(diag.db_clipped);
          EXPECT_FALSE(diag.pcgrad_projected);
        }
      }
    }
  }
}

TEST(SurgeryInvariants, DynamicBarrierWithLambdaZeroAndZeroMainGradient) {
  // λ = 0 must not divide by zero, even when the EMA (and g0) are zero.
  auto s = make_surgeon("db", SurgeonOptions().lambda(0.0).eps(0.0));
  GradVector g0 = gv({0, 0, 0}), g1 = gv({1, -2, 3}), d;
  SurgeryDiagnostics diag;
  s->combine({&g0, &g1}, {}, d, &diag);
  EXPECT_EQ(d.to_vector(), (std::vector<float>{0, 0, 0}));
  EXPECT_TRUE(std::isfinite(diag.ratio));
}

TEST(SurgeryInvariants, RhoOneMakesTheEmaEqualTheMainGradient) {
  Generator gen(12);
  GradVector a0 = scalpel::testing::random_gv(40, gen), a1 = scalpel::testing::random_gv(40, gen);
  GradVector b0 = scalpel::testing::random_gv(40, gen), b1 = scalpel::testing::random_gv(40, gen);
  // project_then_update keeps a buffer even at ρ = 1: after each step it holds exactly that step's g0.
  auto s = make_surgeon("bloop", SurgeonOptions().rho(1.0).lambda(0.5).ema_order(EmaOrder::ProjectThenUpdate));
  GradVector d;
  s->combine({&a0, &a1}, {}, d);
  EXPECT_EQ(scalpel::testing::ema_of(*s, 0), a0.to_vector());
  s->combine({&b0, &b1}, {}, d);
  EXPECT_EQ(scalpel::testing::ema_of(*s, 0), b0.to_vector());
  // update_then_project at ρ = 1 projects on the batch gradient itself (no buffer kept): the first
  // step of project_then_update with first_grad init projects on the same vector.
  auto naive = make_surgeon("bloop", SurgeonOptions().rho(1.0).lambda(0.5));
  auto pthen = make_surgeon("bloop", SurgeonOptions().rho(1.0).lambda(0.5).ema_order(EmaOrder::ProjectThenUpdate));
  GradVector dn, dp;
  SurgeryDiagnostics diag;
  naive->combine({&a0, &a1}, {}, dn, &diag);
  pthen->combine({&a0, &a1}, {}, dp);
  EXPECT_NEAR(diag.ema_norm, diag.g0_norm, 1e-12 * diag.g0_norm);
  EXPECT_NEAR(diag.cos_e_g0, 1.0, 1e-12);
  const std::vector<float> vn = dn.to_vector(), vp = dp.to_vector();
  for (size_t i = 0; i < vn.size(); ++i) EXPECT_NEAR(vn[i], vp[i], 1e-5 * (1 + std::abs(vp[i]))) << i;
}

TEST(SurgeryInvariants, ScalingTheEmaLeavesTheProjectionUnchanged) {
  Generator gen(13);
  OrthoCase c = ortho_case(14, 1.0f);
  GradVector d1, d2;
  auto s1 = make_surgeon("bloop", SurgeonOptions().rho(0.0).lambda(0.8).eps(0.0));
  auto s2 = make_surgeon("bloop", SurgeonOptions().rho(0.0).lambda(0.8).eps(0.0));
  std::vector<float> scaled = c.e_before;
  for (float& x : scaled) x *= 1024.0f;  // exact in float
  s1->load_state_dict(ema_state("bloop", {c.e_before}));
  s2->load_state_dict(ema_state("bloop", {scaled}));
  s1->combine({&c.g0, &c.g1}, {}, d1);
  s2->combine({&c.g0, &c.g1}, {}, d2);
  const std::vector<float> v1 = d1.to_vector(), v2 = d2.to_vector();
  for (size_t i = 0; i < v1.size(); ++i) EXPECT_NEAR(v1[i], v2[i], 1e-5 * (1 + std::abs(v1[i]))) << i;
}

TEST(SurgeryInvariants, PCGradEqualsMixedWithoutConflict) {
  Generator gen(15);
  for (int trial = 0; trial < 5; ++trial) {
    GradVector g0 = scalpel::testing::random_gv(200, gen), g1 = scalpel::testing::random_gv(200, gen);
    g1.axpy(2.0f, g0);  // <g0, g1> > 0
    ASSERT_GT(g0.dot(g1), 0.0);
    for (double lambda : {0.1, 1.0, 7.0}) {
      auto pc = make_surgeon("pcgrad", SurgeonOptions().lambda(lambda));
      auto mx = make_surgeon("mixed", SurgeonOptions().lambda(lambda));
      GradVector dp, dm;
      SurgeryDiagnostics diag;
      pc->combine({&g0, &g1}, {}, dp, &diag);
      mx->combine({&g0, &g1}, {}, dm);
      EXPECT_FALSE(diag.pcgrad_projected);
      EXPECT_EQ(dp.to_vector(), dm.to_vector()) << "lambda " << lambda;
    }
  }
}
