#include "experiments/mtl_toy_model.h"

#include <algorithm>
#include <cmath>

namespace scalpel {
namespace experiments {

namespace {
constexpr double kLower = 5e-6;

// log max(|u|, kLower) + 6 and its derivative with respect to u.
void log_part(double u, double* value, double* du) {
  if (std::abs(u) >= kLower) {  // clamp passes the gradient at the bound, as torch.clamp
    *value = std::log(std::abs(u)) + 6.0;
    *du = 1.0 / u;
  } else {
    *value = std::log(kLower) + 6.0;
    *du = 0.0;
  }
}
}  // namespace

ToyEval mtl_toy_eval(double x1, double x2, double scale) {
  const double t = std::tanh(x2), sech2 = 1.0 - t * t;
  const double th = std::tanh(0.5 * x2), sech2h = 1.0 - th * th;
  // At x2 = 0 both clamps pass the gradient, as torch.clamp does (so the start (0, 0) moves).
  const double c1 = std::max(th, 0.0), dc1 = th >= 0 ? 0.5 * sech2h : 0.0;
  const double c2 = std::max(-th, 0.0), dc2 = -th >= 0 ? -0.5 * sech2h : 0.0;
  double a1, da1, a2, da2;
  log_part(-0.5 * x1 - 3.5 + t, &a1, &da1);  // du1/dx1 = -1/2, du1/dx2 = sech²(x2)
  log_part(-0.5 * x1 + 3.5 - t, &a2, &da2);  // du2/dx1 = -1/2, du2/dx2 = -sech²(x2)
  const double q = 0.1 * (x2 + 8) * (x2 + 8);
  const double s1 = ((x1 - 7) * (x1 - 7) + q) / 10.0 - 20.0;
  const double s2 = ((x1 + 7) * (x1 + 7) + q) / 10.0 - 20.0;
  const double ds_dx2 = 0.02 * (x2 + 8);
  ToyEval e;
  e.f1 = scale * (c1 * a1 + c2 * s1);
  e.f2 = c1 * a2 + c2 * s2;
  e.g1[0] = scale * (c1 * da1 * -0.5 + c2 * (x1 - 7) / 5.0);
  e.g1[1] = scale * (dc1 * a1 + c1 * da1 * sech2 + dc2 * s1 + c2 * ds_dx2);
  e.g2[0] = c1 * da2 * -0.5 + c2 * (x1 + 7) / 5.0;
  e.g2[1] = dc1 * a2 + c1 * da2 * -sech2 + dc2 * s2 + c2 * ds_dx2;
  return e;
}

std::vector<std::array<double, 2>> mtl_toy_starts() {
  return {{-8.5, 7.5}, {0.0, 0.0}, {9.0, 9.0}, {-7.5, -0.5}, {9.0, -1.0}};
}

double min_norm_2(const std::array<double, 2>& g1, const std::array<double, 2>& g2) {
  // min over w in [0, 1] of |w g1 + (1 - w) g2|: w = <g2 - g1, g2> / |g2 - g1|², clipped.
  const double dx = g2[0] - g1[0], dy = g2[1] - g1[1];
  const double dd = dx * dx + dy * dy;
  const double w = dd > 0 ? std::clamp((dx * g2[0] + dy * g2[1]) / dd, 0.0, 1.0) : 0.5;
  return std::hypot(w * g1[0] + (1 - w) * g2[0], w * g1[1] + (1 - w) * g2[1]);
}

}  // namespace experiments
}  // namespace scalpel
