// LossWeighting: multi-task loss weightings, the methods that change the task LOSSES (not the
// gradients). Given the K task-loss values L_1..L_K of a step, a weighting defines a combined loss
// f(L; θ_w) and returns its weights w_i = ∂f/∂L_i at the current values; the training step scales
// the i-th per-loss gradient by w_i before the surgeon (so ∇_θ f = Σ w_i ∇_θ L_i, and every surgeon
// and aggregator still sees one gradient per task). Weightings with learnable parameters (uw,
// imtl-l, gradnorm) expose them through parameters(): the optimizer trains them with the model, and
// weigh() writes the gradient of the weighting's own objective into their .grad.
//
//   auto w = weighting::make_weighting("uw", weighting::WeightingOptions().set("init", "0"));
//   const weighting::WeightingResult& r = w->weigh({ce.item(), aux.item()});   // r.weights, r.loss
//   Tensor f = w->combine({ce, aux});   // the same combined loss on the tape (tests, hand loops)
//
// Methods (formulas, options, references and our choices in docs/mtl.md, "Loss weightings"):
//   none      f = Σ L_i (w = 1; the training step skips it: today's numbers bit for bit)
//   uw        f = Σ exp(-s_i) L_i + s_i, s learned (Kendall et al. 2018)
//   dwa       w = K softmax(r / τ), r_i = mean L_i of the last window / of the one before (Liu et al. 2019)
//   gls       f = (Π L_i)^{1/K}, w_i = f / (K L_i) (Chennupati et al. 2019)
//   stch      f = μ log Σ exp((ℓ_i - z_i)/μ) after a warm-up that records the nadir z (Lin et al. 2024)
//   rlw       w = softmax(ε), ε ~ N(0, 1) drawn per step from (seed, step) (Lin et al. 2022)
//   famo      w_i = z_i / (c D_i), z = softmax(ξ), ξ moved by its own Adam towards equal log-loss
//             decrease (Liu et al. 2023)
//   gradnorm  w learned so that w_i ‖∇_W L_i‖ tracks mean_j(w_j ‖∇_W L_j‖) · r_i^α (Chen et al. 2018)
//   imtl-l    f = Σ exp(s_i) L_i - s_i, s learned (Liu et al. 2021); `imtl` is the same weighting,
//             meant for the imtl-g aggregator (the paper's hybrid)
//
// Options are strings set by key (WeightingOptions::set, the study flag --weighting-set key=value),
// parsed and checked when the method is made: an option the method does not take, or a bad value,
// throws std::invalid_argument naming the option and the method.
//
// State (step counter, windows, nadir, RNG counter, Adam moments, logits, learned parameters, first
// losses) is saved and restored through state_dict(), so a restore mid-run continues bit for bit.
// weigh() checks its inputs and computes everything before it changes any state, so a throw leaves
// the weighting as it was.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"

namespace scalpel {
namespace weighting {

class WeightingOptions {
 public:
  WeightingOptions() = default;
  // Any key; the method checks the keys and values when it is made.
  WeightingOptions& set(const std::string& key, const std::string& value);
  const std::map<std::string, std::string>& values() const { return values_; }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  // "tau=2 window=100" for logs.
  std::string describe() const;

 private:
  std::map<std::string, std::string> values_;
};

struct WeightingResult {
  std::vector<double> weights;  // w_i = ∂f/∂L_i at this step's losses (K values)
  double loss = 0.0;            // f, the combined loss value
};

// ‖∇_W L_i‖ for every task i, at the weighting's parameter group W (gradnorm: the last shared layer).
using GradNormFn = std::function<std::vector<double>()>;

class LossWeighting {
 public:
  LossWeighting(std::string name, WeightingOptions options);
  virtual ~LossWeighting() = default;
  LossWeighting(const LossWeighting&) = delete;
  LossWeighting& operator=(const LossWeighting&) = delete;

  const std::string& name() const { return name_; }
  const WeightingOptions& options() const { return options_; }

  // One step: `losses` are the K >= 2 task-loss values (finite). Returns the weights and f, writes
  // the gradient of the weighting's own objective into parameters()' .grad, and advances step().
  // Throws std::invalid_argument (naming the method) for K < 2, a K different from earlier calls,
  // a loss the method cannot take (gls: L <= 0), or a missing grad_norms callback (gradnorm).
  const WeightingResult& weigh(const std::vector<double>& losses, const GradNormFn& grad_norms = {});

  // f on the tape, from the given loss tensors, the learned parameters and the current state (the
  // weights of the last weigh() for the methods whose weights are constants: dwa, rlw, gradnorm).
  // Does not change any state. Used by the gradient checks and by hand-written loops.
  virtual Tensor combine(const std::vector<Tensor>& losses) const = 0;

  // Learnable parameters (one tensor of K values, created on the first weigh() or by
  // ensure_tasks(K)); empty for the others.
  const std::vector<Tensor>& parameters() const { return params_; }
  // Creates the per-task state (and parameters) for K tasks now, e.g. before an optimizer is built
  // over parameters(). Throws for K < 2 or a K different from the one the state was built for.
  void ensure_tasks(int K);
  virtual bool has_parameters() const { return false; }
  // True when weigh() needs the grad_norms callback (gradnorm).
  virtual bool needs_grad_norms() const { return false; }
  // Called after the optimizer update of a step (gradnorm renormalises its weights to sum K).
  virtual void after_step() {}

  int tasks() const { return K_; }  // 0 until the first weigh()
  int64_t step() const { return step_; }
  const WeightingResult& last() const { return result_; }

  StateDict state_dict() const;
  // Checks the method name and every size; throws std::invalid_argument naming the key.
  void load_state_dict(const StateDict& state);

 protected:
  // Computes result.weights and result.loss for `losses` (K values, checked) and, only once all is
  // computed and checked, commits the new state and the parameter gradients.
  virtual void weigh_impl(const std::vector<double>& losses, const GradNormFn& grad_norms, WeightingResult& out) = 0;
  // Allocates the per-task state for K tasks (called once, before the first weigh_impl).
  virtual void init_tasks(int /*K*/) {}
  virtual void save_state(StateDict& /*state*/) const {}
  virtual void load_state(const StateDict& /*state*/) {}

  // Option parsing for subclasses: every key of options() must be in `known` (else a message naming
  // the option, the method and what it takes). Values are checked by number().
  void check_keys(const std::vector<std::string>& known) const;
  // options()[key] as a number in [lo, hi] (inclusive unless open_lo), else `fallback`; throws naming
  // the option, the method, the range and the value.
  double number(const std::string& key, double fallback, double lo, double hi, bool open_lo = false) const;
  std::string text(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed) const;
  // Creates the learnable parameter tensor (K values, requires grad) once.
  Tensor& make_parameter(const std::vector<float>& init);
  // Writes `g` (K values) into the parameter's .grad.
  void set_parameter_grad(const std::vector<double>& g);
  std::vector<double> parameter_values() const;

  std::vector<double> last_weights_;  // the weights of the last weigh() (empty before)

 private:
  std::string name_;
  WeightingOptions options_;
  int K_ = 0;
  int64_t step_ = 0;
  WeightingResult result_;
  std::vector<Tensor> params_;
};

// ---- registry -------------------------------------------------------------------------------------

using WeightingFactory = std::function<std::unique_ptr<LossWeighting>(const WeightingOptions&)>;

// A static instance in a method's .cpp file registers it (the optim archive is linked whole).
struct WeightingRegistration {
  WeightingRegistration(std::string name, std::string summary, WeightingFactory factory);
};

// Creates a weighting by name; throws std::invalid_argument listing the known names. "none" gives
// nullptr (the training step then leaves the losses alone).
std::unique_ptr<LossWeighting> make_weighting(const std::string& name,
                                              const WeightingOptions& options = WeightingOptions());
// Registered names, sorted ("none" first).
std::vector<std::string> weighting_names();
std::string weighting_summary(const std::string& name);

// Numerically safe helpers shared by the methods.
std::vector<double> softmax(const std::vector<double>& x);  // max-shifted

}  // namespace weighting
}  // namespace scalpel
