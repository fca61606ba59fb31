// GramAggregator base (two fused passes around a T×T weight computation) and the K×K solvers the
// aggregators share.
#include "optim/surgery/aggregator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <Eigen/Dense>

namespace scalpel {
namespace surgery {

MultiTaskSurgeon::MultiTaskSurgeon(std::string name, const SurgeonOptions& o, const std::vector<std::string>& allowed)
    : Surgeon(name, o) {
  for (const auto& kv : o.method_options()) {
    if (std::find(allowed.begin(), allowed.end(), kv.first) == allowed.end()) {
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      throw OptionNotTaken(name + ": option '" + kv.first + "' does not apply to " + name +
                           " (its options: " + (known.empty() ? "none" : known) + ")");
    }
  }
  if (o.rescale()) throw std::invalid_argument(name + ": option 'rescale' does not apply to " + name);
  if (o.ratio_only()) throw std::invalid_argument(name + ": option 'ratio_only' applies to bloop only");
}

double MultiTaskSurgeon::number_option(const std::string& key, double fallback) const {
  const auto& m = options().method_options();
  const auto it = m.find(key);
  if (it == m.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !std::isfinite(v)) {
    throw std::invalid_argument(name() + ": option '" + key + "' expects a finite number, got '" + it->second + "'");
  }
  return v;
}

double MultiTaskSurgeon::number_option(const std::string& key, double fallback, double lo, double hi) const {
  const double v = number_option(key, fallback);
  if (!(v >= lo && v <= hi)) {
    std::ostringstream os;
    os << name() << ": option '" << key << "' expects a number in [" << lo << ", " << hi << "], got " << v;
    throw std::invalid_argument(os.str());
  }
  return v;
}

int64_t MultiTaskSurgeon::int_option(const std::string& key, int64_t fallback, int64_t lo) const {
  const double v = number_option(key, static_cast<double>(fallback));
  if (v != std::floor(v) || v < static_cast<double>(lo) || v > 9.007199254740992e15) {
    std::ostringstream os;
    os << name() << ": option '" << key << "' expects an integer >= " << lo << ", got " << v;
    throw std::invalid_argument(os.str());
  }
  return static_cast<int64_t>(v);
}

std::string MultiTaskSurgeon::string_option(const std::string& key, const std::string& fallback) const {
  const auto& m = options().method_options();
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

void GramAggregator::combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) {
  const int T = in.K + 1;
  FusedPass pass1;
  pass1.vectors = in.g;
  pass1.gram = &G_;
  add_bytes_moved(run_fused_pass(in.P, pass1));
  gram_.resize(static_cast<size_t>(T) * T);
  for (int a = 0; a < T; ++a)
    for (int b = 0; b < T; ++b) gram_[static_cast<size_t>(a) * T + b] = G_(a, b);
  w_.assign(static_cast<size_t>(T), 0.0);
  weights(gram_, T, w_);
  for (double& x : w_) {
    if (!std::isfinite(x)) throw std::logic_error(name() + ": non-finite weight from the Gram matrix");
  }
  FusedPass pass2;
  pass2.vectors = in.g;
  pass2.out = d;
  pass2.coef = w_;
  add_bytes_moved(run_fused_pass(in.P, pass2));
  if (diag) {
    fill_common_diagnostics(G_, in.K, -1, w_, *diag);
    diag->weights = w_;
  }
}

// ---- solvers ------------------------------------------------------------------------------------

void box_qp(const std::vector<double>& G, int T, const std::vector<double>& lower, std::vector<double>& v,
            int max_iter) {
  // x = v - lower >= 0 minimises xᵀGx + 2 xᵀ(G lower): Lawson–Hanson style primal active set (exact
  // in finitely many steps for G positive definite; a semidefinite G is handled by a tiny ridge in
  // the free-set solves).
  v = lower;
  double tr = 0;
  for (int i = 0; i < T; ++i) tr += G[static_cast<size_t>(i) * T + i];
  if (!(tr > 0)) return;  // zero matrix: any feasible v is optimal; keep the bound
  auto g = [&](int a, int b) { return G[static_cast<size_t>(a) * T + b] / tr; };
  std::vector<double> q(static_cast<size_t>(T), 0.0), x(static_cast<size_t>(T), 0.0), z(static_cast<size_t>(T));
  for (int i = 0; i < T; ++i)
    for (int k = 0; k < T; ++k) q[static_cast<size_t>(i)] += g(i, k) * lower[static_cast<size_t>(k)];
  std::vector<char> free(static_cast<size_t>(T), 0);
  auto solve_free = [&]() {
    std::vector<int> F;
    for (int i = 0; i < T; ++i)
      if (free[static_cast<size_t>(i)]) F.push_back(i);
    const int n = static_cast<int>(F.size());
    Eigen::MatrixXd A(n, n);
    Eigen::VectorXd rhs(n);
    for (int a = 0; a < n; ++a) {
      for (int b = 0; b < n; ++b) A(a, b) = g(F[a], F[b]);
      A(a, a) += 1e-13;
      rhs(a) = -q[static_cast<size_t>(F[a])];
    }
    const Eigen::VectorXd sol = A.ldlt().solve(rhs);
    std::fill(z.begin(), z.end(), 0.0);
    for (int a = 0; a < n; ++a) z[static_cast<size_t>(F[a])] = sol(a);
  };
  for (int outer = 0; outer < max_iter; ++outer) {
    // Negative gradient of ½xᵀGx + qᵀx at x.
    int best = -1;
    double bestw = 1e-13;
    for (int j = 0; j < T; ++j) {
      if (free[static_cast<size_t>(j)]) continue;
      double w = -q[static_cast<size_t>(j)];
      for (int k = 0; k < T; ++k) w -= g(j, k) * x[static_cast<size_t>(k)];
      if (w > bestw) bestw = w, best = j;
    }
    if (best < 0) break;
    free[static_cast<size_t>(best)] = 1;
    for (int inner = 0; inner < 4 * T + 4; ++inner) {
      solve_free();
      bool ok = true;
      double alpha = 1.0;
      for (int j = 0; j < T; ++j) {
        if (free[static_cast<size_t>(j)] && z[static_cast<size_t>(j)] <= 0) {
          ok = false;
          const double xj = x[static_cast<size_t>(j)];
          alpha = std::min(alpha, xj / (xj - z[static_cast<size_t>(j)]));
        }
      }
      if (ok) {
        x = z;
        break;
      }
      for (int j = 0; j < T; ++j) {
        x[static_cast<size_t>(j)] += alpha * (z[static_cast<size_t>(j)] - x[static_cast<size_t>(j)]);
        if (free[static_cast<size_t>(j)] && x[static_cast<size_t>(j)] <= 1e-15) {
          free[static_cast<size_t>(j)] = 0;
          x[static_cast<size_t>(j)] = 0;
        }
      }
    }
  }
  for (int i = 0; i < T; ++i) v[static_cast<size_t>(i)] = lower[static_cast<size_t>(i)] + x[static_cast<size_t>(i)];
}

void min_norm_simplex(const std::vector<double>& G, int T, std::vector<double>& w, int max_iter) {
  w.assign(static_cast<size_t>(T), 1.0 / T);
  if (T == 1) {
    w[0] = 1.0;
    return;
  }
  auto g = [&](int a, int b) { return G[static_cast<size_t>(a) * T + b]; };
  if (T == 2) {
    const double den = g(0, 0) + g(1, 1) - 2 * g(0, 1);
    double a = den > 0 ? (g(1, 1) - g(0, 1)) / den : 0.5;
    a = std::min(1.0, std::max(0.0, a));
    w[0] = a;
    w[1] = 1 - a;
    return;
  }
  // Away-step Frank–Wolfe with exact line search (linear convergence on the simplex).
  std::vector<double> Gw(static_cast<size_t>(T));
  double scale = 0;
  for (int i = 0; i < T; ++i) scale = std::max(scale, g(i, i));
  if (!(scale > 0)) return;
  for (int it = 0; it < max_iter; ++it) {
    for (int i = 0; i < T; ++i) {
      double s = 0;
      for (int k = 0; k < T; ++k) s += g(i, k) * w[static_cast<size_t>(k)];
      Gw[static_cast<size_t>(i)] = s;
    }
    double wGw = 0;
    for (int i = 0; i < T; ++i) wGw += w[static_cast<size_t>(i)] * Gw[static_cast<size_t>(i)];
    int s = 0, a = -1;
    for (int i = 0; i < T; ++i) {
      if (Gw[static_cast<size_t>(i)] < Gw[static_cast<size_t>(s)]) s = i;
      if (w[static_cast<size_t>(i)] > 0 && (a < 0 || Gw[static_cast<size_t>(i)] > Gw[static_cast<size_t>(a)])) a = i;
    }
    const double gap_fw = wGw - Gw[static_cast<size_t>(s)];
    const double gap_a = Gw[static_cast<size_t>(a)] - wGw;
    if (!(std::max(gap_fw, gap_a) > 1e-14 * scale)) break;
    if (gap_fw >= gap_a) {
      const double dGd = g(s, s) - 2 * Gw[static_cast<size_t>(s)] + wGw;
      double gamma = dGd > 0 ? gap_fw / dGd : 1.0;
      gamma = std::min(1.0, std::max(0.0, gamma));
      for (double& x : w) x *= (1 - gamma);
      w[static_cast<size_t>(s)] += gamma;
    } else {
      const double wa = w[static_cast<size_t>(a)];
      const double gmax = wa < 1 ? wa / (1 - wa) : 1e300;
      const double dGd = wGw - 2 * Gw[static_cast<size_t>(a)] + g(a, a);
      double gamma = dGd > 0 ? gap_a / dGd : gmax;
      gamma = std::min(gmax, std::max(0.0, gamma));
      for (double& x : w) x *= (1 + gamma);
      w[static_cast<size_t>(a)] -= gamma;
      if (gamma == gmax) w[static_cast<size_t>(a)] = 0.0;
    }
  }
}

void project_simplex(std::vector<double>& v, std::vector<double>& scratch) {
  // v [T] -> argmin_{x in simplex} ‖x - v‖ = max(v - θ, 0). The projection is invariant under
  // v + c·1, so v is first shifted to max(v) = 0: then the sort-based θ stays accurate when the
  // entries are huge (a step γGλ of a badly scaled G), where v_max - (v_max - 1) would round to 0.
  const size_t T = v.size();
  if (T == 0) return;
  const double top = *std::max_element(v.begin(), v.end());
  for (double& x : v) x -= top;
  scratch = v;
  std::sort(scratch.begin(), scratch.end(), [](double a, double b) { return a > b; });
  double cum = 0, theta = -1.0;  // k = 0 always qualifies: θ = u_0 - 1 = -1
  for (size_t k = 0; k < T; ++k) {
    cum += scratch[k];
    const double t = (cum - 1.0) / static_cast<double>(k + 1);
    if (scratch[k] - t > 0) theta = t;
  }
  for (double& x : v) x = std::max(x - theta, 0.0);
}

}  // namespace surgery
}  // namespace scalpel
