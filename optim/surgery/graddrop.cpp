// GradDrop, gradient sign dropout (Chen et al. 2020, "Just pick a sign: optimizing deep multitask
// models with gradient sign dropout", Algorithm 1 lines 10-15, as TorchJD's GradDrop). Elementwise,
// for every parameter p:
//   purity  P_p = ½ (1 + Σ_i g_ip / Σ_i |g_ip|)         (½ when every g_ip = 0)
//   U_p ~ Uniform[0, 1), one draw per element and step
//   M_ip = [P_p > U_p][g_ip > 0] + [P_p < U_p][g_ip < 0]  (keep the positive or the negative side)
//   d_p = Σ_i (ℓ + (1 − ℓ) M_ip) g_ip                      (ℓ = leak; ℓ = 1 gives the plain sum)
// So an element where all tasks agree in sign keeps their sum; a conflicting one keeps one sign with
// probability given by the purity. GradDrop is not a Gram method: it is one O(TP) pass reading each
// gradient once and writing d, with no buffer of its own (no allocation after the first step).
//
// Random numbers: U_p is a counter-based hash of (seed, draw, p), where draw counts the steps, so
// the result does not depend on the thread count or the chunking, and the stream position is a
// single counter saved in the state ("graddrop.draws"; a restored run continues the same stream).
// Options: leak ℓ in [0, 1] (default 0, one value for every task), seed (the core option).
// Diagnostics: the gradient norms, cos(g0, gk), ‖d‖ and cos(d, g0), accumulated in the same pass
// (chunk partial sums added in a fixed order, so they too are independent of the thread count).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

inline uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class GradDrop final : public MultiTaskSurgeon {
 public:
  explicit GradDrop(const SurgeonOptions& o) : MultiTaskSurgeon("graddrop", o, {"leak"}) {
    leak_ = number_option("leak", 0.0, 0.0, 1.0);
  }

 protected:
  // g_0..g_{T-1} [P] -> d [P].
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    const int T = in.K + 1;
    const int64_t n = in.P;
    const uint64_t key = mix64(options().seed() ^ mix64(draws_ + 0x9E3779B97F4A7C15ULL));
    ++draws_;
    const int64_t blocks = (n + kFusedBlock - 1) / kFusedBlock;
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(kFusedChunks, blocks));
    const size_t nacc = static_cast<size_t>(2 * T + 1);  // ‖g_i‖² (T), <g0, g_k> (T-1), ‖d‖², <d, g0>
    acc_.assign(static_cast<size_t>(chunks) * nacc, 0.0);
    const float* const* g = in.g.data();
    const double leak = leak_;
    const bool want = diag != nullptr;
    auto run_chunk = [&](int64_t c) {
      double* acc = acc_.data() + static_cast<size_t>(c) * nacc;
      const int64_t i0 = std::min(n, blocks * c / chunks * kFusedBlock);
      const int64_t i1 = std::min(n, blocks * (c + 1) / chunks * kFusedBlock);
      for (int64_t p = i0; p < i1; ++p) {
        double s = 0, a = 0;
        for (int k = 0; k < T; ++k) {
          const double x = g[k][p];
          s += x;
          a += std::abs(x);
        }
        const double purity = a > 0 ? 0.5 * (1.0 + s / a) : 0.5;
        const double u =
            static_cast<double>(mix64(key + static_cast<uint64_t>(p) * 0xD1B54A32D192ED03ULL) >> 11) * 0x1.0p-53;
        const bool pos = purity > u, neg = purity < u;
        double out = 0;
        for (int k = 0; k < T; ++k) {
          const double x = g[k][p];
          const bool keep = (pos && x > 0) || (neg && x < 0);
          out += (keep ? 1.0 : leak) * x;
        }
        const float o = static_cast<float>(out);
        d[p] = o;
        if (want) {
          const double x0 = g[0][p];
          for (int k = 0; k < T; ++k) {
            const double x = g[k][p];
            acc[k] += x * x;
            if (k > 0) acc[T + k - 1] += x0 * x;
          }
          acc[2 * T - 1] += static_cast<double>(o) * o;
          acc[2 * T] += static_cast<double>(o) * x0;
        }
      }
    };
    const int threads = omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), chunks));
    if (threads <= 1 || n < 4 * kFusedBlock) {
      for (int64_t c = 0; c < chunks; ++c) run_chunk(c);
    } else {
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int64_t c = 0; c < chunks; ++c) run_chunk(c);
    }
    add_bytes_moved(static_cast<uint64_t>(T + 1) * static_cast<uint64_t>(std::max<int64_t>(n, 0)) * sizeof(float));
    if (diag) {
      tot_.assign(nacc, 0.0);
      for (int64_t c = 0; c < chunks; ++c)
        for (size_t k = 0; k < nacc; ++k) tot_[k] += acc_[static_cast<size_t>(c) * nacc + k];
      auto cosine = [](double dot, double na, double nb) {
        return na > 0 && nb > 0 ? std::clamp(dot / (na * nb), -1.0, 1.0) : 0.0;
      };
      diag->g0_norm = std::sqrt(tot_[0]);
      diag->gk_norm.assign(static_cast<size_t>(in.K), 0.0);
      diag->cos_g0_gk.assign(static_cast<size_t>(in.K), 0.0);
      for (int k = 1; k < T; ++k) {
        diag->gk_norm[static_cast<size_t>(k - 1)] = std::sqrt(tot_[static_cast<size_t>(k)]);
        diag->cos_g0_gk[static_cast<size_t>(k - 1)] =
            cosine(tot_[static_cast<size_t>(T + k - 1)], diag->g0_norm, diag->gk_norm[static_cast<size_t>(k - 1)]);
      }
      diag->d_norm = std::sqrt(tot_[static_cast<size_t>(2 * T - 1)]);
      diag->cos_d_g0 = cosine(tot_[static_cast<size_t>(2 * T)], diag->d_norm, diag->g0_norm);
    }
  }

  void save_state(StateDict& state) const override {
    state.set_int("graddrop.draws", static_cast<int64_t>(draws_));
    state.set_int("graddrop.seed", static_cast<int64_t>(options().seed()));
  }

  void load_state(const StateDict& state) override {
    const int64_t draws = state.get_int("graddrop.draws");
    if (draws < 0) throw std::invalid_argument("graddrop.load_state_dict: 'graddrop.draws' is negative");
    if (state.get_int("graddrop.seed") != static_cast<int64_t>(options().seed())) {
      throw std::invalid_argument("graddrop.load_state_dict: the state was saved with seed " +
                                  std::to_string(state.get_int("graddrop.seed")) + ", this surgeon has seed " +
                                  std::to_string(options().seed()));
    }
    draws_ = static_cast<uint64_t>(draws);
  }

 private:
  double leak_ = 0;
  uint64_t draws_ = 0;             // the RNG stream position: one draw of U per step
  std::vector<double> acc_, tot_;  // per-chunk diagnostic sums
};

const SurgeonRegistration kRegistration("graddrop", {}, "gradient sign dropout: keep one sign per element by purity",
                                        [](const SurgeonOptions& o) { return std::make_unique<GradDrop>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
