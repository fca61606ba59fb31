// DualProj (TorchJD): project the mean gradient onto the dual cone of the rows of J:
// w = argmin_{v >= u} vᵀ G v with u = 1/T, d = Jᵀw, on TorchJD's trace-normalised, regularised Gram
// matrix (see upgrad.cpp). Non-conflicting: <d, g_i> >= 0 for every task.
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {

namespace {

class DualProj final : public GramAggregator {
 public:
  explicit DualProj(const SurgeonOptions& o) : GramAggregator("dualproj", o, {}) {}

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    torchjd_normalize(G, T, Gn_);
    lower_.assign(static_cast<size_t>(T), 1.0 / T);
    box_qp(Gn_, T, lower_, v_);
    for (int k = 0; k < T; ++k) w[static_cast<size_t>(k)] = v_[static_cast<size_t>(k)];
  }

 private:
  std::vector<double> Gn_, lower_, v_;
};

const SurgeonRegistration kRegistration("dualproj", {}, "the mean gradient projected onto the dual cone",
                                        [](const SurgeonOptions& o) { return std::make_unique<DualProj>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
