// Optimizer base (state bookkeeping, save/load), SGD, Adam and AdamW. See optimizer.h for the rules.
#include "optim/optimizer.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/autograd.h"
#include "core/kernels/loops.h"
#include "core/parallel.h"

namespace scalpel {
namespace optim {

namespace {

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void check_option(bool ok, const std::string& optimizer, const std::string& option, const std::string& expected,
                  double found) {
  if (!ok) {
    throw std::invalid_argument(optimizer + ": option " + option + " must be " + expected + ", got " + num(found));
  }
}

}  // namespace

// ---- Optimizer base -----------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<Tensor> params, double lr, std::string type)
    : params_(std::move(params)), lr_(lr), type_(std::move(type)) {
  check_option(std::isfinite(lr) && lr >= 0, type_, "lr", "finite and >= 0", lr);
  for (size_t k = 0; k < params_.size(); ++k) {
    const Tensor& p = params_[k];
    if (!p.defined()) throw std::invalid_argument(type_ + ": parameter " + std::to_string(k) + " is undefined");
    if (!p.is_contiguous()) {
      throw std::invalid_argument(type_ + ": parameter " + std::to_string(k) + " (shape " + shape_str(p.shape()) +
                                  ") is not contiguous; optimizers update parameters in place");
    }
    for (size_t j = 0; j < k; ++j) {
      if (params_[j].storage() == p.storage() && params_[j].offset() == p.offset()) {
        throw std::invalid_argument(type_ + ": parameter " + std::to_string(k) + " is the same tensor as parameter " +
                                    std::to_string(j) + "; pass each parameter once");
      }
    }
  }
  steps_.assign(params_.size(), 0);
}

void Optimizer::set_lr(double lr) {
  check_option(std::isfinite(lr) && lr >= 0, type_, "lr", "finite and >= 0", lr);
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::declare_state(std::vector<std::string> names) {
  state_names_ = std::move(names);
  state_.assign(state_names_.size(), std::vector<Tensor>(params_.size()));
}

Tensor& Optimizer::state_or_zeros(size_t slot, size_t k) {
  Tensor& t = state_[slot][k];
  if (!t.defined()) t = Tensor::zeros(params_[k].shape());
  return t;
}

Tensor Optimizer::checked_grad(size_t k) const {
  const Tensor& p = params_[k];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  if (g.shape() != p.shape()) {
    throw std::logic_error(type_ + ".step: gradient of parameter " + std::to_string(k) + " has shape " +
                           shape_str(g.shape()) + ", parameter has " + shape_str(p.shape()));
  }
  return g.is_contiguous() ? g : g.contiguous();
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  sd.set_string("type", type_);
  sd.set_double("lr", lr_);
  sd.set_int("num_params", static_cast<int64_t>(params_.size()));
  for (size_t k = 0; k < params_.size(); ++k) {
    sd.set_int("step." + std::to_string(k), steps_[k]);
    for (size_t s = 0; s < state_names_.size(); ++s) {
      if (state_[s][k].defined()) sd.set_tensor(state_names_[s] + "." + std::to_string(k), state_[s][k].clone());
    }
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const std::string& type = sd.get_string("type");
  if (type != type_) {
    throw std::invalid_argument(type_ + ".load_state_dict: the state is for optimizer '" + type + "', expected '" +
                                type_ + "'");
  }
  const int64_t n = sd.get_int("num_params");
  if (n != static_cast<int64_t>(params_.size())) {
    throw std::invalid_argument(type_ + ".load_state_dict: the state has " + std::to_string(n) +
                                " parameters, this optimizer has " + std::to_string(params_.size()));
  }
  // Validate everything before changing anything.
  std::vector<int64_t> steps(params_.size());
  for (size_t k = 0; k < params_.size(); ++k) {
    steps[k] = sd.get_int("step." + std::to_string(k));
    if (steps[k] < 0) {
      throw std::invalid_argument(type_ + ".load_state_dict: 'step." + std::to_string(k) + "' is negative (" +
                                  std::to_string(steps[k]) + ")");
    }
    for (const std::string& name : state_names_) {
      const std::string key = name + "." + std::to_string(k);
      if (!sd.has_tensor(key)) continue;
      const Tensor& t = sd.tensor(key);
      if (t.numel() != params_[k].numel()) {
        throw std::invalid_argument(type_ + ".load_state_dict: '" + key + "' has shape " + shape_str(t.shape()) +
                                    ", parameter " + std::to_string(k) + " has shape " + shape_str(params_[k].shape()));
      }
    }
  }
  lr_ = sd.get_double("lr");
  steps_ = steps;
  for (size_t s = 0; s < state_names_.size(); ++s) {
    for (size_t k = 0; k < params_.size(); ++k) {
      const std::string key = state_names_[s] + "." + std::to_string(k);
      state_[s][k] =
          sd.has_tensor(key) ? sd.tensor(key).detach().contiguous().clone().reshape(params_[k].shape()) : Tensor();
    }
  }
}

// ---- SGD ----------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer(std::move(params), options.lr(), "sgd"), options_(options) {
  check_option(options.momentum() >= 0 && std::isfinite(options.momentum()), "sgd", "momentum", "finite and >= 0",
               options.momentum());
  check_option(options.dampening() >= 0 && options.dampening() <= 1, "sgd", "dampening", "in [0, 1]",
               options.dampening());
  check_option(options.weight_decay() >= 0 && std::isfinite(options.weight_decay()), "sgd", "weight_decay",
               "finite and >= 0", options.weight_decay());
  if (options.nesterov() && (options.momentum() <= 0 || options.dampening() != 0)) {
    throw std::invalid_argument("sgd: nesterov needs momentum > 0 and dampening = 0, got momentum " +
                                num(options.momentum()) + " and dampening " + num(options.dampening()));
  }
  declare_state({"momentum_buffer"});
}

// p [n], g [n], buf [n] -> p updated in place (elementwise, so bit-identical for any thread count).
void SGD::step() {
  NoGradGuard no_grad;
  const float lr = static_cast<float>(this->lr());
  const float wd = static_cast<float>(options_.weight_decay());
  const float mom = static_cast<float>(options_.momentum());
  const float damp = 1.0f - static_cast<float>(options_.dampening());
  const bool nesterov = options_.nesterov();
  for (size_t k = 0; k < params().size(); ++k) {
    const Tensor g = checked_grad(k);
    if (!g.defined()) continue;
    Tensor p = params()[k];
    float* pp = p.data();
    const float* pg = g.data();
    const int64_t n = p.numel();
    if (mom != 0.0f) {
      const bool first = !state(0, k).defined();
      float* pb = state_or_zeros(0, k).data();
      parallel_for(n, kernels::kGrain, [=](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float d = pg[i];
          if (wd != 0.0f) d = d + wd * pp[i];
          const float buf = first ? d : pb[i] * mom + damp * d;
          pb[i] = buf;
          d = nesterov ? d + mom * buf : buf;
          pp[i] = pp[i] - lr * d;
        }
      });
    } else {
      parallel_for(n, kernels::kGrain, [=](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float d = pg[i];
          if (wd != 0.0f) d = d + wd * pp[i];
          pp[i] = pp[i] - lr * d;
        }
      });
    }
    p.storage()->bump_version();
    ++steps_[k];
  }
}

// ---- Adam / AdamW -------------------------------------------------------------------------------

namespace {
AdamOptions to_adam(const AdamWOptions& o) {
  return AdamOptions(o.lr()).beta1(o.beta1()).beta2(o.beta2()).eps(o.eps()).weight_decay(o.weight_decay());
}
}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options) : Adam(std::move(params), options, false, "adam") {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, std::string type)
    : Optimizer(std::move(params), options.lr(), type), options_(options), decoupled_(decoupled) {
  check_option(options.beta1() >= 0 && options.beta1() < 1, type, "beta1", "in [0, 1)", options.beta1());
  check_option(options.beta2() >= 0 && options.beta2() < 1, type, "beta2", "in [0, 1)", options.beta2());
  check_option(options.eps() >= 0 && std::isfinite(options.eps()), type, "eps", "finite and >= 0", options.eps());
  check_option(options.weight_decay() >= 0 && std::isfinite(options.weight_decay()), type, "weight_decay",
               "finite and >= 0", options.weight_decay());
  declare_state({"exp_avg", "exp_avg_sq"});
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(std::move(params), to_adam(options), true, "adamw") {}

// p [n], g [n], m [n], v [n] -> p, m, v updated in place (elementwise).
void Adam::step() {
  NoGradGuard no_grad;
  const double lr_d = lr();
  const float b1 = static_cast<float>(options_.beta1()), b2 = static_cast<float>(options_.beta2());
  const float omb1 = static_cast<float>(1.0 - options_.beta1()), omb2 = static_cast<float>(1.0 - options_.beta2());
  const float eps = static_cast<float>(options_.eps());
  const float wd = static_cast<float>(options_.weight_decay());
  const float decay = static_cast<float>(1.0 - lr_d * options_.weight_decay());
  for (size_t k = 0; k < params().size(); ++k) {
    const Tensor g = checked_grad(k);
    if (!g.defined()) continue;
    Tensor p = params()[k];
    const int64_t t = ++steps_[k];
    const double bc1 = 1.0 - std::pow(options_.beta1(), static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(options_.beta2(), static_cast<double>(t));
    const float step_size = static_cast<float>(lr_d / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    float* pp = p.data();
    const float* pg = g.data();
    float* pm = state_or_zeros(0, k).data();
    float* pv = state_or_zeros(1, k).data();
    const bool decoupled = decoupled_;
    parallel_for(p.numel(), kernels::kGrain, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float gi = pg[i];
        if (decoupled) {
          pp[i] = pp[i] * decay;
        } else if (wd != 0.0f) {
          gi = gi + wd * pp[i];
        }
        const float m = pm[i] * b1 + gi * omb1;
        const float v = pv[i] * b2 + gi * gi * omb2;
        pm[i] = m;
        pv[i] = v;
        const float denom = std::sqrt(v) / bc2_sqrt + eps;
        pp[i] = pp[i] - step_size * (m / denom);
      }
    });
    p.storage()->bump_version();
  }
}

}  // namespace optim
}  // namespace scalpel
