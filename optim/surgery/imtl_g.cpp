// IMTL-G (Liu et al. 2021, "Towards impartial multi-task learning"), in TorchJD's Gram form:
// v = G⁺ n with n_i = ‖g_i‖, w = v / Σv, d = Jᵀw. Then <d, g_i/‖g_i‖> is the same for every task
// (equal projections on every unit gradient) and the weights sum to 1. Σv <= 0 (or G = 0) gives
// w = 0. Pseudo-inverse from the eigendecomposition, eigenvalues below 1e-12·λmax dropped.
#include <Eigen/Dense>
#include <cmath>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class ImtlG final : public GramAggregator {
 public:
  explicit ImtlG(const SurgeonOptions& o) : GramAggregator("imtl-g", o, {}) {}

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> Gm(G.data(), T, T);
    Eigen::VectorXd n = Gm.diagonal().cwiseMax(0.0).cwiseSqrt();
    es_.compute(Gm);
    const Eigen::VectorXd& lam = es_.eigenvalues();
    const double lmax = lam.cwiseAbs().maxCoeff();
    Eigen::VectorXd v = Eigen::VectorXd::Zero(T);
    if (lmax > 0) {
      const Eigen::VectorXd proj = es_.eigenvectors().transpose() * n;
      Eigen::VectorXd scaled(T);
      for (int i = 0; i < T; ++i) scaled(i) = lam(i) > 1e-12 * lmax ? proj(i) / lam(i) : 0.0;
      v = es_.eigenvectors() * scaled;
    }
    const double s = v.sum();
    for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] = s > 0 ? v(i) / s : 0.0;
  }

 private:
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es_;
};

const SurgeonRegistration kRegistration("imtl-g", {"imtlg"}, "impartial: equal projections on every unit gradient",
                                        [](const SurgeonOptions& o) { return std::make_unique<ImtlG>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
