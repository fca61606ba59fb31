// The dual-cone aggregators of TorchJD (Quinton & Rey 2024), on TorchJD's trace-normalised,
// regularised Gram matrix: G / trace(G) (zero when trace < norm_eps) + reg_eps·I, options norm_eps
// and reg_eps (both default 1e-4 as TorchJD; the goldens need them). With reg_eps = norm_eps = 0
// the projections are exact and <d, g_i> >= 0 for every task (non-conflicting); TorchJD's
// regularisation can leave <d, g_i> slightly negative on rank-deficient J, and norm_eps turns a
// tiny J (trace(G) < norm_eps) into the plain mean.
//   upgrad:   project each task gradient onto the dual cone of the rows of J and average:
//             w = Σ_i v_i, v_i = argmin_{v >= e_i/T} vᵀ G v; d = Jᵀw.
//   dualproj: project the mean gradient onto the dual cone: w = argmin_{v >= 1/T} vᵀ G v; d = Jᵀw.
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {

void torchjd_normalize(const std::vector<double>& G, int T, double norm_eps, double reg_eps, std::vector<double>& out) {
  out = G;
  double tr = 0;
  for (int i = 0; i < T; ++i) tr += G[static_cast<size_t>(i) * T + i];
  const bool zero = !(tr > 0) || tr < norm_eps;
  for (double& x : out) x = zero ? 0.0 : x / tr;
  for (int i = 0; i < T; ++i) out[static_cast<size_t>(i) * T + i] += reg_eps;
}

namespace {

// Options and Gram preprocessing shared by both methods.
class DualConeAggregator : public GramAggregator {
 public:
  DualConeAggregator(const std::string& name, const SurgeonOptions& o)
      : GramAggregator(name, o, {"reg_eps", "norm_eps"}) {
    reg_eps_ = number_option("reg_eps", 1e-4);
    norm_eps_ = number_option("norm_eps", 1e-4);
    for (const auto& [key, v] : {std::pair<const char*, double>{"reg_eps", reg_eps_}, {"norm_eps", norm_eps_}}) {
      if (v < 0) throw std::invalid_argument(name + ": option '" + key + "' must be >= 0, got " + std::to_string(v));
    }
  }

 protected:
  // Gn_ = TorchJD's preprocessing of G.
  void normalize(const std::vector<double>& G, int T) { torchjd_normalize(G, T, norm_eps_, reg_eps_, Gn_); }

  double reg_eps_ = 1e-4, norm_eps_ = 1e-4;
  std::vector<double> Gn_, lower_, v_;
};

class UPGrad final : public DualConeAggregator {
 public:
  explicit UPGrad(const SurgeonOptions& o) : DualConeAggregator("upgrad", o) {}

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    normalize(G, T);
    std::fill(w.begin(), w.end(), 0.0);
    for (int i = 0; i < T; ++i) {
      lower_.assign(static_cast<size_t>(T), 0.0);
      lower_[static_cast<size_t>(i)] = 1.0 / T;
      box_qp(Gn_, T, lower_, v_);
      for (int k = 0; k < T; ++k) w[static_cast<size_t>(k)] += v_[static_cast<size_t>(k)];
    }
  }
};

class DualProj final : public DualConeAggregator {
 public:
  explicit DualProj(const SurgeonOptions& o) : DualConeAggregator("dualproj", o) {}

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    normalize(G, T);
    lower_.assign(static_cast<size_t>(T), 1.0 / T);
    box_qp(Gn_, T, lower_, v_);
    for (int k = 0; k < T; ++k) w[static_cast<size_t>(k)] = v_[static_cast<size_t>(k)];
  }
};

const SurgeonRegistration kUPGrad("upgrad", {}, "average of each gradient projected onto the dual cone",
                                  [](const SurgeonOptions& o) { return std::make_unique<UPGrad>(o); });
const SurgeonRegistration kDualProj("dualproj", {}, "the mean gradient projected onto the dual cone",
                                    [](const SurgeonOptions& o) { return std::make_unique<DualProj>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
