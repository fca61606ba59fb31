#include "experiments/noise_model.h"

#include <cmath>

#include "core/random.h"

namespace scalpel {
namespace experiments {

namespace {

using Vec = std::vector<double>;

double dotv(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// π(u; v) = u − <u,v>/(‖v‖² + eps) v
Vec project(const Vec& u, const Vec& v, double eps) {
  const double r = dotv(u, v) / (dotv(v, v) + eps);
  Vec out(u.size());
  for (size_t i = 0; i < u.size(); ++i) out[i] = u[i] - r * v[i];
  return out;
}

double rel_dist(const Vec& a, const Vec& b, double scale) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s) / scale;
}

// E[g0 + λ π(g1; g0 + s ε)] by Monte Carlo (the first term's noise has mean zero).
Vec expected_direction(const Vec& g0, const Vec& g1, double lambda, double s, int64_t samples, Generator& gen) {
  const size_t p = g0.size();
  Vec mean(p, 0.0), v(p);
  for (int64_t k = 0; k < samples; ++k) {
    for (size_t i = 0; i < p; ++i) v[i] = g0[i] + s * gen.normal();
    const Vec pr = project(g1, v, 1e-7);
    for (size_t i = 0; i < p; ++i) mean[i] += pr[i];
  }
  Vec d(p);
  for (size_t i = 0; i < p; ++i) d[i] = g0[i] + lambda * mean[i] / static_cast<double>(samples);
  return d;
}

}  // namespace

std::vector<std::array<double, 5>> noise_curves(int64_t p, double lambda, const Vec& sigmas, double rho,
                                                int64_t samples, uint64_t seed) {
  Generator gen(seed);
  Vec g0(p), g1(p);
  for (auto& x : g0) x = gen.normal();
  for (auto& x : g1) x = gen.normal();
  const Vec pr = project(g1, g0, 1e-7);
  Vec bloop(p), mixed(p);
  for (int64_t i = 0; i < p; ++i) {
    bloop[i] = g0[i] + lambda * pr[i];
    mixed[i] = g0[i] + lambda * g1[i];
  }
  const double scale = std::sqrt(dotv(bloop, bloop));
  const double ema_factor = std::sqrt(rho / (2.0 - rho));
  std::vector<std::array<double, 5>> rows;
  for (double s : sigmas) {
    const Vec naive = expected_direction(g0, g1, lambda, s, samples, gen);
    const Vec ema = expected_direction(g0, g1, lambda, s * ema_factor, samples, gen);
    rows.push_back({s, rel_dist(naive, bloop, scale), rel_dist(naive, mixed, scale), rel_dist(ema, bloop, scale),
                    rel_dist(ema, mixed, scale)});
  }
  return rows;
}

}  // namespace experiments
}  // namespace scalpel
