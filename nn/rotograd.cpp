#include "nn/rotograd.h"

#include <Eigen/Dense>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/autograd.h"
#include "core/ops.h"

namespace scalpel {
namespace nn {

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kTiny = 1e-15;
constexpr double kRmsBeta = 0.999;

MatD to_eigen(const Tensor& t) {
  const Tensor c = t.contiguous();
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(c.data(), c.size(0),
                                                                                                 c.size(1))
      .cast<double>();
}

// x [N, d] -> a copy of x whose backward multiplies the incoming gradient by (*scales)[k], read when
// the backward runs (update() sets it after the forward).
Tensor scale_grad(const Tensor& x, const std::shared_ptr<std::vector<double>>& scales, size_t k) {
  Tensor out = x.detach().clone();
  if (should_record({x})) {
    record("rotograd_scale", out, {x}, [scales, k](const Tensor& grad_out, GradSink& sink) {
      if (sink.needs(0)) sink.add(0, mul(grad_out, static_cast<float>((*scales)[k])));
    });
  }
  return out;
}

}  // namespace

RotoGrad::RotoGrad(const RotoGradOptions& options)
    : Module("RotoGrad"),
      options_(options),
      scales_(std::make_shared<std::vector<double>>(static_cast<size_t>(std::max(options.tasks(), 0)), 1.0)) {
  if (options.dim() <= 0 || options.tasks() < 2) {
    throw std::invalid_argument("RotoGrad: needs dim > 0 and at least 2 tasks, got dim " +
                                std::to_string(options.dim()) + " and " + std::to_string(options.tasks()) + " tasks");
  }
  if (!(options.lr() > 0.0) || !std::isfinite(options.lr()) || options.burn_in() < 0) {
    throw std::invalid_argument("RotoGrad: lr must be finite and > 0 and burn_in >= 0, got lr " +
                                std::to_string(options.lr()) + ", burn_in " + std::to_string(options.burn_in()));
  }
  const int64_t d = options.dim();
  for (int k = 0; k < options.tasks(); ++k) {
    Tensor eye = Tensor::zeros({d, d});
    for (int64_t i = 0; i < d; ++i) eye.data()[i * d + i] = 1.0f;
    rotations_.push_back(register_buffer("rotation" + std::to_string(k), eye));
  }
  rms_.assign(static_cast<size_t>(options.tasks()), 0.0);
  align_loss_.assign(static_cast<size_t>(options.tasks()), NAN);
}

std::vector<Tensor> RotoGrad::forward(const Tensor& z) {
  if (z.dim() != 2 || z.size(1) != options_.dim()) {
    throw std::invalid_argument(describe() + ": input has shape " + shape_str(z.shape()) + ", expected [N, " +
                                std::to_string(options_.dim()) + "] (the shared representation)");
  }
  const size_t K = rotations_.size();
  std::vector<Tensor> out;
  out.reserve(K);
  if (is_training()) scales_ = std::make_shared<std::vector<double>>(K, 1.0);  // this forward's s_k
  for (size_t k = 0; k < K; ++k) {
    const Tensor zin = is_training() ? scale_grad(z, scales_, k) : z;
    // R_k is a constant of the graph; the copy lets update() change the buffer in place.
    out.push_back(matmul(zin, rotations_[k].detach().clone().t()));
  }
  rotated_ = is_training() ? out : std::vector<Tensor>();
  return out;
}

void RotoGrad::update(const std::vector<Tensor>& losses) {
  const size_t K = rotations_.size();
  if (losses.size() != K) {
    throw std::invalid_argument(describe() + ": update() got " + std::to_string(losses.size()) + " losses, expected " +
                                std::to_string(K) + " (one per task)");
  }
  if (rotated_.size() != K) {
    throw std::invalid_argument(describe() + ": update() needs a forward() in training mode first");
  }
  // g_k = ∂L_k/∂z_k through the heads only; o_k = g_k R_k is what reaches z (before scaling).
  std::vector<MatD> g(K), o(K), R(K);
  std::vector<double> n(K);
  for (size_t k = 0; k < K; ++k) {
    const Tensor gk = grad({losses[k]}, {rotated_[k]}, GradOptions().set_retain_graph(true))[0];
    g[k] = to_eigen(gk);
    R[k] = to_eigen(rotations_[k]);
    o[k] = g[k] * R[k];
    n[k] = o[k].norm();
  }
  // Magnitudes.
  if (ref_norms_.empty() || step_ == options_.burn_in()) {
    ref_norms_.resize(K);
    for (size_t k = 0; k < K; ++k) ref_norms_[k] = std::max(n[k], kTiny);
  }
  std::vector<double>& s = *scales_;
  if (options_.scale_magnitudes()) {
    double csum = 0.0;
    std::vector<double> c(K);
    for (size_t k = 0; k < K; ++k) csum += c[k] = std::max(n[k], kTiny) / ref_norms_[k];
    double w = 0.0;
    for (size_t k = 0; k < K; ++k) w += c[k] / std::max(csum, kTiny) * n[k];
    for (size_t k = 0; k < K; ++k) s[k] = w / std::max(n[k], kTiny);
  }
  // The common target m: the mean of the back-rotated gradients, each rescaled to the norm of
  // their plain mean.
  MatD mean = o[0];
  for (size_t k = 1; k < K; ++k) mean += o[k];
  mean /= static_cast<double>(K);
  const double mean_norm = mean.norm();
  MatD m = MatD::Zero(mean.rows(), mean.cols());
  for (size_t k = 0; k < K; ++k) m += o[k] * (mean_norm / std::max(n[k], kTiny));
  m /= static_cast<double>(K);
  // One Riemannian step per rotation (Cayley retraction), then one polar (Newton–Schulz) correction
  // against float round-off.
  const double N = static_cast<double>(m.rows());
  const int64_t d = options_.dim();
  const MatD I = MatD::Identity(d, d);
  for (size_t k = 0; k < K; ++k) {
    const MatD resid = m * R[k].transpose() - g[k];  // rows: (R m_n − g_n)ᵀ
    align_loss_[k] = resid.squaredNorm() / N;
    const MatD E = (2.0 / N) * resid.transpose() * m;
    const MatD omega = 0.5 * (E * R[k].transpose() - R[k] * E.transpose());
    const double on2 = omega.squaredNorm();
    rms_[k] = kRmsBeta * rms_[k] + (1.0 - kRmsBeta) * on2;
    const double vhat = rms_[k] / (1.0 - std::pow(kRmsBeta, static_cast<double>(step_ + 1)));
    if (!(on2 > 0.0) || !std::isfinite(on2)) continue;
    const MatD A = (0.5 * options_.lr() / std::sqrt(vhat)) * omega;
    MatD Rn = (I + A).partialPivLu().solve((I - A) * R[k]);
    Rn = 0.5 * Rn * (3.0 * I - Rn.transpose() * Rn);
    float* dst = rotations_[k].data();
    for (int64_t i = 0; i < d * d; ++i) dst[i] = static_cast<float>(Rn.data()[i]);
  }
  rotated_.clear();
  ++step_;
}

void RotoGrad::save_extra_state(StateDict& sd, const std::string& prefix) const {
  sd.set_int(prefix + "step", step_);
  sd.set_int(prefix + "has_ref", ref_norms_.empty() ? 0 : 1);
  for (size_t k = 0; k < rotations_.size(); ++k) {
    sd.set_double(prefix + "ref" + std::to_string(k), ref_norms_.empty() ? 0.0 : ref_norms_[k]);
    sd.set_double(prefix + "rms" + std::to_string(k), rms_[k]);
  }
}

void RotoGrad::load_extra_state(const StateDict& sd, const std::string& prefix) {
  if (!sd.has_scalar(prefix + "step")) {
    throw std::invalid_argument(describe() + ": load_state_dict: missing '" + prefix +
                                "step' (a checkpoint written without RotoGrad?)");
  }
  step_ = sd.get_int(prefix + "step");
  const bool has_ref = sd.get_int(prefix + "has_ref") != 0;
  ref_norms_.clear();
  for (size_t k = 0; k < rotations_.size(); ++k) {
    if (has_ref) ref_norms_.push_back(sd.get_double(prefix + "ref" + std::to_string(k)));
    rms_[k] = sd.get_double(prefix + "rms" + std::to_string(k));
  }
}

}  // namespace nn
}  // namespace scalpel
