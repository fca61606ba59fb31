// The two-objective toy (experiments/mtl_toy_model.h): hand-derived gradients against central
// finite differences, the closed-form two-task min-norm against a brute-force search, and the
// scalpel-mtl-toy binary end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "experiments/mtl_toy_model.h"
#include "experiments/runner/metrics.h"
#include "tests/experiments/run_util.h"

namespace fs = std::filesystem;
using namespace scalpel::experiments;
using namespace scalpel_test;

TEST(MtlToy, GradientsMatchFiniteDifferences) {
  const double h = 1e-6;
  int checked = 0;
  for (double x1 : {-8.5, -3.1, 0.4, 2.7, 9.0}) {
    for (double x2 : {-9.0, -2.3, -0.4, 0.6, 3.3, 7.5}) {
      for (double scale : {1.0, 0.1}) {
        const ToyEval e = mtl_toy_eval(x1, x2, scale);
        for (int i = 0; i < 2; ++i) {
          const double dx1 = i == 0 ? h : 0.0, dx2 = i == 1 ? h : 0.0;
          const ToyEval p = mtl_toy_eval(x1 + dx1, x2 + dx2, scale), m = mtl_toy_eval(x1 - dx1, x2 - dx2, scale);
          const double n1 = (p.f1 - m.f1) / (2 * h), n2 = (p.f2 - m.f2) / (2 * h);
          EXPECT_NEAR(e.g1[i], n1, 1e-5 * (1 + std::abs(n1))) << "df1/dx" << i + 1 << " at " << x1 << "," << x2;
          EXPECT_NEAR(e.g2[i], n2, 1e-5 * (1 + std::abs(n2))) << "df2/dx" << i + 1 << " at " << x1 << "," << x2;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 120);
  // Published values: f1 = f2 = 0 at the origin (both gates closed), f1 scales with `scale`.
  EXPECT_EQ(mtl_toy_eval(0, 0).f1, 0.0);
  EXPECT_DOUBLE_EQ(mtl_toy_eval(3, 4, 0.1).f1, 0.1 * mtl_toy_eval(3, 4).f1);
}

TEST(MtlToy, MinNormIsTheMinimumOverTheSegment) {
  const std::vector<std::array<std::array<double, 2>, 2>> pairs = {
      {{{1, 0}, {-1, 0}}}, {{{1, 2}, {3, 1}}}, {{{2, 1}, {-1, 0.5}}}, {{{0, 0}, {1, 1}}}, {{{-3, 1}, {2, -0.2}}}};
  for (const auto& p : pairs) {
    double best = 1e300;
    for (int k = 0; k <= 100000; ++k) {
      const double w = k / 100000.0;
      best = std::min(best, std::hypot(w * p[0][0] + (1 - w) * p[1][0], w * p[0][1] + (1 - w) * p[1][1]));
    }
    EXPECT_NEAR(min_norm_2(p[0], p[1]), best, 1e-9);
  }
  EXPECT_EQ(min_norm_2({1, 0}, {-1, 0}), 0.0);  // opposed: Pareto-stationary
}

TEST(MtlToy, BinaryWritesTrajectoriesAndMgdaReachesTheParetoSet) {
  const std::string out = fresh_dir("mtl_toy");
  const Result r =
      run(std::string(SCALPEL_MTL_TOY_BIN) + " --methods mixed,mgda --steps 3000 --lr 0.01 --quiet --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  // From the two lower starts MGDA stops on the Pareto set; so does the sum (mixed), but at the
  // same point (0, -8.4) from both, while MGDA's end points differ.
  const auto mgda = summary(out + "/mgda/lambda_1");
  const auto& f = mgda["final"];
  EXPECT_LT(f["start3_min_norm"].get<double>(), 1e-2);
  EXPECT_LT(f["start4_min_norm"].get<double>(), 1e-2);
  EXPECT_GT(std::abs(f["start3_x1"].get<double>() - f["start4_x1"].get<double>()), 2.0);
  const auto mixed = summary(out + "/mixed/lambda_1");
  EXPECT_NEAR(mixed["final"]["start3_x1"].get<double>(), mixed["final"]["start4_x1"].get<double>(), 0.5);
  const MetricsLog log = MetricsLog::read_csv(out + "/mgda/lambda_1/metrics.csv");
  EXPECT_FALSE(log.column("stationary_starts").empty());
  const std::string traj = scalpel::experiments::read_text(out + "/mgda/lambda_1/trajectories.csv");
  EXPECT_EQ(traj.rfind("start,step,x1,x2,f1,f2,min_norm\n", 0), 0u);
  EXPECT_NE(traj.find("\n4,3000,"), std::string::npos) << "last step of the last start is recorded";
  EXPECT_TRUE(fs::exists(out + "/trajectories.png") || r.output.find("gnuplot") != std::string::npos);
  const Result bad = run(std::string(SCALPEL_MTL_TOY_BIN) + " --starts 1:x --out " + fresh_dir("mtl_toy_bad"));
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--starts: '1:x' is not x1:x2"), std::string::npos) << bad.output;
}
