// Optimizers: SGD (momentum, Nesterov, weight decay), Adam (L2 weight decay) and AdamW (decoupled
// weight decay), with PyTorch's semantics, per-parameter state and StateDict save/load.
//
// An optimizer holds an ordered parameter list. `step()` reads each parameter's `.grad()` (the
// surgery direction d once TrainStep has scattered it there), updates the parameter in place under
// NoGradGuard, and bumps its version counter (a graph that saved the old value then refuses to
// backward through it). A parameter whose grad is undefined is skipped and its state untouched,
// as in PyTorch. Update rules (g = grad, p = parameter, t = that parameter's step count):
//
//   SGD:   g += wd * p;  if momentum: b = (t == 1 ? g : momentum * b + (1 - dampening) * g),
//          g = nesterov ? g + momentum * b : b;   p -= lr * g
//   Adam:  g += wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   AdamW: p *= 1 - lr * wd;  then Adam without the L2 term
//
// State keys (StateDict, by parameter position k): "momentum_buffer.k" (SGD), "exp_avg.k",
// "exp_avg_sq.k" (Adam/AdamW), int "step.k" (every optimizer), double "lr", string "type".
// load_state_dict() checks the type, the parameter count and every tensor size, and names the
// mismatching key. `set_lr()` lets a Schedule drive the learning rate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/state_dict.h"
#include "core/tensor.h"

namespace scalpel {
namespace optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params, double lr, std::string type);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops every parameter's gradient (sets it undefined, as PyTorch's set_to_none).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Tensor>& params() const { return params_; }
  const std::string& type() const { return type_; }
  // Number of updates parameter k has received.
  int64_t step_count(size_t k) const { return steps_.at(k); }

  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 protected:
  // Subclasses name their per-parameter state tensors (e.g. {"exp_avg", "exp_avg_sq"}); slot s of
  // parameter k lives in state_[s][k] (undefined until the first update of k).
  void declare_state(std::vector<std::string> names);
  Tensor& state(size_t slot, size_t k) { return state_[slot][k]; }
  // Lazily creates state slot s of parameter k as zeros shaped like it.
  Tensor& state_or_zeros(size_t slot, size_t k);
  // Parameter k's gradient, contiguous (undefined when it has none); throws std::logic_error when its
  // shape differs from the parameter's.
  Tensor checked_grad(size_t k) const;
  std::vector<int64_t> steps_;

 private:
  std::vector<Tensor> params_;
  double lr_;
  std::string type_;
  std::vector<std::string> state_names_;
  std::vector<std::vector<Tensor>> state_;
};

struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  SCALPEL_ARG(double, lr);
  SCALPEL_ARG(double, momentum) = 0.0;
  SCALPEL_ARG(double, dampening) = 0.0;
  SCALPEL_ARG(double, weight_decay) = 0.0;
  SCALPEL_ARG(bool, nesterov) = false;
};

class SGD : public Optimizer {
 public:
  // Throws std::invalid_argument for a negative lr/momentum/weight decay, or Nesterov without
  // momentum or with dampening (as PyTorch).
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  void step() override;
  const SGDOptions& options() const { return options_; }

 private:
  SGDOptions options_;
};

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  SCALPEL_ARG(double, lr);
  SCALPEL_ARG(double, beta1) = 0.9;
  SCALPEL_ARG(double, beta2) = 0.999;
  SCALPEL_ARG(double, eps) = 1e-8;
  SCALPEL_ARG(double, weight_decay) = 0.0;
};

// Adam with L2 weight decay added to the gradient (torch.optim.Adam).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options);
  void step() override;
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, std::string type);

 private:
  AdamOptions options_;
  bool decoupled_;
};

struct AdamWOptions {
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  SCALPEL_ARG(double, lr);
  SCALPEL_ARG(double, beta1) = 0.9;
  SCALPEL_ARG(double, beta2) = 0.999;
  SCALPEL_ARG(double, eps) = 1e-8;
  SCALPEL_ARG(double, weight_decay) = 1e-2;  // PyTorch's AdamW default
};

// Adam with decoupled weight decay p *= 1 - lr * wd before the Adam update (torch.optim.AdamW).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options);
};

}  // namespace optim
}  // namespace scalpel
