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
// Arithmetic is float, block by block (kFusedBlock elements: sums, then the sign choice, then d), so
// the loops vectorise; the result is exact for agreeing signs and leak 0 or 1 on small integers.
// Random numbers: U_p is a counter-based hash of (seed, draw, p), where draw counts the steps, so
// the result does not depend on the thread count or the chunking, and the stream position is a
// single counter saved in the state ("graddrop.draws"; a restored run continues the same stream).
// (U has 24 random bits: 64-bit seed and step hashed into two 32-bit keys, then two rounds of a
// 32-bit mixer over the element index, which vectorise.) Diagnostics: the gradient norms,
// cos(g0, gk), ‖d‖ and cos(d, g0), accumulated in the same pass over the block while it is in
// cache (8 double lanes, chunk sums added in a fixed order: independent of the thread count).
// Options: leak ℓ in [0, 1] (default 0, one value for every task), seed (the core option).
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

inline uint32_t mix32(uint32_t x) {  // "lowbias32" (C. Wellons): a 32-bit avalanche bijection
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// x [len], y [len] -> lanes[8] += x·y in double, element i into lane i mod 8 (fixed order).
void dot_lanes(const float* x, const float* y, int64_t len, double* lanes) {
  int64_t i = 0;
  for (; i + 8 <= len; i += 8)
    for (int k = 0; k < 8; ++k) lanes[k] += static_cast<double>(x[i + k]) * static_cast<double>(y[i + k]);
  for (; i < len; ++i) lanes[i & 7] += static_cast<double>(x[i]) * static_cast<double>(y[i]);
}

// g[T] at offset i0 [len <= kFusedBlock] -> d [len]. ka, kb: this step's keys (ka already holds
// the high 32 bits of the element index). All float, branch-free, so the loops vectorise.
void drop_block(const float* const* g, int T, int64_t i0, int64_t len, uint32_t ka, uint32_t kb, float leak, float* d) {
  // Four scratch rows 2064 floats apart: rows a multiple of 4 KiB apart would make every load of
  // one alias the stores to another (4K aliasing), several times slower.
  constexpr int64_t kRow = kFusedBlock + 16;
  alignas(64) float buf[4 * kRow];
  float *s = buf, *a = buf + kRow, *pos = buf + 2 * kRow, *neg = buf + 3 * kRow;
  for (int64_t i = 0; i < len; ++i) s[i] = 0.0f, a[i] = 0.0f;
  for (int k = 0; k < T; ++k) {
    const float* x = g[k] + i0;
    for (int64_t i = 0; i < len; ++i) {
      s[i] += x[i];
      a[i] += std::fabs(x[i]);
    }
  }
  const uint32_t p0 = static_cast<uint32_t>(i0);
  for (int64_t i = 0; i < len; ++i) {
    const float purity = a[i] > 0.0f ? 0.5f * (1.0f + s[i] / a[i]) : 0.5f;
    const uint32_t h = mix32(mix32(p0 + static_cast<uint32_t>(i) + ka) ^ kb);
    const float u = static_cast<float>(h >> 8) * 0x1.0p-24f;  // [0, 1), 24 bits
    pos[i] = purity > u ? 1.0f : 0.0f;
    neg[i] = purity < u ? 1.0f : 0.0f;
  }
  for (int64_t i = 0; i < len; ++i) d[i] = 0.0f;
  const float keep_w = 1.0f - leak;
  for (int k = 0; k < T; ++k) {
    const float* x = g[k] + i0;
    for (int64_t i = 0; i < len; ++i) {
      const float m = (x[i] > 0.0f ? pos[i] : 0.0f) + (x[i] < 0.0f ? neg[i] : 0.0f);
      d[i] += (leak + keep_w * m) * x[i];
    }
  }
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
    // Per chunk, 8 double lanes each of: ‖g_i‖² (T), <g0, g_k> (T-1), ‖d‖², <d, g0>.
    const size_t nacc = static_cast<size_t>(2 * T + 1) * 8;
    acc_.assign(static_cast<size_t>(chunks) * nacc, 0.0);
    const float* const* g = in.g.data();
    const float leak = static_cast<float>(leak_);
    const uint32_t kb = static_cast<uint32_t>(key >> 32);
    const bool want = diag != nullptr;
    auto run_chunk = [&](int64_t c) {
      double* acc = acc_.data() + static_cast<size_t>(c) * nacc;
      for (int64_t blk = blocks * c / chunks; blk < blocks * (c + 1) / chunks; ++blk) {
        const int64_t i0 = blk * kFusedBlock, len = std::min(kFusedBlock, n - i0);
        const uint32_t ka = static_cast<uint32_t>(key) ^ mix32(static_cast<uint32_t>(i0 >> 32) * 0x85EBCA6BU);
        drop_block(g, T, i0, len, ka, kb, leak, d + i0);
        if (want) {
          for (int k = 0; k < T; ++k) dot_lanes(g[k] + i0, g[k] + i0, len, acc + 8 * k);
          for (int k = 1; k < T; ++k) dot_lanes(g[0] + i0, g[k] + i0, len, acc + 8 * (T + k - 1));
          dot_lanes(d + i0, d + i0, len, acc + 8 * (2 * T - 1));
          dot_lanes(d + i0, g[0] + i0, len, acc + 8 * (2 * T));
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
      tot_.assign(static_cast<size_t>(2 * T + 1), 0.0);
      for (int64_t c = 0; c < chunks; ++c)
        for (size_t k = 0; k < tot_.size(); ++k) {
          const double* l = acc_.data() + static_cast<size_t>(c) * nacc + 8 * k;
          tot_[k] += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        }
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
