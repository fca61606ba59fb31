// Multi-level Bloop (K >= 2) and the K >= 2 generalizations of DB and PCGrad: invariants, an
// independent double-precision Gram–Schmidt reference, rank deficiency.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

using namespace scalpel;
using namespace scalpel::surgery;
using scalpel::testing::dot_d;
using scalpel::testing::ema_of;
using scalpel::testing::ema_state;
using scalpel::testing::norm_d;
using scalpel::testing::random_gv;
using scalpel::testing::sub;

namespace {

struct Problem {
  std::vector<GradVector> g;                 // g0..gK
  std::vector<std::vector<float>> e_before;  // K EMAs
};

Problem make_problem(int K, int64_t P, uint64_t seed) {
  Generator gen(seed);
  Problem p;
  for (int k = 0; k <= K; ++k) p.g.push_back(random_gv(P, gen));
  for (int k = 0; k < K; ++k) p.e_before.push_back(random_gv(P, gen).to_vector());
  return p;
}

std::vector<const GradVector*> ptrs(const std::vector<GradVector>& g) {
  std::vector<const GradVector*> out;
  for (const GradVector& x : g) out.push_back(&x);
  return out;
}

// Runs one multi-level Bloop step from the problem's EMAs; returns d and the EMAs after the step.
std::vector<float> bloop_step(const Problem& p, const std::vector<double>& lambdas, double eps,
                              std::vector<std::vector<float>>* emas_after = nullptr) {
  auto s = make_surgeon("bloop", SurgeonOptions().rho(0.4).lambdas(lambdas).eps(eps));
  s->load_state_dict(ema_state("bloop", p.e_before));
  GradVector d;
  s->combine(ptrs(p.g), {}, d);
  if (emas_after) {
    emas_after->clear();
    for (size_t j = 0; j < p.e_before.size(); ++j) emas_after->push_back(ema_of(*s, static_cast<int>(j)));
  }
  return d.to_vector();
}

}  // namespace

TEST(MultiLevelBloop, MainDirectionIsUntouched) {
  // <d, u1> = <g0, u1> with u1 = e0/‖e0‖.
  for (int K : {2, 3}) {
    Problem p = make_problem(K, 500, 100 + static_cast<uint64_t>(K));
    std::vector<std::vector<float>> e;
    const std::vector<float> d = bloop_step(p, std::vector<double>(static_cast<size_t>(K), 0.9), 0.0, &e);
    const double lhs = dot_d(d, e[0]) / norm_d(e[0]), rhs = dot_d(p.g[0].to_vector(), e[0]) / norm_d(e[0]);
    EXPECT_NEAR(lhs, rhs, 1e-5 * norm_d(d)) << "K=" << K;
  }
}

TEST(MultiLevelBloop, EachProjectedGradientIsOrthogonalToTheEmasAboveIt) {
  const int K = 3;
  Problem p = make_problem(K, 400, 7);
  for (int k = 1; k <= K; ++k) {
    std::vector<double> lambdas(K, 0.0);
    lambdas[static_cast<size_t>(k - 1)] = 1.0;  // d - g0 = p_k alone
    std::vector<std::vector<float>> e;
    const std::vector<float> d = bloop_step(p, lambdas, 0.0, &e);
    const std::vector<float> pk = sub(d, p.g[0].to_vector());
    for (int j = 0; j < k; ++j) {
      EXPECT_LE(std::abs(dot_d(pk, e[static_cast<size_t>(j)])), 1e-5 * norm_d(pk) * norm_d(e[static_cast<size_t>(j)]))
          << "p_" << k << " vs e_" << j;
    }
    // ...and it is not orthogonal to the EMAs below it (the check can fail).
    for (int j = k; j < K; ++j) {
      EXPECT_GT(std::abs(dot_d(pk, e[static_cast<size_t>(j)])), 1e-2 * norm_d(pk) * norm_d(e[static_cast<size_t>(j)]));
    }
  }
}

TEST(MultiLevelBloop, MatchesAnIndependentGramSchmidtReference) {
  const int K = 3;
  const int64_t P = 300;
  Problem p = make_problem(K, P, 21);
  const std::vector<double> lambdas{0.5, 2.0, 0.25};
  std::vector<std::vector<float>> e;
  const std::vector<float> d = bloop_step(p, lambdas, 0.0, &e);
  // Orthonormal u_1..u_K from the EMAs after the update, in double.
  std::vector<std::vector<double>> u;
  for (int j = 0; j < K; ++j) {
    std::vector<double> v(e[static_cast<size_t>(j)].begin(), e[static_cast<size_t>(j)].end());
    for (const auto& ui : u) {
      double c = 0;
      for (int64_t i = 0; i < P; ++i) c += v[i] * ui[i];
      for (int64_t i = 0; i < P; ++i) v[i] -= c * ui[i];
    }
    double n = 0;
    for (double x : v) n += x * x;
    n = std::sqrt(n);
    for (double& x : v) x /= n;
    u.push_back(v);
  }
  const std::vector<float> g0v = p.g[0].to_vector();
  std::vector<double> expect(g0v.begin(), g0v.end());
  for (int k = 1; k <= K; ++k) {
    const std::vector<float> gk = p.g[static_cast<size_t>(k)].to_vector();
    std::vector<double> proj(gk.begin(), gk.end());
    for (int j = 0; j < k; ++j) {
      double c = 0;
      for (int64_t i = 0; i < P; ++i) c += proj[i] * u[static_cast<size_t>(j)][i];
      for (int64_t i = 0; i < P; ++i) proj[i] -= c * u[static_cast<size_t>(j)][i];
    }
    for (int64_t i = 0; i < P; ++i) expect[i] += lambdas[static_cast<size_t>(k - 1)] * proj[i];
  }
  EXPECT_TRUE(scalpel::testing::vec_near(d, expect, 1e-4, "multi-level bloop vs double Gram-Schmidt"));
}

TEST(MultiLevelBloop, OneAuxiliaryLossIsOrdinaryBloop) {
  Problem p = make_problem(1, 100, 31);
  auto s = make_surgeon("bloop", SurgeonOptions().rho(0.4).lambdas({0.6}).eps(1e-7));
  s->load_state_dict(ema_state("bloop", p.e_before));
  GradVector d;
  s->combine(ptrs(p.g), {}, d);
  const std::vector<float> e = ema_of(*s, 0);
  const std::vector<float> g0 = p.g[0].to_vector(), g1 = p.g[1].to_vector();
  const double r = dot_d(e, g1) / (dot_d(e, e) + 1e-7);
  std::vector<double> expect(g0.size());
  for (size_t i = 0; i < g0.size(); ++i) expect[i] = g0[i] + 0.6 * (g1[i] - r * e[i]);
  EXPECT_TRUE(scalpel::testing::vec_near(d.to_vector(), expect, 1e-5, "K=1"));
}

TEST(MultiLevelBloop, RankDeficientEmasSkipTheRedundantDirection) {
  // ρ = 1: the EMAs are the batch gradients; g1 = 2 g0 lies in span{g0}, so level 2 is projected on
  // span{g0} only: d = g0 + λ1 π(g1; g0) + λ2 π(g2; g0) = g0 + λ2 π(g2; g0).
  Generator gen(41);
  GradVector g0 = random_gv(64, gen), g2 = random_gv(64, gen);
  GradVector g1 = g0.clone();
  g1.scale(2.0f);
  for (float scale : {1e-6f, 1.0f, 1e8f}) {
    GradVector a = g0.clone(), b = g1.clone(), c = g2.clone();
    a.scale(scale);
    b.scale(scale);
    c.scale(scale);
    auto s = make_surgeon("bloop", SurgeonOptions().rho(1.0).lambdas({0.5, 0.5}).eps(0.0));
    GradVector d;
    s->combine({&a, &b, &c}, {}, d);
    const std::vector<float> va = a.to_vector(), vc = c.to_vector();
    const double r = dot_d(vc, va) / dot_d(va, va);
    std::vector<double> expect(va.size());
    for (size_t i = 0; i < va.size(); ++i) expect[i] = va[i] + 0.5 * (vc[i] - r * va[i]);
    const double tol = 1e-5 * norm_d(va);
    EXPECT_TRUE(scalpel::testing::vec_near(d.to_vector(), expect, tol, "scale " + std::to_string(scale)));
  }
}

TEST(MultiLevelBloop, RatioOnlyUsesBatchGradients) {
  // K = 2, ratio_only: the ratios come from the EMAs but multiply g_j instead of e_j.
  Problem p = make_problem(2, 80, 51);
  auto s = make_surgeon("bloop", SurgeonOptions().rho(0.4).lambdas({0.3, 0.2}).eps(0.0).ratio_only(true));
  s->load_state_dict(ema_state("bloop", p.e_before));
  GradVector d;
  s->combine(ptrs(p.g), {}, d);
  // d lies in span{g0, g1, g2}: its residual after least squares on (g0, g1, g2) is ~0, whereas it
  // would not be with the EMAs (which are independent random vectors here).
  const std::vector<float> v = d.to_vector();
  std::vector<std::vector<double>> basis;
  for (const GradVector& g : p.g) {
    const std::vector<float> gvv = g.to_vector();
    basis.emplace_back(gvv.begin(), gvv.end());
  }
  std::vector<double> res(v.begin(), v.end());
  std::vector<std::vector<double>> q;
  for (auto b : basis) {
    for (const auto& qi : q) {
      double c = 0;
      for (size_t i = 0; i < b.size(); ++i) c += b[i] * qi[i];
      for (size_t i = 0; i < b.size(); ++i) b[i] -= c * qi[i];
    }
    double n = 0;
    for (double x : b) n += x * x;
    for (double& x : b) x /= std::sqrt(n);
    q.push_back(b);
  }
  for (const auto& qi : q) {
    double c = 0;
    for (size_t i = 0; i < res.size(); ++i) c += res[i] * qi[i];
    for (size_t i = 0; i < res.size(); ++i) res[i] -= c * qi[i];
  }
  double rn = 0;
  for (double x : res) rn += x * x;
  EXPECT_LT(std::sqrt(rn), 1e-5 * norm_d(v));
}

TEST(MultiLevelBaselines, MixedSumsWeightedGradients) {
  Problem p = make_problem(3, 50, 61);
  auto s = make_surgeon("mixed", SurgeonOptions().lambdas({0.5, 2.0, 0.0}));
  GradVector d;
  s->combine(ptrs(p.g), {}, d);
  std::vector<double> expect(50);
  for (size_t i = 0; i < 50; ++i) {
    expect[i] =
        p.g[0][static_cast<int64_t>(i)] + 0.5 * p.g[1][static_cast<int64_t>(i)] + 2.0 * p.g[2][static_cast<int64_t>(i)];
  }
  EXPECT_TRUE(scalpel::testing::vec_near(d.to_vector(), expect, 1e-5, "mixed K=3"));
}

TEST(MultiLevelBaselines, DynamicBarrierActsOnTheCombinedAuxiliaryDirection) {
  // ρ = 1: d = g0 + h - min(<h, g0>/‖g0‖², 1) g0 with h = Σ λk gk; so <d, g0> = max(‖g0‖², <h, g0>).
  Problem p = make_problem(2, 60, 71);
  p.g[1].axpy(3.0f, p.g[0]);  // g1 agrees with g0: the barrier clips for large λ only
  for (double scale : {0.1, 10.0}) {
    const std::vector<double> lambdas{0.7 * scale, 1.3 * scale};
    auto s = make_surgeon("db", SurgeonOptions().lambdas(lambdas).eps(0.0));
    GradVector d;
    SurgeryDiagnostics diag;
    s->combine(ptrs(p.g), {}, d, &diag);
    const std::vector<float> g0 = p.g[0].to_vector();
    std::vector<double> h(60);
    for (size_t i = 0; i < 60; ++i) {
      h[i] = lambdas[0] * p.g[1][static_cast<int64_t>(i)] + lambdas[1] * p.g[2][static_cast<int64_t>(i)];
    }
    double hg = 0;
    for (size_t i = 0; i < 60; ++i) hg += h[i] * g0[i];
    const double r = std::min(hg / dot_d(g0, g0), 1.0);
    std::vector<double> expect(60);
    for (size_t i = 0; i < 60; ++i) expect[i] = g0[i] + h[i] - r * g0[i];
    EXPECT_TRUE(scalpel::testing::vec_near(d.to_vector(), expect, 1e-4, "db K=2"));
    EXPECT_NEAR(dot_d(d.to_vector(), g0), std::max(dot_d(g0, g0), hg), 1e-4 * std::abs(hg) + 1e-4);
    EXPECT_EQ(diag.db_clipped, scale > 1.0) << "ratio " << hg / dot_d(g0, g0);
  }
}

TEST(MultiLevelBaselines, PCGradProjectsEachTaskOffConflictingOthers) {
  // Three tasks with hand-picked pairwise conflicts, ρ = 1, all weights 1.
  GradVector g0 = scalpel::testing::gv({1, 0, 0}), g1 = scalpel::testing::gv({-1, 1, 0}),
             g2 = scalpel::testing::gv({0, 1, 1});
  auto s = make_surgeon("pcgrad", SurgeonOptions().lambdas({1.0, 1.0}).eps(0.0));
  GradVector d;
  SurgeryDiagnostics diag;
  s->combine({&g0, &g1, &g2}, {}, d, &diag);
  // task 0: vs g1: <(1,0,0),(-1,1,0)> = -1 -> p = (1,0,0) + 1/2 (-1,1,0) = (0.5,0.5,0); vs g2: +0.5 -> keep.
  // task 1: vs g0: -1 -> p = (-1,1,0) + (1,0,0) = (0,1,0); vs g2: +1 -> keep.
  // task 2: vs g0: 0 -> keep; vs g1: +1 -> keep.  d = (0.5, 2.5, 1).
  EXPECT_TRUE(scalpel::testing::vec_near(d.to_vector(), {0.5, 2.5, 1.0}, 1e-6, "pcgrad K=2"));
  EXPECT_TRUE(diag.pcgrad_projected);
}
