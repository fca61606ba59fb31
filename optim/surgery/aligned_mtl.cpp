// Aligned-MTL (Senushkin et al. 2023): with G = V Λ Vᵀ (eigenvalues above 1e-12·λmax kept, rank r),
// σ_i = √λ_i, B = s · V_r Λ_r^{-1/2} V_rᵀ and w = B u (u = 1/T), d = Jᵀw. The aligned gradients
// (the rows of B J) are orthogonal with equal norms s on the span of J. Option scale = min (default,
// σ_min, as the paper) | median | rmse (√(Σσ²/r)).
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class AlignedMtl final : public GramAggregator {
 public:
  explicit AlignedMtl(const SurgeonOptions& o) : GramAggregator("aligned-mtl", o, {"scale"}) {
    scale_ = string_option("scale", "min");
    if (scale_ != "min" && scale_ != "median" && scale_ != "rmse")
      throw std::invalid_argument("aligned-mtl: option 'scale' expects min, median or rmse, got '" + scale_ + "'");
  }

 protected:
  void weights(const std::vector<double>& G, int T, std::vector<double>& w) override {
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> Gm(G.data(), T, T);
    es_.compute(Gm);
    const Eigen::VectorXd& lam = es_.eigenvalues();
    const double lmax = lam.cwiseAbs().maxCoeff();
    std::fill(w.begin(), w.end(), 0.0);
    if (!(lmax > 0)) return;
    sig_.clear();
    for (int i = 0; i < T; ++i)
      if (lam(i) > 1e-12 * lmax) sig_.push_back(std::sqrt(lam(i)));
    std::sort(sig_.begin(), sig_.end());
    double s = sig_.front();
    if (scale_ == "median") {
      const size_t r = sig_.size();
      s = r % 2 ? sig_[r / 2] : 0.5 * (sig_[r / 2 - 1] + sig_[r / 2]);
    } else if (scale_ == "rmse") {
      double q = 0;
      for (double x : sig_) q += x * x;
      s = std::sqrt(q / static_cast<double>(sig_.size()));
    }
    const Eigen::MatrixXd& V = es_.eigenvectors();
    const Eigen::VectorXd u = Eigen::VectorXd::Constant(T, 1.0 / T);
    Eigen::VectorXd proj = V.transpose() * u;
    for (int i = 0; i < T; ++i) proj(i) = lam(i) > 1e-12 * lmax ? s * proj(i) / std::sqrt(lam(i)) : 0.0;
    const Eigen::VectorXd v = V * proj;
    for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] = v(i);
  }

 private:
  std::string scale_;
  std::vector<double> sig_;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es_;
};

const SurgeonRegistration kRegistration("aligned-mtl", {"alignedmtl"},
                                        "gradients aligned by the Gram eigendecomposition, equal norms",
                                        [](const SurgeonOptions& o) { return std::make_unique<AlignedMtl>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
