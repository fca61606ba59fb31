// UPGrad (Quinton & Rey 2024, TorchJD): project each task gradient onto the dual cone of the rows of
// J and average: w = Σ_i u_i v_i with v_i = argmin_{v >= e_i} vᵀ G v, u = 1/T; d = Jᵀw. As in TorchJD
// the Gram matrix is first normalised by its trace (zero when trace < norm_eps = 1e-4) and
// regularised, G + reg_eps·I (options norm_eps, reg_eps, both default 1e-4 as TorchJD; the goldens
// need them). With reg_eps = norm_eps = 0 the projection is exact and <d, g_i> >= 0 for every task
// (non-conflicting); TorchJD's regularisation can leave <d, g_i> slightly negative on rank-deficient
// J, and norm_eps turns a tiny J (trace(G) < norm_eps) into the plain mean.
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {

// Shared by upgrad and dualproj: TorchJD's normalise + regularise of the Gram matrix.
void torchjd_normalize(const std::vector<double>& G, int T, double norm_eps, double reg_eps, std::vector<double>& out) {
  out = G;
  double tr = 0;
  for (int i = 0; i < T; ++i) tr += G[static_cast<size_t>(i) * T + i];
  const bool zero = !(tr > 0) || tr < norm_eps;
  for (double& x : out) x = zero ? 0.0 : x / tr;
  for (int i = 0; i < T; ++i) out[static_cast<size_t>(i) * T + i] += reg_eps;
}

namespace {

class UPGrad final : public GramAggregator {
 public:
  explicit UPGrad(const SurgeonOptions& o) : GramAggregator("upgrad", o, {"reg_eps", "norm_eps"}) {
    reg_eps_ = number_option("reg_eps", 1e-4);
    norm_eps_ = number_option("norm_eps", 1e-4);
    if (reg_eps_ < 0)
      throw std::invalid_argument("upgrad: option 'reg_eps' must be >= 0, got " + std::to_string(reg_eps_));
    if (norm_eps_ < 0)
      throw std::invalid_argument("upgrad: option 'norm_eps' must be >= 0, got " + std::to_string(norm_eps_));
  }

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    torchjd_normalize(G, T, norm_eps_, reg_eps_, Gn_);
    std::fill(w.begin(), w.end(), 0.0);
    for (int i = 0; i < T; ++i) {
      lower_.assign(static_cast<size_t>(T), 0.0);
      lower_[static_cast<size_t>(i)] = 1.0 / T;
      box_qp(Gn_, T, lower_, v_);
      for (int k = 0; k < T; ++k) w[static_cast<size_t>(k)] += v_[static_cast<size_t>(k)];
    }
  }

 private:
  double reg_eps_ = 1e-4, norm_eps_ = 1e-4;
  std::vector<double> Gn_, lower_, v_;
};

const SurgeonRegistration kRegistration("upgrad", {}, "average of each gradient projected onto the dual cone",
                                        [](const SurgeonOptions& o) { return std::make_unique<UPGrad>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
