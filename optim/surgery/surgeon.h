// Surgeon: turns the per-loss gradients g0 (main) and g1..gK (auxiliary) into one direction d that
// the optimizer then treats as the gradient. This is the one interface every gradient-surgery
// method implements; it is K-symmetric (nothing assumes "one main plus one aux"), so the same
// interface carries the multi-task aggregators that only need the Gram matrix of the gradients.
//
//   auto s = surgery::make_surgeon("bloop", SurgeonOptions().lambda(0.1).rho(0.01));
//   s->combine({&g0, &g1}, {loss0, loss1}, d, &diag);   // d = g0 + λ π(g1; EMA of g0)
//
// Methods are created by name (command lines choose them): "mixed", "bloop", "dynamic-barrier"
// (alias "db"), "pcgrad"; surgeon_names() lists what is registered. Formulas, order of operations
// and options follow /work/shared/docs/ALGORITHMS.md §2-3 exactly; see each method's .cpp file.
//
// Options (all runtime values; SurgeonOptions::set(key, value) takes them as strings):
//   lambda      λ (default 1): one value shared by every auxiliary loss, K values (one per auxiliary
//               loss), or a Schedule over steps for each (combine() uses schedule.at(step())).
//               λ must be finite and >= 0; λ = 0 gives d = g0 for every method.
//   rho         EMA rate (weight of the new sample). Default per method: bloop 0.01, db and pcgrad 1
//               (the paper's baselines project on the batch gradients). Mixed ignores it.
//   eps         added to squared norms in every projection ratio (default 1e-7).
//   ema_order   update_then_project (default) | project_then_update (the paper's Algorithm 1).
//   ema_init    first_grad (default) | zeros | random (N(0,1), drawn from a Generator(seed)).
//   rescale     multiply d by 1/(1 + Σλk) (every method).
//   ratio_only  bloop only: d = (1 - λ r) g0 + λ g1.
//   seed        for ema_init = random.
//
// State: each surgeon keeps its own (EMAs, step counter) and saves/restores it through StateDict
// (keys "method", "step", "ema.count", "ema.size", "ema.initialized", "ema.<j>"). combine() never
// allocates O(P) memory after its first call: EMA buffers are allocated once and d is written in
// place (an empty d is sized on first use).
//
// Adding a method: one .cpp file in optim/surgery/ with a Surgeon subclass and a static
// SurgeonRegistration, plus its test; optim/surgery/fused.h has the fused O(P) passes (EMA updates,
// Gram matrix, linear combination) and the EMA bank to build it from. The library is linked as a
// whole archive, so the registration object is never dropped by the linker.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/grad_vector.h"
#include "core/options.h"
#include "core/state_dict.h"
#include "optim/schedule.h"

namespace scalpel {
namespace surgery {

enum class EmaOrder { UpdateThenProject, ProjectThenUpdate };
enum class EmaInit { FirstGrad, Zeros, Random };
std::string to_string(EmaOrder order);  // "update_then_project" | "project_then_update"
std::string to_string(EmaInit init);    // "first_grad" | "zeros" | "random"

// What one combine() measured, at no extra gradient cost (everything comes from the Gram matrix the
// method computes anyway, or from one fused pass for Mixed). NaN marks "not applicable" (e.g. the
// EMA fields of Mixed); a cosine with a zero vector is 0.
struct SurgeryDiagnostics {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double g0_norm = kNaN;
  std::vector<double> gk_norm;    // ‖gk‖ for k = 1..K (index k-1)
  std::vector<double> cos_g0_gk;  // cos(g0, gk) for k = 1..K
  double ema_norm = kNaN;         // ‖e‖, the main-gradient EMA used for the projection
  double cos_e_g0 = kNaN;         // cos(e, g0)
  double ratio = kNaN;            // r = <e, g1> / (‖e‖² + eps)  (first auxiliary loss)
  double d_norm = kNaN;           // ‖d‖ (from the Gram matrix: dᵀd = cᵀGc)
  double cos_d_g0 = kNaN;         // cos(d, g0)
  std::vector<double> lambdas;    // the λk used at this step
  double scale = 1.0;             // 1/(1+Σλk) with rescale, else 1
  bool db_clipped = false;        // dynamic barrier: the ratio was clipped (r > 1/λ)
  bool pcgrad_projected = false;  // pcgrad: at least one conflicting projection happened
  std::vector<double> weights;    // multi-task aggregators: d = Σ_i weights[i] g_i (tasks 0..K)
  // Every pair of task gradients (i < j, tasks 0..K), from the same Gram matrix: cosines of the
  // pairs without g0 (those with g0 are cos_g0_gk), in the order (1,2), (1,3), .., (2,3), ..; and
  // the gradient-magnitude similarity 2‖gi‖‖gj‖/(‖gi‖² + ‖gj‖²) of every pair (1: equal norms;
  // 0 when one is zero), in the order (0,1), (0,2), .., (1,2), ...
  std::vector<double> cos_gi_gj;
  std::vector<double> gms;
  // Inverse condition number λmin/λmax of the (K+1)×(K+1) Gram matrix of the task gradients, in
  // [0, 1] (0: linearly dependent gradients; NaN with one task, a zero matrix or K+1 > 16).
  double gram_rcond = kNaN;
  // Flat (name, value) pairs in a stable order, for metric logs: g0_norm, g1_norm.., cos_g0_g1..,
  // ema_norm, cos_e_g0, ratio, d_norm, cos_d_g0, lambda1.., scale, db_clipped, pcgrad_projected,
  // weight0.., cos_g1_g2.., gms_g0_g1.., gram_rcond.
  std::vector<std::pair<std::string, double>> to_map() const;
};

class SurgeonOptions {
 public:
  SurgeonOptions() = default;

  // ---- λ -----------------------------------------------------------------------------------------
  SurgeonOptions& lambda(double value);                 // one λ for every auxiliary loss
  SurgeonOptions& lambdas(std::vector<double> values);  // one λ per auxiliary loss (K values)
  SurgeonOptions& lambda_schedule(optim::ScheduleRef schedule);
  SurgeonOptions& lambda_schedules(std::vector<optim::ScheduleRef> schedules);
  const std::vector<optim::ScheduleRef>& lambda_schedules() const { return lambda_schedules_; }

  // ---- the rest (chained setters; rho unset means the method's default) ----------------------------
  SCALPEL_ARG(std::optional<double>, rho);
  SCALPEL_ARG(double, eps) = 1e-7;
  SCALPEL_ARG(EmaOrder, ema_order) = EmaOrder::UpdateThenProject;
  SCALPEL_ARG(EmaInit, ema_init) = EmaInit::FirstGrad;
  SCALPEL_ARG(bool, rescale) = false;
  SCALPEL_ARG(bool, ratio_only) = false;
  SCALPEL_ARG(uint64_t, seed) = 0;

 public:
  double rho_or(double method_default) const { return rho_ ? *rho_ : method_default; }

  // Method-specific options of the multi-task aggregators (optim/surgery/aggregator.h), kept as
  // strings and parsed and validated by the method when it is made (so the error names both the
  // option and the method): c, cagrad_rescale, scale, normalize, reg_eps, norm_eps (see
  // docs/mtl.md), max_norm, update_every, optim_niter (nash-mtl), beta, shuffle (gradvac), leak
  // (graddrop), moco_beta, moco_gamma, moco_rho, moco_beta_sigma, moco_gamma_sigma (moco).
  SurgeonOptions& method_option(const std::string& key, const std::string& value);
  const std::map<std::string, std::string>& method_options() const { return method_options_; }
  static std::vector<std::string> method_keys();

  // Sets an option from strings, for command lines. Keys: lambda (a number, a schedule such as
  // "linear:0:1:1000", or a comma-separated list, one per auxiliary loss), rho, eps, ema_order,
  // ema_init, rescale, ratio_only (true/false/1/0), seed. Throws std::invalid_argument naming the
  // unknown key (and listing the known ones) or the bad value and what was expected.
  SurgeonOptions& set(const std::string& key, const std::string& value);
  static std::vector<std::string> keys();
  // "lambda=0.1 rho=0.01 eps=1e-07 ..." for logs.
  std::string describe() const;

 private:
  std::vector<optim::ScheduleRef> lambda_schedules_{optim::constant(1.0)};
  std::map<std::string, std::string> method_options_;
};

class Surgeon {
 public:
  Surgeon(std::string name, SurgeonOptions options);
  virtual ~Surgeon() = default;
  Surgeon(const Surgeon&) = delete;
  Surgeon& operator=(const Surgeon&) = delete;

  // The canonical registered name ("bloop", "dynamic-barrier", ...).
  const std::string& name() const { return name_; }
  const SurgeonOptions& options() const { return options_; }

  // grads[0] = g0 (main), grads[1..K] auxiliary, all the same size P; losses: the K+1 loss values or
  // empty. Writes d (sized P on first use when empty; must otherwise be P). K = 0 gives d = g0.
  // Throws std::invalid_argument (naming the method) on a size or count mismatch, a λ count that is
  // neither 1 nor K, a negative or non-finite λ, or a K different from the one the state was built
  // for. Advances step() by one.
  void combine(const std::vector<const GradVector*>& grads, const std::vector<double>& losses, GradVector& d,
               SurgeryDiagnostics* diag = nullptr);
  void combine(const std::vector<GradVector>& grads, GradVector& d, SurgeryDiagnostics* diag = nullptr);

  // The step used to evaluate λ schedules; combine() increments it.
  int64_t step() const { return step_; }
  void set_step(int64_t step);
  // λk at a step (K values; a single λ is repeated).
  std::vector<double> lambdas_at(int64_t step, int K) const;

  // Own state (EMAs, step), saved by value (later combines do not change a saved StateDict).
  StateDict state_dict() const;
  // Checks the method name and every size; throws std::invalid_argument naming the key.
  void load_state_dict(const StateDict& state);

  // Bytes read + written from/to memory by the last combine() (each distinct O(P) buffer counted
  // once per fused pass), for bandwidth reporting.
  uint64_t last_bytes_moved() const { return bytes_moved_; }
  // True for the symmetric multi-task aggregators (they need at least two task gradients).
  bool multi_task() const { return min_tasks() > 1; }

 protected:
  struct Inputs {
    const std::vector<const float*>& g;  // K+1 gradients
    int K;
    int64_t P;
    const std::vector<double>& lambda;  // K values, finite, >= 0
    double scale;                       // rescale factor (already includes 1/(1+Σλ) when set)
    double eps;
    const std::vector<double>& losses;  // K+1 values or empty
  };
  // Writes d (P floats) and, when diag is non-null, the method-specific diagnostics (the base fills
  // lambdas and scale). Called with K >= 1.
  virtual void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) = 0;
  // Fewest gradients combine() accepts (multi-task aggregators: 2; K = 0 is then an error).
  virtual int min_tasks() const { return 1; }
  virtual void save_state(StateDict& /*state*/) const {}
  virtual void load_state(const StateDict& /*state*/) {}
  void add_bytes_moved(uint64_t bytes) { bytes_moved_ += bytes; }

 private:
  std::string name_;
  SurgeonOptions options_;
  int64_t step_ = 0;
  uint64_t bytes_moved_ = 0;
  std::vector<double> lambda_scratch_;
  std::vector<const float*> ptr_scratch_;
};

// Thrown when a method is given a method option it does not read ("mgda: option 'c' does not
// apply to mgda"), so callers that spread options over several methods can tell it from a bad value.
class OptionNotTaken : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// ---- registry -------------------------------------------------------------------------------------

using SurgeonFactory = std::function<std::unique_ptr<Surgeon>(const SurgeonOptions&)>;

// A static instance in a method's .cpp file registers it:
//   static SurgeonRegistration reg("bloop", {}, "d = g0 + λ π(g1; EMA of g0)", [](const SurgeonOptions& o) {
//     return std::make_unique<Bloop>(o); });
struct SurgeonRegistration {
  SurgeonRegistration(std::string name, std::vector<std::string> aliases, std::string summary, SurgeonFactory factory);
};

// Creates a method by name or alias; throws std::invalid_argument listing the known names.
std::unique_ptr<Surgeon> make_surgeon(const std::string& name, const SurgeonOptions& options = SurgeonOptions());
// Canonical names, sorted.
std::vector<std::string> surgeon_names();
// The main + auxiliary methods (λ-weighted, asymmetric: mixed, bloop, dynamic-barrier, pcgrad, ...)
// and the symmetric multi-task aggregators (mgda, cagrad, ...: every task alike, λ unused, at least
// two gradients). Together they are surgeon_names().
std::vector<std::string> main_aux_surgeon_names();
std::vector<std::string> multi_task_surgeon_names();
// Aliases of a canonical name, and its one-line summary.
std::vector<std::string> surgeon_aliases(const std::string& name);
std::string surgeon_summary(const std::string& name);

}  // namespace surgery
}  // namespace scalpel
