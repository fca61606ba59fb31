// Pareto fronts and 2-D hypervolume of (main loss, auxiliary loss) trade-offs (ALGORITHMS.md §6).
//
// Lower is better on both axes. The front of a set of points is its non-dominated subset. To
// compare methods within one sweep, both axes are normalised with the min and max over ALL points
// of the sweep (optionally after a log10 transform, for losses spanning decades), and each method's
// hypervolume is the area its front dominates inside the box bounded by the reference point
// (1.1, 1.1) in normalised coordinates. Bigger is better. Non-finite points are ignored.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace scalpel {
namespace experiments {

struct Point2 {
  double x = 0.0;  // main loss
  double y = 0.0;  // auxiliary loss
};

// Indices of the non-dominated points, sorted by x ascending. A point dominates another when it is
// <= on both axes and < on one. Duplicates keep the first occurrence.
std::vector<size_t> pareto_front(const std::vector<Point2>& points);

// Area dominated by `points` (already in the space of `ref`) and bounded by `ref`; points with a
// coordinate >= ref contribute nothing.
double hypervolume(const std::vector<Point2>& points, const Point2& ref);

struct Normalizer {
  bool log_scale = false;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  // min/max over every finite point (log10 first when log_scale; non-positive values are then
  // ignored). Degenerate ranges (max == min) become width 1.
  static Normalizer fit(const std::vector<Point2>& all_points, bool log_scale);
  Point2 apply(const Point2& p) const;
};

// Hypervolume per method with the shared normalisation and reference (1.1, 1.1).
std::map<std::string, double> hypervolumes(const std::map<std::string, std::vector<Point2>>& by_method, bool log_scale,
                                           const Point2& ref = {1.1, 1.1});

// Capped hypervolume: only the points whose main loss is below `main_cap` (the main loss of the
// main-only baseline: a trade-off that makes the main task worse than ignoring the auxiliary loss
// earns nothing) count. x is normalised over [smallest kept x, main_cap] with reference x = 1 (the
// cap itself), y with the min/max of the kept points and reference 1.1, all methods sharing the
// normalisation (log10 first when log_scale). A method with no point under the cap gets 0; a
// non-finite cap gives NaN for every method.
std::map<std::string, double> capped_hypervolumes(const std::map<std::string, std::vector<Point2>>& by_method,
                                                  double main_cap, bool log_scale);

}  // namespace experiments
}  // namespace scalpel
