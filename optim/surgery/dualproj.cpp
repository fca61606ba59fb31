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
  explicit DualProj(const SurgeonOptions& o) : GramAggregator("dualproj", o, {"reg_eps", "norm_eps"}) {
    reg_eps_ = number_option("reg_eps", 1e-4);
    norm_eps_ = number_option("norm_eps", 1e-4);
    if (reg_eps_ < 0)
      throw std::invalid_argument("dualproj: option 'reg_eps' must be >= 0, got " + std::to_string(reg_eps_));
    if (norm_eps_ < 0)
      throw std::invalid_argument("dualproj: option 'norm_eps' must be >= 0, got " + std::to_string(norm_eps_));
  }

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    torchjd_normalize(G, T, norm_eps_, reg_eps_, Gn_);
    lower_.assign(static_cast<size_t>(T), 1.0 / T);
    box_qp(Gn_, T, lower_, v_);
    for (int k = 0; k < T; ++k) w[static_cast<size_t>(k)] = v_[static_cast<size_t>(k)];
  }

 private:
  double reg_eps_ = 1e-4, norm_eps_ = 1e-4;
  std::vector<double> Gn_, lower_, v_;
};

const SurgeonRegistration kRegistration("dualproj", {}, "the mean gradient projected onto the dual cone",
                                        [](const SurgeonOptions& o) { return std::make_unique<DualProj>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
