// famo: fast adaptive multitask optimisation (Liu et al. 2023, "FAMO: fast adaptive multitask
// optimization"), which aims at an equal decrease of every log-loss.
//
//   z = softmax(ξ), D_i = L_i + 1e-8, c = Σ_i z_i / D_i
//   f = Σ_i z_i log D_i / c   (c held constant)      w_i = z_i / (c D_i)   (Σ w_i = 1)
//
// ξ has its own Adam (lr `w_lr` 0.025, L2 weight decay `gamma` 0.001, β = (0.9, 0.999), eps 1e-8,
// as the authors and LibMTL). Its gradient is the softmax Jacobian times the observed log-loss
// decrease δ_i = log D_i(prev) - log D_i(now): ∂ξ = z ⊙ (δ - <z, δ>), so tasks that fell less than
// the others gain weight. Our choice: δ uses this step's losses against the previous step's (one
// forward per step, on consecutive batches); the authors re-run the forward on the same batch after
// the update, which costs one more forward. State: ξ, the Adam moments and step, the previous losses.
#include <cmath>
#include <stdexcept>

#include "core/ops.h"
#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

constexpr double kEps = 1e-8;

class Famo : public LossWeighting {
 public:
  explicit Famo(const WeightingOptions& o) : LossWeighting("famo", o) {
    check_keys({"w_lr", "gamma"});
    lr_ = number("w_lr", 0.025, 0.0, 1e6);
    gamma_ = number("gamma", 0.001, 0.0, 1e6);
  }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    const Tensor L = stack_losses(losses, name(), tasks());
    const std::vector<double> z = softmax(xi_);
    const std::vector<float> v = L.to_vector();
    double c = 0.0;
    for (size_t i = 0; i < z.size(); ++i) c += z[i] / (v[i] + kEps);
    std::vector<float> zc(z.size());
    for (size_t i = 0; i < z.size(); ++i) zc[i] = static_cast<float>(z[i] / c);
    return sum(mul(log(add(L, static_cast<float>(kEps))), Tensor::from_vector(zc)));
  }

  const std::vector<double>& logits() const { return xi_; }

 protected:
  void init_tasks(int K) override {
    xi_.assign(K, 0.0);
    m_.assign(K, 0.0);
    v_.assign(K, 0.0);
    prev_.assign(K, 0.0);
  }

  void weigh_impl(const std::vector<double>& L, const GradNormFn&, WeightingResult& out) override {
    const size_t K = L.size();
    for (size_t i = 0; i < K; ++i) {
      if (!(L[i] >= 0.0)) {
        throw std::invalid_argument("weighting 'famo': task loss " + std::to_string(i) + " must be >= 0, got " +
                                    std::to_string(L[i]) + signed_loss_hint());
      }
    }
    std::vector<double> xi = xi_, m = m_, v = v_;
    int64_t t = t_;
    if (has_prev_) {
      const std::vector<double> z = softmax(xi);
      std::vector<double> delta(K);
      double zd = 0.0;
      for (size_t i = 0; i < K; ++i) {
        delta[i] = std::log(prev_[i] + kEps) - std::log(L[i] + kEps);
        zd += z[i] * delta[i];
      }
      ++t;
      const double b1 = 0.9, b2 = 0.999;
      const double bc1 = 1.0 - std::pow(b1, static_cast<double>(t)), bc2 = 1.0 - std::pow(b2, static_cast<double>(t));
      for (size_t i = 0; i < K; ++i) {
        const double g = z[i] * (delta[i] - zd) + gamma_ * xi[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        xi[i] -= lr_ * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + kEps);
      }
    }
    const std::vector<double> z = softmax(xi);
    double c = 0.0;
    for (size_t i = 0; i < K; ++i) c += z[i] / (L[i] + kEps);
    out.weights.resize(K);
    out.loss = 0.0;
    for (size_t i = 0; i < K; ++i) {
      out.weights[i] = z[i] / (c * (L[i] + kEps));
      out.loss += z[i] * std::log(L[i] + kEps) / c;
    }
    check_finite(out, name());
    xi_ = xi;
    m_ = m;
    v_ = v;
    t_ = t;
    prev_ = L;
    has_prev_ = true;
  }

  void save_state(StateDict& sd) const override {
    sd.set_int("adam_step", t_);
    sd.set_int("has_prev", has_prev_ ? 1 : 0);
    for (size_t i = 0; i < xi_.size(); ++i) {
      const std::string k = std::to_string(i);
      sd.set_double("xi." + k, xi_[i]);
      sd.set_double("m." + k, m_[i]);
      sd.set_double("v." + k, v_[i]);
      sd.set_double("prev." + k, prev_[i]);
    }
  }
  void load_state(const StateDict& sd) override {
    const int64_t t = sd.get_int("adam_step");
    if (t < 0) throw std::invalid_argument("weighting 'famo': load_state_dict: 'adam_step' is negative");
    for (size_t i = 0; i < xi_.size(); ++i) {
      const std::string k = std::to_string(i);
      xi_[i] = sd.get_double("xi." + k);
      m_[i] = sd.get_double("m." + k);
      v_[i] = sd.get_double("v." + k);
      prev_[i] = sd.get_double("prev." + k);
    }
    t_ = t;
    has_prev_ = sd.get_int("has_prev") != 0;
  }

 private:
  double lr_ = 0.025, gamma_ = 0.001;
  std::vector<double> xi_, m_, v_, prev_;
  int64_t t_ = 0;
  bool has_prev_ = false;
};

WeightingRegistration reg("famo",
                          "w_i = z_i/(c L_i), z = softmax(ξ), ξ by its own Adam towards equal log-loss "
                          "decrease (Liu et al. 2023)",
                          [](const WeightingOptions& o) { return std::make_unique<Famo>(o); });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
