// Pareto fronts and hypervolume on hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>

#include "experiments/runner/pareto.h"

using namespace scalpel::experiments;

TEST(Pareto, FrontDropsDominatedPoints) {
  std::vector<Point2> p{{1, 5}, {2, 3}, {3, 4}, {4, 1}, {2, 3}, {5, 0.5}, {NAN, 0}};
  // {3,4} is dominated by {2,3}; the duplicate {2,3} keeps the first; NaN is ignored.
  EXPECT_EQ(pareto_front(p), (std::vector<size_t>{0, 1, 3, 5}));
}

TEST(Pareto, HypervolumeOfHandComputedFronts) {
  // One point (0.5, 0.5) with ref (1, 1): area 0.25.
  EXPECT_DOUBLE_EQ(hypervolume({{0.5, 0.5}}, {1, 1}), 0.25);
  // Staircase (0,1),(1,0.5),(2,0) with ref (3,2): 1*1 + 1*1.5 + 1*2 = 4.5
  EXPECT_DOUBLE_EQ(hypervolume({{0, 1}, {1, 0.5}, {2, 0}}, {3, 2}), 4.5);
  // A dominated point adds nothing; a point outside the box adds nothing.
  EXPECT_DOUBLE_EQ(hypervolume({{0, 1}, {1, 0.5}, {2, 0}, {1.5, 1.5}, {4, -1}}, {3, 2}), 4.5);
  EXPECT_DOUBLE_EQ(hypervolume({}, {1, 1}), 0.0);
}

TEST(Pareto, SharedNormalisationAcrossMethods) {
  std::map<std::string, std::vector<Point2>> m;
  m["a"] = {{0, 10}, {10, 0}};  // corners of the shared box
  m["b"] = {{5, 5}};
  // Normalised: a -> (0,1),(1,0); b -> (0.5,0.5); ref (1.1,1.1).
  auto hv = hypervolumes(m, false);
  EXPECT_NEAR(hv["a"], 1.0 * 0.1 + 0.1 * 1.1, 1e-12);  // (1-0)*(1.1-1) + (1.1-1)*(1.1-0)
  EXPECT_NEAR(hv["b"], 0.6 * 0.6, 1e-12);
  // Log scale: decades become equal steps.
  std::map<std::string, std::vector<Point2>> l;
  l["x"] = {{1, 100}, {100, 1}};
  l["y"] = {{10, 10}};
  auto hl = hypervolumes(l, true);
  EXPECT_NEAR(hl["y"], 0.6 * 0.6, 1e-12);
}

TEST(Pareto, CappedHypervolumeDropsPointsWorseThanTheCap) {
  std::map<std::string, std::vector<Point2>> m;
  m["a"] = {{1, 3}, {2, 1}, {5, 0}};  // (5, 0) has main loss above the cap 4: dropped
  m["b"] = {{3, 2}};
  m["c"] = {{4, 0.5}};  // exactly at the cap: earns nothing
  // Kept points: (1,3), (2,1), (3,2). x over [1, 4] -> 0, 1/3, 2/3; y over [1, 3] -> 1, 0, 0.5.
  const auto hv = capped_hypervolumes(m, 4.0, false);
  // a: (0,1) and (1/3,0) with ref (1, 1.1): (1/3)(0.1) + (2/3)(1.1)
  EXPECT_NEAR(hv.at("a"), (1.0 / 3) * 0.1 + (2.0 / 3) * 1.1, 1e-12);
  EXPECT_NEAR(hv.at("b"), (1.0 / 3) * 0.6, 1e-12);
  EXPECT_DOUBLE_EQ(hv.at("c"), 0.0);
  // The uncapped hypervolume of the same points rewards c's and a's trade-off past the cap.
  EXPECT_GT(hypervolumes(m, false).at("c"), 0.0);
  // No cap known: n/a for every method, never a number.
  const auto none = capped_hypervolumes(m, NAN, false);
  EXPECT_TRUE(std::isnan(none.at("a")) && std::isnan(none.at("b")));
  // Log axes: the cap is compared before the transform and normalised after it.
  std::map<std::string, std::vector<Point2>> l;
  l["x"] = {{1, 100}, {10, 1}};
  const auto hl = capped_hypervolumes(l, 100.0, true);
  // x: log10 over [0, 2] -> 0, 0.5; y: log10 over [0, 2] -> 1, 0. Area (0.5)(0.1) + (0.5)(1.1).
  EXPECT_NEAR(hl.at("x"), 0.5 * 0.1 + 0.5 * 1.1, 1e-12);
}
