// The O(P) building blocks every surgery method is made of: fused passes over flat float vectors
// (EMA updates, the Gram matrix in double, a linear combination) and the bank of EMA buffers with
// its init/order policy and StateDict save/load.
//
// A method does its O(P) work in one or two FusedPass calls and everything else on K×K matrices:
//   pass 1: e ← (1-ρ)e + ρ g0 (pre), G = VᵀV over the basis V = [g0..gK, e..]       (reads each once)
//   (K×K work: ratios, projections, weights -> coefficients c over V)
//   pass 2: d = Σ c_k V_k (+ post-updates for project_then_update)                  (reads each once)
// Inside a pass the vectors are walked in blocks of kFusedBlock floats; for each block the updates,
// the Gram products and the combination run while the block is in cache, so each buffer crosses the
// memory bus once per pass. Dot products accumulate in double in 8 lanes per pair; the combination
// accumulates in double and rounds once to float.
//
// Determinism: the range is cut into at most kFusedChunks chunks whose boundaries depend only on n
// (never on the thread count); chunks run in parallel and their partial Gram sums are added in chunk
// order, so results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/grad_vector.h"
#include "core/state_dict.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace surgery {

constexpr int64_t kFusedBlock = 2048;
constexpr int64_t kFusedChunks = 64;

// e ← (1 - ρ) e + ρ src, elementwise (ρ = 1 copies src exactly).
struct EmaUpdate {
  float* ema;
  const float* src;
  float rho;
};

// Symmetric M×M matrix of inner products over a basis V, in double: G(a, b) = <V_a, V_b>. Methods
// do all their non-O(P) algebra on it with coefficient vectors (Coef, one double per basis vector):
// for x = Σ a_k V_k and y = Σ b_k V_k, <x, y> = G.dot(a, b) = aᵀ G b. (Plain vectors rather than
// Eigen: these are a handful of doubles, and a method that needs a QP or an eigendecomposition can
// wrap the data in an Eigen::Map in its own file.)
using Coef = std::vector<double>;

class Gram {
 public:
  void reset(size_t m) {
    m_ = m;
    data_.assign(m * m, 0.0);
  }
  size_t size() const { return m_; }
  double operator()(size_t a, size_t b) const { return data_[a * m_ + b]; }
  double& at(size_t a, size_t b) { return data_[a * m_ + b]; }
  const double* data() const { return data_.data(); }  // row-major m×m
  // aᵀ G b
  double dot(const Coef& a, const Coef& b) const;
  // aᵀ G e_i (the inner product of x = Σ a_k V_k with V_i)
  double dot_unit(const Coef& a, size_t i) const;

 private:
  size_t m_ = 0;
  std::vector<double> data_;
};

// e_i of length m.
Coef unit_coef(size_t m, size_t i);
// y += alpha x
void axpy(Coef& y, double alpha, const Coef& x);

struct FusedPass {
  std::vector<const float*> vectors;  // the basis V (may include EMA buffers)
  std::vector<EmaUpdate> pre;         // applied first, block by block
  Gram* gram = nullptr;               // if set: G(a, b) = <V_a, V_b> after `pre` (reset to M×M)
  float* out = nullptr;               // if set: out = Σ coef[k] V_k (after `pre`, before `post`)
  std::vector<double> coef;           // one per vector when `out` is set
  std::vector<EmaUpdate> post;        // applied last
};

// Runs the pass over n elements; returns the bytes it moved (each distinct buffer read or written
// counted once). Throws std::logic_error on an inconsistent pass (coef count, null pointers).
uint64_t run_fused_pass(int64_t n, const FusedPass& pass);

// Fills the diagnostics every method shares from the Gram matrix G over the basis whose first K+1
// entries are g0..gK: norms and cosines of the gradients, of the EMA at basis index `ema_index`
// (-1: none) and of d = Σ coef_k V_k.
void fill_common_diagnostics(const Gram& G, int K, int ema_index, const Coef& coef, SurgeryDiagnostics& diag);

// The EMAs a method keeps: `count` buffers of P floats, EMA j tracking gradient j. Implements
// ema_init (first_grad / zeros / random) and ema_order (update_then_project / project_then_update)
// as pre/post updates of the method's fused passes. With ρ = 1 and update_then_project the EMA equals
// the current gradient exactly, so no buffer is kept (`aliased()`), saving P floats and a pass.
class EmaBank {
 public:
  EmaBank(std::string owner, double rho, EmaOrder order, EmaInit init, uint64_t seed);

  // Allocates `count` EMAs of n floats on first use (or checks the loaded/earlier ones match).
  void prepare(int count, int64_t n);
  bool aliased() const { return aliased_; }
  int count() const { return count_; }
  double rho() const { return rho_; }
  // EMA j's buffer (the gradient itself when aliased). Valid after prepare().
  const float* ema(int j, const std::vector<const float*>& grads) const;
  // The updates for this step: `pre` before the Gram pass, `post` after the combination pass.
  void updates(const std::vector<const float*>& grads, std::vector<EmaUpdate>& pre, std::vector<EmaUpdate>& post);
  // Marks the step done (first_grad initialisation happened).
  void finish_step() { initialized_ = true; }

  void save(StateDict& state) const;
  void load(const StateDict& state);

 private:
  std::string owner_;
  double rho_;
  EmaOrder order_;
  EmaInit init_;
  uint64_t seed_;
  bool aliased_;
  int count_ = -1;  // -1: not prepared yet
  int64_t size_ = -1;
  bool initialized_ = false;
  std::vector<GradVector> buffers_;
};

}  // namespace surgery
}  // namespace scalpel
