#include "optim/train_step.h"

#include <cmath>
#include <sstream>

#include "core/autograd.h"
#include "core/ops.h"

namespace scalpel {
namespace optim {

namespace {
std::string num(double v) {
  if (std::isnan(v)) return "nan";  // not "-nan": the sign of a NaN means nothing
  std::ostringstream os;
  os << v;
  return os.str();
}

void check_max_norm(double max_norm, const char* what) {
  if (!(max_norm > 0.0) || !std::isfinite(max_norm)) {
    throw std::invalid_argument(std::string(what) + ": max_norm must be finite and > 0, got " + num(max_norm));
  }
}
}  // namespace

double clip_grad_norm(GradVector& d, double max_norm) {
  check_max_norm(max_norm, "clip_grad_norm");
  const double norm = d.norm();
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) d.scale(static_cast<float>(coef));
  return norm;
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  check_max_norm(max_norm, "clip_grad_norm");
  double sq = 0.0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    for (float v : g.to_vector()) sq += static_cast<double>(v) * v;
  }
  const double norm = std::sqrt(sq);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    NoGradGuard no_grad;
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.mul_(static_cast<float>(coef));
    }
  }
  return norm;
}

TrainStep::TrainStep(std::unique_ptr<Optimizer> optimizer, std::unique_ptr<surgery::Surgeon> surgeon,
                     TrainStepOptions options)
    : optimizer_(std::move(optimizer)),
      surgeon_(std::move(surgeon)),
      options_(std::move(options)),
      collector_(optimizer_ ? optimizer_->params() : std::vector<Tensor>{}) {
  if (!optimizer_) throw std::invalid_argument("TrainStep: the optimizer is null");
  if (!surgeon_) throw std::invalid_argument("TrainStep: the surgeon is null");
  if (options_.clip_grad_norm() < 0.0 || !std::isfinite(options_.clip_grad_norm())) {
    throw std::invalid_argument("TrainStep: option clip_grad_norm must be finite and >= 0 (0 disables it), got " +
                                num(options_.clip_grad_norm()));
  }
}

std::string TrainStep::loss_label(size_t k) const {
  std::string s = "loss " + std::to_string(k);
  if (k < options_.loss_names().size()) s += " ('" + options_.loss_names()[k] + "')";
  return s;
}

StepResult TrainStep::step(const std::vector<Tensor>& losses) {
  if (losses.empty()) throw std::invalid_argument("TrainStep.step: needs at least the main loss, got no losses");
  if (!options_.loss_names().empty() && options_.loss_names().size() != losses.size()) {
    throw std::invalid_argument("TrainStep.step: " + std::to_string(losses.size()) + " losses but " +
                                std::to_string(options_.loss_names().size()) + " loss names");
  }
  StepResult result;
  result.step = step_;
  for (size_t k = 0; k < losses.size(); ++k) {
    if (!losses[k].defined() || losses[k].numel() != 1) {
      throw std::invalid_argument("TrainStep.step: " + loss_label(k) + " must be a scalar tensor" +
                                  (losses[k].defined() ? ", got shape " + shape_str(losses[k].shape()) : ""));
    }
    const double v = losses[k].item();
    if (!std::isfinite(v)) {
      throw NonFiniteError("TrainStep: step " + std::to_string(step_) + ": " + loss_label(k) + " is " + num(v) +
                               "; nothing was updated (lower the learning rate or check the inputs)",
                           step_, static_cast<int>(k));
    }
    result.losses.push_back(v);
  }

  if (options_.fused_mixed() && surgeon_->name() == "mixed") {
    fused_mixed_direction(losses, result);
  } else {
    per_loss_direction(losses, result);
  }
  result.grad_norm = d_.norm();
  if (!std::isfinite(result.grad_norm)) {
    throw NonFiniteError("TrainStep: step " + std::to_string(step_) + ": the combined direction d (surgeon '" +
                             surgeon_->name() + "') is not finite; nothing was updated",
                         step_, -1);
  }
  if (options_.clip_grad_norm() > 0.0) {
    const double coef = options_.clip_grad_norm() / (result.grad_norm + 1e-6);
    if (coef < 1.0) {
      d_.scale(static_cast<float>(coef));
      result.clipped = true;
    }
  }
  d_.scatter_to_grads(optimizer_->params());
  if (options_.lr_schedule()) optimizer_->set_lr(options_.lr_schedule()->at(step_));
  result.lr = optimizer_->lr();
  optimizer_->step();
  ++step_;
  return result;
}

void TrainStep::per_loss_direction(const std::vector<Tensor>& losses, StepResult& result) {
  const std::vector<GradVector>& grads = collector_.compute(losses);
  // Checked before the surgeon sees them, so a bad batch leaves its EMAs untouched.
  for (size_t k = 0; k < grads.size(); ++k) {
    const double sq = grads[k].squared_norm();
    if (!std::isfinite(sq)) {
      throw NonFiniteError("TrainStep: step " + std::to_string(step_) + ": the gradient of " + loss_label(k) +
                               " is not finite (squared norm " + num(sq) + "); nothing was updated",
                           step_, static_cast<int>(k));
    }
  }
  grad_ptrs_.clear();
  for (const GradVector& g : grads) grad_ptrs_.push_back(&g);
  surgeon_->set_step(step_);
  surgeon_->combine(grad_ptrs_, result.losses, d_, &result.diagnostics);
}

void TrainStep::fused_mixed_direction(const std::vector<Tensor>& losses, StepResult& result) {
  const int K = static_cast<int>(losses.size()) - 1;
  const std::vector<double> lambdas = K > 0 ? surgeon_->lambdas_at(step_, K) : std::vector<double>{};
  Tensor total = losses[0];
  double lambda_sum = 0.0;
  for (int k = 1; k <= K; ++k) {
    total = add(total, mul(losses[k], static_cast<float>(lambdas[k - 1])));
    lambda_sum += lambdas[k - 1];
  }
  const std::vector<Tensor>& params = optimizer_->params();
  if (d_.size() != collector_.size())
    d_ = GradVector(collector_.size());
  else
    d_.fill(0.0f);
  if (total.requires_grad()) grad_into({total}, params, d_.views(params), GradOptions().set_allow_unused(true));
  const double scale = surgeon_->options().rescale() ? 1.0 / (1.0 + lambda_sum) : 1.0;
  if (scale != 1.0) d_.scale(static_cast<float>(scale));
  if (!d_.all_finite()) {
    throw NonFiniteError("TrainStep: step " + std::to_string(step_) +
                             ": the gradient of the weighted loss sum (fused mixed) is not finite; nothing was updated",
                         step_, -1);
  }
  surgeon_->set_step(step_ + 1);
  result.diagnostics.lambdas = lambdas;
  result.diagnostics.scale = scale;
}

StateDict TrainStep::state_dict() const {
  StateDict sd;
  sd.set_int("step", step_);
  sd.merge(optimizer_->state_dict(), "optim");
  sd.merge(surgeon_->state_dict(), "surgeon");
  return sd;
}

void TrainStep::load_state_dict(const StateDict& state) {
  const int64_t step = state.get_int("step");
  if (step < 0)
    throw std::invalid_argument("TrainStep.load_state_dict: 'step' is negative (" + std::to_string(step) + ")");
  optimizer_->load_state_dict(state.sub("optim"));
  surgeon_->load_state_dict(state.sub("surgeon"));
  step_ = step;
}

}  // namespace optim
}  // namespace scalpel
