// UPGrad (Quinton & Rey 2024, TorchJD): project each task gradient onto the dual cone of the rows of
// J and average: w = Σ_i u_i v_i with v_i = argmin_{v >= e_i} vᵀ G v, u = 1/T; d = Jᵀw. As in TorchJD
// the Gram matrix is first normalised by its trace (zero when trace < norm_eps = 1e-4) and
// regularised, G + reg_eps·I (reg_eps = 1e-4). Then <d, g_i> >= 0 for every task (non-conflicting),
// and d is the mean when no pair conflicts.
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {

// Shared by upgrad and dualproj: TorchJD's normalise + regularise of the Gram matrix.
void torchjd_normalize(const std::vector<double>& G, int T, std::vector<double>& out) {
  out = G;
  double tr = 0;
  for (int i = 0; i < T; ++i) tr += G[static_cast<size_t>(i) * T + i];
  for (double& x : out) x = tr < 1e-4 ? 0.0 : x / tr;
  for (int i = 0; i < T; ++i) out[static_cast<size_t>(i) * T + i] += 1e-4;
}

namespace {

class UPGrad final : public GramAggregator {
 public:
  explicit UPGrad(const SurgeonOptions& o) : GramAggregator("upgrad", o, {}) {}

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    torchjd_normalize(G, T, Gn_);
    std::fill(w.begin(), w.end(), 0.0);
    for (int i = 0; i < T; ++i) {
      lower_.assign(static_cast<size_t>(T), 0.0);
      lower_[static_cast<size_t>(i)] = 1.0 / T;
      box_qp(Gn_, T, lower_, v_);
      for (int k = 0; k < T; ++k) w[static_cast<size_t>(k)] += v_[static_cast<size_t>(k)];
    }
  }

 private:
  std::vector<double> Gn_, lower_, v_;
};

const SurgeonRegistration kRegistration("upgrad", {}, "average of each gradient projected onto the dual cone",
                                        [](const SurgeonOptions& o) { return std::make_unique<UPGrad>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
