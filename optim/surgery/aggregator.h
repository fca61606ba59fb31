// Multi-task gradient aggregators (issue 12): the symmetric K-task methods (MGDA, CAGrad, IMTL-G,
// Aligned-MTL, UPGrad, DualProj, Nash-MTL, GradVac; GradDrop and MoCo use MultiTaskSurgeon directly)
// on the Surgeon interface. Every gradient g_0..g_{T-1} (T = K+1
// tasks; the Surgeon calls them "main + K auxiliary", these methods treat them alike and ignore λ)
// is read twice: pass 1 forms the T×T Gram matrix G = J Jᵀ (J: T×P, rows = tasks), the method
// turns G into weights w (T doubles, K×K algebra only), pass 2 writes d = Jᵀ w = Σ_i w_i g_i.
// No P×T copies; after the first step nothing is allocated. diag->weights gets w.
//
// Scaling conventions follow TorchJD (docs/mtl.md): MGDA/IMTL-G weights sum to 1, CAGrad is built
// around the MEAN gradient, UPGrad/DualProj project the mean (weights 1/T before projection).
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace surgery {

// Base of every symmetric multi-task method: at least two task gradients, λ unused, and the
// method_options checked against the method's own list when it is made.
class MultiTaskSurgeon : public Surgeon {
 public:
  // `allowed`: the method_options keys this method reads; any other one set is an error naming
  // the option and the method.
  MultiTaskSurgeon(std::string name, const SurgeonOptions& o, const std::vector<std::string>& allowed);

 protected:
  int min_tasks() const override { return 2; }

  // Option parsing (errors: "<method>: option '<key>' ...").
  double number_option(const std::string& key, double fallback) const;
  // A number that must lie in [lo, hi]; the error names method, option, range and value.
  double number_option(const std::string& key, double fallback, double lo, double hi) const;
  // An integer >= lo.
  int64_t int_option(const std::string& key, int64_t fallback, int64_t lo) const;
  std::string string_option(const std::string& key, const std::string& fallback) const;
};

class GramAggregator : public MultiTaskSurgeon {
 public:
  GramAggregator(std::string name, const SurgeonOptions& o, const std::vector<std::string>& allowed)
      : MultiTaskSurgeon(std::move(name), o, allowed) {}

 protected:
  // G: T×T row-major Gram matrix in double; writes w (T values).
  virtual void weights(const std::vector<double>& G, int T, std::vector<double>& w) = 0;
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override;

 private:
  Gram G_;
  std::vector<double> gram_, w_;
};

// ---- K×K helpers (aggregator.cpp) -------------------------------------------------------------
// min_{v >= lower} vᵀ G v (G PSD, T×T): primal active-set method (Lawson–Hanson style) on the
// box-constrained QP; exact up to rounding. A zero G leaves v = lower.
void box_qp(const std::vector<double>& G, int T, const std::vector<double>& lower, std::vector<double>& v,
            int max_iter = 1000);
// min_{w in simplex} wᵀ G w: exact for T = 2, away-step Frank–Wolfe with exact line
// search otherwise.
// TorchJD's preprocessing for upgrad/dualproj: G / trace(G) (0 when the trace < norm_eps), + reg_eps·I.
void torchjd_normalize(const std::vector<double>& G, int T, double norm_eps, double reg_eps, std::vector<double>& out);
void min_norm_simplex(const std::vector<double>& G, int T, std::vector<double>& w, int max_iter = 20000);
// Euclidean projection of v (T values) onto the simplex {x >= 0, Σx = 1} (sort-based, exact).
// `scratch` is resized to T (no allocation once it has that size).
void project_simplex(std::vector<double>& v, std::vector<double>& scratch);

}  // namespace surgery
}  // namespace scalpel
