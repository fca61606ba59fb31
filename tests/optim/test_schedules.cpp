// Schedules against their closed forms, and parsing of the command-line form.
#include <gtest/gtest.h>

#include <cmath>

#include "optim/schedule.h"

using namespace scalpel::optim;

namespace {
constexpr double kPi = 3.14159265358979323846;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}
}  // namespace

TEST(Schedules, Constant) {
  auto s = constant(0.3);
  for (int64_t t : {0, 1, 1000000}) EXPECT_EQ(s->at(t), 0.3);
}

TEST(Schedules, WarmupCosineMatchesItsClosedForm) {
  const double base = 0.1, fin = 0.01;
  const int64_t W = 5, T = 105;
  auto s = warmup_cosine(base, W, T, fin);
  for (int64_t t = 0; t < 130; ++t) {
    double expect;
    if (t < W) {
      expect = base * (t + 1) / W;
    } else {
      const double p = std::min(static_cast<double>(t - W) / (T - W), 1.0);
      expect = fin + (base - fin) * 0.5 * (1 + std::cos(kPi * p));
    }
    EXPECT_NEAR(s->at(t), expect, 1e-15) << "step " << t;
  }
  EXPECT_NEAR(s->at(W - 1), base, 1e-15);  // warm-up reaches base
  EXPECT_NEAR(s->at(W), base, 1e-15);
  EXPECT_NEAR(s->at(W + (T - W) / 2), fin + (base - fin) / 2, 1e-12);  // half way
  EXPECT_NEAR(s->at(T), fin, 1e-15);
  EXPECT_GT(s->at(0), 0.0);  // the first step is never wasted
  // No warm-up: a plain cosine from step 0.
  auto c = warmup_cosine(1.0, 0, 10);
  EXPECT_EQ(c->at(0), 1.0);
  EXPECT_NEAR(c->at(5), 0.5, 1e-15);
  EXPECT_NEAR(c->at(10), 0.0, 1e-15);
}

TEST(Schedules, StepDecay) {
  auto s = step_decay(0.1, 30, 0.1);
  EXPECT_NEAR(s->at(0), 0.1, 1e-15);
  EXPECT_NEAR(s->at(29), 0.1, 1e-15);
  EXPECT_NEAR(s->at(30), 0.01, 1e-15);
  EXPECT_NEAR(s->at(59), 0.01, 1e-15);
  EXPECT_NEAR(s->at(60), 0.001, 1e-15);
  for (int64_t t = 0; t < 200; t += 7) EXPECT_NEAR(s->at(t), 0.1 * std::pow(0.1, t / 30), 1e-15);
}

TEST(Schedules, WarmupRsqrt) {
  const double base = 2e-3;
  const int64_t W = 1000;
  auto s = warmup_rsqrt(base, W);
  for (int64_t t : {0, 1, 499, 998}) EXPECT_NEAR(s->at(t), base * (t + 1) / W, 1e-18) << t;
  EXPECT_NEAR(s->at(W - 1), base, 1e-18);  // continuous at the end of the warm-up
  for (int64_t t : {1000, 3999, 299999})
    EXPECT_NEAR(s->at(t), base * std::sqrt(static_cast<double>(W) / (t + 1)), 1e-18);
  EXPECT_NEAR(s->at(4 * W - 1), base / 2, 1e-18);
  auto n = warmup_rsqrt(1.0, 0);
  EXPECT_EQ(n->at(0), 1.0);
  EXPECT_NEAR(n->at(3), 0.5, 1e-15);
}

TEST(Schedules, LinearLogLinearCosineRamps) {
  auto l = linear(0.0, 1.0, 10);
  EXPECT_EQ(l->at(0), 0.0);
  EXPECT_NEAR(l->at(3), 0.3, 1e-15);
  EXPECT_EQ(l->at(10), 1.0);
  EXPECT_EQ(l->at(50), 1.0);
  auto g = log_linear(1e-4, 1.0, 4);
  EXPECT_NEAR(g->at(0), 1e-4, 1e-18);
  EXPECT_NEAR(g->at(1), 1e-3, 1e-15);
  EXPECT_NEAR(g->at(2), 1e-2, 1e-15);
  EXPECT_NEAR(g->at(4), 1.0, 1e-15);
  auto c = cosine(2.0, 0.0, 8);
  EXPECT_NEAR(c->at(4), 1.0, 1e-15);
  EXPECT_NEAR(c->at(2), 1.0 + std::cos(kPi / 4), 1e-15);
  auto f = from_function([](int64_t t) { return 1.0 / (t + 1); }, "harmonic");
  EXPECT_EQ(f->at(3), 0.25);
  EXPECT_EQ(f->describe(), "harmonic");
}

TEST(Schedules, ParseTheCommandLineForm) {
  EXPECT_EQ(parse_schedule("0.25")->at(7), 0.25);
  EXPECT_EQ(parse_schedule("constant:3")->at(0), 3.0);
  EXPECT_NEAR(parse_schedule("linear:0:1:10")->at(5), 0.5, 1e-15);
  EXPECT_NEAR(parse_schedule("loglinear:1e-4:1:4")->at(2), 1e-2, 1e-15);
  EXPECT_NEAR(parse_schedule("cosine:1:0:10")->at(5), 0.5, 1e-15);
  EXPECT_NEAR(parse_schedule("warmup_cosine:0.1:5:105:0.01")->at(55), 0.055, 1e-12);
  EXPECT_NEAR(parse_schedule("warmup_cosine:0.1:5:105")->at(105), 0.0, 1e-15);
  EXPECT_NEAR(parse_schedule("step:0.1:30:0.5")->at(65), 0.025, 1e-15);
  EXPECT_NEAR(parse_schedule("warmup_rsqrt:2:4")->at(15), 1.0, 1e-15);
}

TEST(Schedules, ErrorsNameTheProblem) {
  EXPECT_NE(error_of([] { parse_schedule("fancy:1:2"); }).find("unknown kind 'fancy'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_schedule("linear:0:1"); }).find("'linear' expects KIND:START:END:STEPS, got 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_schedule("linear:0:x:10"); }).find("'x' is not a finite number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_schedule("step:0.1:2.5:0.1"); }).find("'2.5' is not an integer"), std::string::npos);
  EXPECT_NE(error_of([] { parse_schedule(""); }).find("empty text"), std::string::npos);
  EXPECT_NE(error_of([] { warmup_cosine(0.1, 10, 5); }).find("total_steps 5 < warmup_steps 10"), std::string::npos);
  EXPECT_NE(error_of([] { step_decay(0.1, 0, 0.5); }).find("step_size > 0"), std::string::npos);
  EXPECT_NE(error_of([] { log_linear(0.0, 1.0, 5); }).find("start > 0"), std::string::npos);
  EXPECT_NE(error_of([] { constant(1.0)->at(-1); }).find("step must be >= 0, got -1"), std::string::npos);
}
