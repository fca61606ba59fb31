// GramAggregator base (two fused passes around a T×T weight computation) and the K×K solvers the
// aggregators share.
#include "optim/surgery/aggregator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace scalpel {
namespace surgery {

GramAggregator::GramAggregator(std::string name, const SurgeonOptions& o, const std::vector<std::string>& allowed)
    : Surgeon(name, o) {
  for (const auto& kv : o.method_options()) {
    if (std::find(allowed.begin(), allowed.end(), kv.first) == allowed.end()) {
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      throw std::invalid_argument(name + ": option '" + kv.first + "' does not apply to " + name +
                                  " (its options: " + (known.empty() ? "none" : known) + ")");
    }
  }
  if (o.rescale()) throw std::invalid_argument(name + ": option 'rescale' does not apply to " + name);
  if (o.ratio_only()) throw std::invalid_argument(name + ": option 'ratio_only' applies to bloop only");
}

double GramAggregator::number_option(const std::string& key, double fallback) const {
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

std::string GramAggregator::string_option(const std::string& key, const std::string& fallback) const {
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
            int max_sweeps) {
  v = lower;
  double tr = 0;
  for (int i = 0; i < T; ++i) tr += G[static_cast<size_t>(i) * T + i];
  if (!(tr > 0)) return;  // zero matrix: any feasible v is optimal; keep the bound
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    double change = 0, mag = 0;
    for (int j = 0; j < T; ++j) {
      const double* row = &G[static_cast<size_t>(j) * T];
      const double gjj = row[j];
      if (!(gjj > 1e-14 * tr)) continue;
      double s = 0;
      for (int k = 0; k < T; ++k)
        if (k != j) s += row[k] * v[static_cast<size_t>(k)];
      const double nv = std::max(lower[static_cast<size_t>(j)], -s / gjj);
      change = std::max(change, std::abs(nv - v[static_cast<size_t>(j)]));
      mag = std::max(mag, std::abs(nv));
      v[static_cast<size_t>(j)] = nv;
    }
    if (change <= 1e-15 * std::max(mag, 1.0)) break;
  }
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
  std::vector<double> Gw(static_cast<size_t>(T));
  for (int it = 0; it < max_iter; ++it) {
    for (int i = 0; i < T; ++i) {
      double s = 0;
      for (int k = 0; k < T; ++k) s += g(i, k) * w[static_cast<size_t>(k)];
      Gw[static_cast<size_t>(i)] = s;
    }
    int t = 0;
    for (int i = 1; i < T; ++i)
      if (Gw[static_cast<size_t>(i)] < Gw[static_cast<size_t>(t)]) t = i;
    double wGw = 0;
    for (int i = 0; i < T; ++i) wGw += w[static_cast<size_t>(i)] * Gw[static_cast<size_t>(i)];
    // Line search between x = Jᵀw and the vertex g_t: min_γ ‖(1-γ)x + γ g_t‖².
    const double xx = wGw, xt = Gw[static_cast<size_t>(t)], tt = g(t, t);
    const double gap = xx - xt;  // Frank–Wolfe duality gap
    if (!(gap > 1e-12 * std::max(xx, 1e-300))) break;
    const double den = xx + tt - 2 * xt;
    double gamma = den > 0 ? (xx - xt) / den : 1.0;
    gamma = std::min(1.0, std::max(0.0, gamma));
    for (double& x : w) x *= (1 - gamma);
    w[static_cast<size_t>(t)] += gamma;
  }
}

}  // namespace surgery
}  // namespace scalpel
