// Property tests for every registered surgery method on a zoo of inputs (scales 0..1e10, rank
// deficient, identical and opposite gradients, K = 1 and 2): finite output, state round trip,
// determinism (same seed, any thread count), error messages, and the registry / string options.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

using namespace scalpel;
using namespace scalpel::surgery;
using scalpel::testing::all_finite;
using scalpel::testing::random_gv;

namespace {

// Named input generators: gradients g0..gK for one step.
struct Zoo {
  std::string name;
  std::vector<GradVector> g;
};

std::vector<Zoo> zoo(int K, int64_t P, uint64_t seed, float scale) {
  Generator gen(seed);
  auto r = [&] { return random_gv(P, gen, scale); };
  auto times = [](const GradVector& v, float c) {
    GradVector out = v.clone();
    out.scale(c);
    return out;
  };
  std::vector<Zoo> out;
  GradVector a = r(), b = r(), c = r();
  auto with = [&](std::string name, std::vector<GradVector> first_two) {
    while (static_cast<int>(first_two.size()) < K + 1) first_two.push_back(c.clone());
    first_two.resize(static_cast<size_t>(K) + 1);
    out.push_back({std::move(name), std::move(first_two)});
  };
  with("random", {a.clone(), b.clone()});
  with("identical", {a.clone(), a.clone()});
  with("opposite", {a.clone(), times(a, -1.0f)});
  with("rank_deficient", {a.clone(), times(a, 3.0f)});
  with("zero_main", {GradVector(P), b.clone()});
  with("zero_aux", {a.clone(), GradVector(P)});
  with("all_zero", {GradVector(P), GradVector(P)});
  return out;
}

std::vector<const GradVector*> ptrs(const std::vector<GradVector>& g) {
  std::vector<const GradVector*> out;
  for (const GradVector& x : g) out.push_back(&x);
  return out;
}

std::vector<SurgeonOptions> option_grid() {
  return {SurgeonOptions().lambda(0.5), SurgeonOptions().lambda(3.0).rho(0.01),
          SurgeonOptions().lambda(0.1).rho(0.3).ema_order(EmaOrder::ProjectThenUpdate).rescale(true),
          SurgeonOptions().lambda(1.0).rho(0.5).ema_init(EmaInit::Random).seed(9).eps(0.0),
          SurgeonOptions().lambda(2.0).rho(1.0).ema_init(EmaInit::Zeros)};
}

}  // namespace

// The option grid of a method: the main + auxiliary options (λ, ρ, rescale, ...) for those methods;
// defaults for the multi-task aggregators, which refuse options that are not theirs (their own
// option grids are in test_mtl_properties.cpp).
static std::vector<SurgeonOptions> options_for(const std::string& m) {
  if (make_surgeon(m)->multi_task()) return {SurgeonOptions()};
  return option_grid();
}

TEST(SurgeryProperties, OutputIsAlwaysFiniteOnTheZoo) {
  int checked = 0;
  for (const std::string& m : surgeon_names()) {
    for (int K : {1, 2}) {
      for (float scale : {0.0f, 1e-10f, 1e-3f, 1.0f, 1e5f, 1e10f}) {
        for (const Zoo& z : zoo(K, 257, 3, scale)) {
          for (const SurgeonOptions& o : options_for(m)) {
            auto s = make_surgeon(m, o);
            GradVector d;
            SurgeryDiagnostics diag;
            for (int step = 0; step < 3; ++step) {
              s->combine(ptrs(z.g), {}, d, &diag);
              ASSERT_TRUE(all_finite(d.to_vector()))
                  << m << " K=" << K << " scale " << scale << " " << z.name << " " << o.describe() << " step " << step;
              ASSERT_TRUE(std::isfinite(diag.d_norm) && std::isfinite(diag.cos_d_g0)) << m << " " << z.name;
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_GE(checked, 4 * 2 * 6 * 7 * 5 * 3);
}

TEST(SurgeryProperties, OpposedGradientsAreHandledByEveryMethod) {
  // g1 = -g0 at ρ = 1: Bloop removes g1 entirely (d = g0), DB keeps the main progress (d = g0),
  // PCGrad projects both (d = 0), Mixed gives (1 - λ) g0.
  Generator gen(5);
  GradVector g0 = random_gv(100, gen), g1 = g0.clone();
  g1.scale(-1.0f);
  const double lambda = 0.4;
  auto run = [&](const std::string& m) {
    auto s = make_surgeon(m, SurgeonOptions().lambda(lambda).eps(0.0));
    GradVector d;
    s->combine({&g0, &g1}, {}, d);
    return d.to_vector();
  };
  const std::vector<float> v0 = g0.to_vector();
  std::vector<double> same(v0.begin(), v0.end()), mixed(v0.size()), zero(v0.size(), 0.0);
  for (size_t i = 0; i < v0.size(); ++i) mixed[i] = (1 - lambda) * v0[i];
  EXPECT_TRUE(scalpel::testing::vec_near(run("bloop"), same, 1e-5, "bloop"));
  EXPECT_TRUE(scalpel::testing::vec_near(run("db"), same, 1e-5, "db"));
  EXPECT_TRUE(scalpel::testing::vec_near(run("pcgrad"), zero, 1e-5, "pcgrad"));
  EXPECT_TRUE(scalpel::testing::vec_near(run("mixed"), mixed, 1e-5, "mixed"));
}

TEST(SurgeryProperties, StateRoundTripsAndResumesBitForBit) {
  for (const std::string& m : surgeon_names()) {
    for (const SurgeonOptions& o : options_for(m)) {
      std::vector<Zoo> steps = zoo(2, 300, 17, 1.0f);
      auto a = make_surgeon(m, o);
      GradVector da, db;
      a->combine(ptrs(steps[0].g), {}, da);
      a->combine(ptrs(steps[1].g), {}, da);
      // Through the checkpoint byte format, into a fresh surgeon.
      const StateDict saved = StateDict::deserialize(a->state_dict().serialize());
      auto b = make_surgeon(m, o);
      b->load_state_dict(saved);
      EXPECT_EQ(b->step(), 2);
      for (size_t t = 2; t < 5; ++t) {
        a->combine(ptrs(steps[t].g), {}, da);
        b->combine(ptrs(steps[t].g), {}, db);
        ASSERT_EQ(da.to_vector(), db.to_vector()) << m << " " << o.describe() << " step " << t;
      }
      // A saved state is a snapshot: later steps do not change it.
      const StateDict snap = a->state_dict();
      const std::string bytes = snap.serialize();
      a->combine(ptrs(steps[5].g), {}, da);
      EXPECT_EQ(snap.serialize(), bytes) << m;
    }
  }
}

TEST(SurgeryProperties, SameSeedSameResultDifferentSeedDifferentResult) {
  Generator gen(23);
  GradVector g0 = random_gv(500, gen), g1 = random_gv(500, gen);
  auto run = [&](uint64_t seed) {
    auto s = make_surgeon("bloop", SurgeonOptions().lambda(0.5).rho(0.01).ema_init(EmaInit::Random).seed(seed));
    GradVector d;
    s->combine({&g0, &g1}, {}, d);
    return d.to_vector();
  };
  EXPECT_EQ(run(4), run(4));
  EXPECT_NE(run(4), run(5));
}

TEST(SurgeryProperties, BitIdenticalForAnyThreadCount) {
  const int64_t P = 200003;  // many blocks, several chunks, a ragged tail
  std::vector<Zoo> steps = zoo(2, P, 29, 1.0f);
  for (const std::string& m : surgeon_names()) {
    std::vector<std::vector<float>> results;
    std::vector<double> norms;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      auto s = make_surgeon(m, SurgeonOptions().lambdas({0.3, 0.6}).rho(0.2));
      GradVector d;
      SurgeryDiagnostics diag;
      s->combine(ptrs(steps[0].g), {}, d, &diag);
      s->combine(ptrs(steps[1].g), {}, d, &diag);
      results.push_back(d.to_vector());
      norms.push_back(diag.d_norm);
    }
    set_num_threads(0);
    EXPECT_EQ(results[0], results[1]) << m;
    EXPECT_EQ(results[0], results[2]) << m;
    EXPECT_EQ(norms[0], norms[1]) << m;
  }
}

TEST(SurgeryProperties, DiagnosticsMatchDirectComputation) {
  using scalpel::testing::dot_d;
  using scalpel::testing::norm_d;
  Generator gen(31);
  GradVector g0 = random_gv(400, gen), g1 = random_gv(400, gen), g2 = random_gv(400, gen);
  for (const std::string& m : surgeon_names()) {
    auto s = make_surgeon(m, SurgeonOptions().lambdas({0.5, 0.25}).rho(0.5));
    GradVector d;
    SurgeryDiagnostics diag;
    s->combine({&g0, &g1, &g2}, {1.0, 2.0, 3.0}, d, &diag);
    const std::vector<float> v0 = g0.to_vector(), v1 = g1.to_vector(), vd = d.to_vector();
    EXPECT_NEAR(diag.g0_norm, norm_d(v0), 1e-9 * norm_d(v0)) << m;
    ASSERT_EQ(diag.gk_norm.size(), 2u);
    EXPECT_NEAR(diag.gk_norm[0], norm_d(v1), 1e-9 * norm_d(v1)) << m;
    EXPECT_NEAR(diag.cos_g0_gk[0], dot_d(v0, v1) / (norm_d(v0) * norm_d(v1)), 1e-9) << m;
    EXPECT_NEAR(diag.d_norm, norm_d(vd), 1e-5 * norm_d(vd)) << m;
    EXPECT_NEAR(diag.cos_d_g0, dot_d(vd, v0) / (norm_d(vd) * norm_d(v0)), 1e-5) << m;
    EXPECT_EQ(diag.lambdas, (std::vector<double>{0.5, 0.25})) << m;
    if (m == "mixed") {
      EXPECT_TRUE(std::isnan(diag.ema_norm));
      EXPECT_TRUE(std::isnan(diag.ratio));
    } else if (m == "bloop" || m == "dynamic-barrier" || m == "pcgrad") {
      EXPECT_TRUE(std::isfinite(diag.ema_norm)) << m;
      EXPECT_TRUE(std::isfinite(diag.ratio)) << m;
    }
    const auto map = diag.to_map();
    ASSERT_FALSE(map.empty());
    EXPECT_EQ(map.front().first, "g0_norm");
    bool has_g2 = false;
    for (const auto& [k, v] : map) has_g2 = has_g2 || k == "g2_norm";
    EXPECT_TRUE(has_g2);
  }
}

TEST(SurgeryProperties, LambdaFollowsAScheduleOverSteps) {
  GradVector g0 = scalpel::testing::gv({1, 0}), g1 = scalpel::testing::gv({0, 1});
  auto s = make_surgeon("mixed", SurgeonOptions().lambda_schedule(optim::linear(0.0, 1.0, 4)));
  GradVector d;
  for (int step = 0; step < 6; ++step) {
    s->combine({&g0, &g1}, {}, d);
    EXPECT_FLOAT_EQ(d[1], static_cast<float>(std::min(step / 4.0, 1.0))) << "step " << step;
  }
  s->set_step(1);
  s->combine({&g0, &g1}, {}, d);
  EXPECT_FLOAT_EQ(d[1], 0.25f);
  // From a string, one schedule per auxiliary loss.
  auto t = make_surgeon("mixed", SurgeonOptions().set("lambda", "0.5,linear:0:2:2"));
  GradVector g2 = scalpel::testing::gv({1, 1});
  t->combine({&g0, &g1, &g2}, {}, d);
  t->combine({&g0, &g1, &g2}, {}, d);
  EXPECT_FLOAT_EQ(d[0], 1.0f + 1.0f);  // g0 + λ2(1)·g2[0], λ2 = 1 at step 1
  EXPECT_FLOAT_EQ(d[1], 0.5f + 1.0f);  // λ1 g1[1] + λ2 g2[1]
}

TEST(SurgeryProperties, BytesMovedShowsTwoReadsPerGradient) {
  Generator gen(41);
  const int64_t P = 10000;
  GradVector g0 = random_gv(P, gen), g1 = random_gv(P, gen);
  auto bytes = [&](const std::string& m, double rho) {
    auto s = make_surgeon(m, SurgeonOptions().rho(rho));
    GradVector d;
    s->combine({&g0, &g1}, {}, d);
    return s->last_bytes_moved() / static_cast<double>(P * 4);
  };
  // Bloop ρ<1: pass 1 reads g0, g1, e and writes e; pass 2 reads g0, g1, e and writes d.
  EXPECT_EQ(bytes("bloop", 0.01), 8.0);
  // ρ = 1 keeps no EMA: pass 1 reads g0, g1; pass 2 reads g0, g1 and writes d.
  EXPECT_EQ(bytes("bloop", 1.0), 5.0);
  EXPECT_EQ(bytes("pcgrad", 1.0), 5.0);
  EXPECT_EQ(bytes("mixed", 1.0), 3.0);  // no diagnostics requested: one pass
}

// ---- errors -------------------------------------------------------------------------------------

namespace {
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}
#define EXPECT_ERROR_CONTAINS(expr, text)                                 \
  do {                                                                    \
    const std::string msg_ = error_of([&] { expr; });                     \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: " << msg_; \
  } while (0)
}  // namespace

TEST(SurgeryErrors, MessagesNameTheMethodAndTheMismatch) {
  GradVector a = scalpel::testing::gv({1, 2, 3}), b = scalpel::testing::gv({1, 2}), c = scalpel::testing::gv({1, 1, 1});
  GradVector d;
  auto s = make_surgeon("bloop", SurgeonOptions().lambda(0.5));
  EXPECT_ERROR_CONTAINS(s->combine({&a, &b}, {}, d), "bloop.combine: gradient 1 has 2 elements, g0 has 3");
  EXPECT_ERROR_CONTAINS(s->combine({}, {}, d), "needs at least the main gradient");
  EXPECT_ERROR_CONTAINS(s->combine({&a, &c}, {1.0}, d), "1 loss values for 2 gradients");
  GradVector wrong(5);
  EXPECT_ERROR_CONTAINS(s->combine({&a, &c}, {}, wrong), "output d has 5 elements, the gradients have 3");
  GradVector alias = a;  // shares a's buffer
  EXPECT_ERROR_CONTAINS(s->combine({&a, &c}, {}, alias), "shares memory with gradient 0");
  s->combine({&a, &c}, {}, d);
  GradVector a2 = scalpel::testing::gv({1, 2, 3});
  EXPECT_ERROR_CONTAINS(s->combine({&a, &c, &a2}, {}, d), "K must stay fixed");
  auto t = make_surgeon("bloop", SurgeonOptions().lambdas({0.1, 0.2}));
  EXPECT_ERROR_CONTAINS(t->combine({&a, &c, &a2, &a2}, {}, d), "2 lambda values/schedules for K=3");
  auto neg = make_surgeon("mixed", SurgeonOptions().lambda(-1.0));
  EXPECT_ERROR_CONTAINS(neg->combine({&a, &c}, {}, d), "lambda1 = -1 at step 0");
  EXPECT_ERROR_CONTAINS(make_surgeon("bloop", SurgeonOptions().rho(1.5)), "bloop: option rho must be in [0, 1]");
  EXPECT_ERROR_CONTAINS(make_surgeon("pcgrad", SurgeonOptions().ratio_only(true)), "ratio_only applies to bloop only");
  EXPECT_ERROR_CONTAINS(make_surgeon("mixed", SurgeonOptions().eps(-1)), "eps must be finite and >= 0");
}

TEST(SurgeryErrors, LoadingAMismatchedStateNamesTheKey) {
  auto s = make_surgeon("bloop", SurgeonOptions().rho(0.1));
  StateDict other = scalpel::testing::ema_state("pcgrad", {{1, 2}});
  EXPECT_ERROR_CONTAINS(s->load_state_dict(other), "saved by surgeon 'pcgrad', expected 'bloop'");
  StateDict bad = scalpel::testing::ema_state("bloop", {{1, 2}});
  bad.set_int("ema.size", 3);
  EXPECT_ERROR_CONTAINS(s->load_state_dict(bad), "'ema.0' has 2 elements, 'ema.size' says 3");
  StateDict missing;
  missing.set_string("method", "bloop");
  EXPECT_ERROR_CONTAINS(s->load_state_dict(missing), "missing scalar 'step'");
  // A ρ = 1 state keeps no EMA; loading it where an EMA is needed is refused.
  auto naive = make_surgeon("bloop", SurgeonOptions().rho(1.0));
  GradVector a = scalpel::testing::gv({1, 2}), b = scalpel::testing::gv({2, 1}), d;
  naive->combine({&a, &b}, {}, d);
  EXPECT_ERROR_CONTAINS(s->load_state_dict(naive->state_dict()), "missing tensor 'ema.0'");
  // Sizes are checked against the gradients at the next step.
  s->load_state_dict(scalpel::testing::ema_state("bloop", {{1, 2, 3}}));
  EXPECT_ERROR_CONTAINS(s->combine({&a, &b}, {}, d), "the gradients have 2 elements but the EMA state has 3");
}

// ---- registry and string options ------------------------------------------------------------------

TEST(SurgeryRegistry, EveryBuiltInMethodIsLinkedAndFoundByNameOrAlias) {
  const std::vector<std::string> names = surgeon_names();
  for (const char* m : {"bloop", "dynamic-barrier", "mixed", "pcgrad"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), m), names.end()) << m;
    EXPECT_EQ(make_surgeon(m)->name(), m);
    EXPECT_FALSE(surgeon_summary(m).empty());
  }
  EXPECT_EQ(make_surgeon("db")->name(), "dynamic-barrier");
  EXPECT_EQ(make_surgeon("Dynamic_Barrier")->name(), "dynamic-barrier");
  EXPECT_EQ(surgeon_aliases("dynamic-barrier"), std::vector<std::string>{"db"});
  const std::string msg = error_of([] { make_surgeon("no-such-method"); });
  EXPECT_NE(msg.find("make_surgeon: unknown method 'no-such-method' (known: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("bloop, "), std::string::npos) << msg;
  EXPECT_NE(msg.find("dynamic-barrier (db), "), std::string::npos) << msg;
  EXPECT_NE(msg.find("pcgrad"), std::string::npos) << msg;
}

TEST(SurgeryRegistry, DefaultRhoDependsOnTheMethod) {
  // The paper's baselines run on batch gradients (ρ = 1, no EMA buffer); Bloop defaults to 0.01.
  GradVector a = scalpel::testing::gv({1, 2}), b = scalpel::testing::gv({2, 1}), d;
  for (const char* m : {"db", "pcgrad", "bloop"}) {
    auto s = make_surgeon(m);
    s->combine({&a, &b}, {}, d);
    EXPECT_EQ(s->state_dict().get_int("ema.aliased"), std::string(m) == "bloop" ? 0 : 1) << m;
  }
}

TEST(SurgeryOptions, SetFromStrings) {
  SurgeonOptions o;
  o.set("rho", "0.25").set("eps", "0").set("ema_order", "project_then_update").set("ema_init", "random");
  o.set("rescale", "true").set("ratio_only", "1").set("seed", "42").set("lambda", "0.3");
  EXPECT_EQ(*o.rho(), 0.25);
  EXPECT_EQ(o.eps(), 0.0);
  EXPECT_EQ(o.ema_order(), EmaOrder::ProjectThenUpdate);
  EXPECT_EQ(o.ema_init(), EmaInit::Random);
  EXPECT_TRUE(o.rescale());
  EXPECT_TRUE(o.ratio_only());
  EXPECT_EQ(o.seed(), 42u);
  ASSERT_EQ(o.lambda_schedules().size(), 1u);
  EXPECT_EQ(o.lambda_schedules()[0]->at(100), 0.3);
  EXPECT_NE(o.describe().find("rho=0.25"), std::string::npos) << o.describe();
  EXPECT_ERROR_CONTAINS(o.set("gamma", "1"), "unknown option 'gamma' (known: lambda, rho, eps, ema_order");
  EXPECT_ERROR_CONTAINS(o.set("rho", "abc"), "option 'rho' expects a number in [0, 1], got 'abc'");
  EXPECT_ERROR_CONTAINS(o.set("rho", "2"), "option 'rho' expects a number in [0, 1], got '2'");
  EXPECT_ERROR_CONTAINS(o.set("ema_init", "ones"), "expects first_grad, zeros or random, got 'ones'");
  EXPECT_ERROR_CONTAINS(o.set("rescale", "maybe"), "option 'rescale' expects true/false");
  EXPECT_ERROR_CONTAINS(o.set("lambda", "fast"), "option 'lambda' expects a number, a schedule");
  EXPECT_ERROR_CONTAINS(o.set("seed", "-3"), "option 'seed' expects a non-negative integer");
}
