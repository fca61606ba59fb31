#include "experiments/runner/pareto.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace scalpel {
namespace experiments {

namespace {
bool finite(const Point2& p) { return std::isfinite(p.x) && std::isfinite(p.y); }
}  // namespace

std::vector<size_t> pareto_front(const std::vector<Point2>& points) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < points.size(); ++i) {
    if (finite(points[i])) idx.push_back(i);
  }
  // Sort by x, then y, then index (stable choice among duplicates).
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    if (points[a].x != points[b].x) return points[a].x < points[b].x;
    if (points[a].y != points[b].y) return points[a].y < points[b].y;
    return a < b;
  });
  std::vector<size_t> front;
  double best_y = INFINITY;
  for (size_t i : idx) {
    if (points[i].y < best_y) {
      front.push_back(i);
      best_y = points[i].y;
    }
  }
  return front;
}

double hypervolume(const std::vector<Point2>& points, const Point2& ref) {
  std::vector<Point2> inside;
  for (const Point2& p : points) {
    if (finite(p) && p.x < ref.x && p.y < ref.y) inside.push_back(p);
  }
  const std::vector<size_t> f = pareto_front(inside);
  double area = 0.0;
  for (size_t k = 0; k < f.size(); ++k) {
    const Point2& p = inside[f[k]];
    const double next_x = k + 1 < f.size() ? inside[f[k + 1]].x : ref.x;
    area += (next_x - p.x) * (ref.y - p.y);
  }
  return area;
}

Normalizer Normalizer::fit(const std::vector<Point2>& all_points, bool log_scale) {
  Normalizer n;
  n.log_scale = log_scale;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Point2& p : all_points) {
    if (!finite(p)) continue;
    if (log_scale && (p.x <= 0 || p.y <= 0)) continue;
    const double x = log_scale ? std::log10(p.x) : p.x;
    const double y = log_scale ? std::log10(p.y) : p.y;
    x0 = std::min(x0, x);
    x1 = std::max(x1, x);
    y0 = std::min(y0, y);
    y1 = std::max(y1, y);
  }
  if (!std::isfinite(x0)) return n;
  n.x_min = x0;
  n.x_max = x1 > x0 ? x1 : x0 + 1;
  n.y_min = y0;
  n.y_max = y1 > y0 ? y1 : y0 + 1;
  return n;
}

Point2 Normalizer::apply(const Point2& p) const {
  double x = p.x, y = p.y;
  if (log_scale) {
    x = x > 0 ? std::log10(x) : NAN;
    y = y > 0 ? std::log10(y) : NAN;
  }
  return {(x - x_min) / (x_max - x_min), (y - y_min) / (y_max - y_min)};
}

std::map<std::string, double> hypervolumes(const std::map<std::string, std::vector<Point2>>& by_method, bool log_scale,
                                           const Point2& ref) {
  std::vector<Point2> all;
  for (const auto& [m, pts] : by_method) all.insert(all.end(), pts.begin(), pts.end());
  const Normalizer n = Normalizer::fit(all, log_scale);
  std::map<std::string, double> out;
  for (const auto& [m, pts] : by_method) {
    std::vector<Point2> normed;
    for (const Point2& p : pts) normed.push_back(n.apply(p));
    out[m] = hypervolume(normed, ref);
  }
  return out;
}

std::map<std::string, double> capped_hypervolumes(const std::map<std::string, std::vector<Point2>>& by_method,
                                                  double main_cap, bool log_scale) {
  std::map<std::string, double> out;
  if (!std::isfinite(main_cap) || (log_scale && main_cap <= 0)) {
    for (const auto& [m, pts] : by_method) out[m] = NAN;
    return out;
  }
  std::map<std::string, std::vector<Point2>> kept;
  std::vector<Point2> all;
  for (const auto& [m, pts] : by_method) {
    std::vector<Point2>& k = kept[m];
    for (const Point2& p : pts) {
      if (finite(p) && p.x < main_cap && (!log_scale || (p.x > 0 && p.y > 0))) k.push_back(p);
    }
    all.insert(all.end(), k.begin(), k.end());
  }
  Normalizer n = Normalizer::fit(all, log_scale);
  n.x_max = log_scale ? std::log10(main_cap) : main_cap;  // every kept x is below it
  for (const auto& [m, pts] : kept) {
    std::vector<Point2> normed;
    for (const Point2& p : pts) normed.push_back(n.apply(p));
    out[m] = hypervolume(normed, {1.0, 1.1});
  }
  return out;
}

}  // namespace experiments
}  // namespace scalpel
