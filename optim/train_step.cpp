#include "optim/train_step.h"

#include <cmath>
#include <sstream>

#include "core/autograd.h"
#include "core/dist.h"
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

// The optimizer's parameters without the weighting's (which must all be among them).
std::vector<Tensor> model_parameters(const Optimizer* optimizer, const weighting::LossWeighting* w) {
  if (!optimizer) return {};
  if (!w) return optimizer->params();
  if (w->has_parameters() && w->parameters().empty()) {
    throw std::invalid_argument("TrainStep: weighting '" + w->name() +
                                "' has learnable parameters that do not exist yet: call ensure_tasks(K) and build the "
                                "optimizer over the model parameters + weighting->parameters()");
  }
  std::vector<Tensor> out;
  for (const Tensor& p : optimizer->params()) {
    bool mine = false;
    for (const Tensor& q : w->parameters()) mine = mine || p.same(q);
    if (!mine) out.push_back(p);
  }
  if (out.size() + w->parameters().size() != optimizer->params().size()) {
    throw std::invalid_argument("TrainStep: the optimizer does not hold the parameters of weighting '" + w->name() +
                                "': build it over the model parameters + weighting->parameters()");
  }
  return out;
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
                     TrainStepOptions options, std::unique_ptr<weighting::LossWeighting> weighting)
    : optimizer_(std::move(optimizer)),
      surgeon_(std::move(surgeon)),
      options_(std::move(options)),
      weighting_(std::move(weighting)),
      model_params_(model_parameters(optimizer_.get(), weighting_.get())),
      collector_(model_params_) {
  if (!optimizer_) throw std::invalid_argument("TrainStep: the optimizer is null");
  if (!surgeon_) throw std::invalid_argument("TrainStep: the surgeon is null");
  if (weighting_) {
    int64_t offset = 0;
    std::vector<int64_t> offsets;
    for (const Tensor& p : model_params_) {
      offsets.push_back(offset);
      offset += p.numel();
    }
    for (size_t g = 0; g < options_.weighting_group().size(); ++g) {
      const Tensor& t = options_.weighting_group()[g];
      size_t k = 0;
      while (k < model_params_.size() && !model_params_[k].same(t)) ++k;
      if (k == model_params_.size()) {
        throw std::invalid_argument("TrainStep: option weighting_group: tensor " + std::to_string(g) + " (shape " +
                                    shape_str(t.shape()) + ") is not a model parameter of the optimizer");
      }
      group_.emplace_back(offsets[k], t.numel());
    }
    if (group_.empty()) group_.emplace_back(0, offset);
  }
  if (options_.head_policy() != HeadPolicy::Joint) {
    const std::string policy = head_policy_name(options_.head_policy());
    if (options_.head_params().empty()) {
      throw std::invalid_argument("TrainStep: head policy '" + policy +
                                  "' needs the task-specific parameters (option head_params); none were given");
    }
    if (options_.fused_mixed()) {
      throw std::invalid_argument("TrainStep: head policy '" + policy +
                                  "' needs per-loss gradients, so it cannot run with fused_mixed (one backward of "
                                  "the weighted sum); use head policy joint or turn fused_mixed off");
    }
    heads_ = HeadSplit(model_params_, options_.head_params());
  } else if (!options_.head_params().empty()) {
    heads_ = HeadSplit(model_params_, options_.head_params());  // checked, unused
  }
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
    result.losses.push_back(losses[k].item());
  }
  // Data parallel: the mean over the ranks (each rank's loss is over its shard of the global
  // batch), before the check, so that a non-finite loss on one rank stops every rank alike.
  dist::allreduce_mean(result.losses.data(), static_cast<int64_t>(result.losses.size()));
  for (size_t k = 0; k < losses.size(); ++k) {
    const double v = result.losses[k];
    if (!std::isfinite(v)) {
      throw NonFiniteError("TrainStep: step " + std::to_string(step_) + ": " + loss_label(k) + " is " + num(v) +
                               "; nothing was updated (lower the learning rate or check the inputs)",
                           step_, static_cast<int>(k));
    }
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
  d_.scatter_to_grads(model_params_);
  if (options_.lr_schedule()) optimizer_->set_lr(options_.lr_schedule()->at(step_));
  result.lr = optimizer_->lr();
  optimizer_->step();
  if (weighting_) weighting_->after_step();
  ++step_;
  if (dist::active() && options_.check_replicas_every() > 0 && step_ % options_.check_replicas_every() == 0) {
    std::vector<dist::FloatSpan> spans;
    for (const Tensor& p : optimizer_->params()) spans.push_back({const_cast<float*>(p.data()), p.numel()});
    dist::check_replicas(dist::checksum(spans), "parameters after step " + std::to_string(step_ - 1));
  }
  return result;
}

void TrainStep::apply_weighting(std::vector<GradVector>* grads, StepResult& result) {
  weighting::GradNormFn norms;
  if (grads) {
    norms = [&] {
      std::vector<double> n;
      for (const GradVector& g : *grads) {
        double sq = 0.0;
        for (const auto& [off, len] : group_) {
          const float* p = g.data() + off;
          for (int64_t i = 0; i < len; ++i) sq += static_cast<double>(p[i]) * p[i];
        }
        n.push_back(std::sqrt(sq));
      }
      return n;
    };
  }
  const weighting::WeightingResult& w = weighting_->weigh(result.losses, norms);
  result.loss_weights = w.weights;
  result.weighted_loss = w.loss;
  if (grads) {
    for (size_t k = 0; k < grads->size(); ++k) (*grads)[k].scale(static_cast<float>(w.weights[k]));
  }
}

void TrainStep::per_loss_direction(const std::vector<Tensor>& losses, StepResult& result) {
  std::vector<GradVector>& grads = collector_.compute(losses);
  if (dist::active()) {  // the gradients of the global batch: every per-loss gradient, packed
    grad_spans_.clear();
    for (GradVector& g : grads) grad_spans_.push_back({g.data(), g.size()});
    dist::allreduce_mean(grad_spans_);
  }
  // Checked before the surgeon sees them, so a bad batch leaves its EMAs untouched.
  for (size_t k = 0; k < grads.size(); ++k) {
    const double sq = grads[k].squared_norm();
    if (!std::isfinite(sq)) {
      throw NonFiniteError("TrainStep: step " + std::to_string(step_) + ": the gradient of " + loss_label(k) +
                               " is not finite (squared norm " + num(sq) + "); nothing was updated",
                           step_, static_cast<int>(k));
    }
  }
  if (weighting_) apply_weighting(&grads, result);
  grad_ptrs_.clear();
  surgeon_->set_step(step_);
  if (options_.head_policy() == HeadPolicy::Joint) {
    for (const GradVector& g : grads) grad_ptrs_.push_back(&g);
    surgeon_->combine(grad_ptrs_, result.losses, d_, &result.diagnostics);
    return;
  }
  // own / weighted: the surgeon combines the shared part; the heads get their own gradients.
  shared_grads_.resize(grads.size());
  for (size_t k = 0; k < grads.size(); ++k) {
    heads_.gather_shared(grads[k], shared_grads_[k]);
    grad_ptrs_.push_back(&shared_grads_[k]);
  }
  surgeon_->combine(grad_ptrs_, result.losses, d_shared_, &result.diagnostics);
  const surgery::SurgeryDiagnostics& diag = result.diagnostics;
  head_coef_.assign(grads.size(), 1.0);
  if (options_.head_policy() == HeadPolicy::Weighted) {
    if (diag.weights.size() == grads.size()) {
      head_coef_ = diag.weights;
    } else {
      for (size_t k = 1; k < grads.size(); ++k) head_coef_[k] = diag.lambdas[k - 1];
      for (double& c : head_coef_) c *= diag.scale;
    }
  }
  heads_.assemble(d_shared_, grads, head_coef_, d_);
}

void TrainStep::fused_mixed_direction(const std::vector<Tensor>& losses, StepResult& result) {
  const int K = static_cast<int>(losses.size()) - 1;
  const std::vector<double> lambdas = K > 0 ? surgeon_->lambdas_at(step_, K) : std::vector<double>{};
  if (weighting_) apply_weighting(nullptr, result);
  const std::vector<double>& w = result.loss_weights;  // empty without a weighting
  Tensor total = w.empty() ? losses[0] : mul(losses[0], static_cast<float>(w[0]));
  double lambda_sum = 0.0;
  for (int k = 1; k <= K; ++k) {
    const float c = w.empty() ? static_cast<float>(lambdas[k - 1]) : static_cast<float>(lambdas[k - 1] * w[k]);
    total = add(total, mul(losses[k], c));
    lambda_sum += lambdas[k - 1];
  }
  const std::vector<Tensor>& params = model_params_;
  if (d_.size() != collector_.size())
    d_ = GradVector(collector_.size());
  else
    d_.fill(0.0f);
  if (total.requires_grad()) grad_into({total}, params, d_.views(params), GradOptions().set_allow_unused(true));
  if (dist::active()) dist::allreduce_mean({{d_.data(), d_.size()}});
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
  if (weighting_) sd.merge(weighting_->state_dict(), "weighting");
  return sd;
}

void TrainStep::load_state_dict(const StateDict& state) {
  const int64_t step = state.get_int("step");
  if (step < 0)
    throw std::invalid_argument("TrainStep.load_state_dict: 'step' is negative (" + std::to_string(step) + ")");
  optimizer_->load_state_dict(state.sub("optim"));
  surgeon_->load_state_dict(state.sub("surgeon"));
  if (weighting_) {
    const StateDict w = state.sub("weighting");
    if (w.size() == 0) {
      throw std::invalid_argument(
          "TrainStep.load_state_dict: the state has no 'weighting.*' keys, but this step uses "
          "weighting '" +
          weighting_->name() + "'");
    }
    weighting_->load_state_dict(w);
  }
  step_ = step;
}

}  // namespace optim
}  // namespace scalpel
