// The matrix-product dispatcher and Scalpel's own packed GEMM kernels (see gemm.h). The three
// register tiles differ only in width; the packing, the blocking (kc, mc, nc) and the merge into C
// are shared, which is what makes the paths agree bit for bit.
#include "core/kernels/gemm.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace scalpel {
namespace kernels {
namespace {

// Blocking, the same on every path: kKc fixes the summation order of every element.
constexpr int64_t kKc = 256;   // k slice: a kc x nr panel of B stays in L1 (AVX-512: 48 KiB)
constexpr int64_t kMc = 192;   // rows of A per packed block (multiple of 8, 6 and 4), in L2
constexpr int64_t kNc = 3072;  // columns of B per packed block (multiple of 48, 16 and 4)

// How a finished kc slice t enters C.
enum class Merge { kStore, kScaleAdd, kAdd };

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Grow-only 64-byte aligned scratch, one per thread (no allocation once warm).
struct Scratch {
  float* p = nullptr;
  int64_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(int64_t floats) {
    if (floats > n) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(round_up(floats * 4, 64))));
      if (!p) throw std::bad_alloc();
      n = floats;
    }
    return p;
  }
};
thread_local Scratch tl_pack_a, tl_pack_b;

// C [mv, nv] (row stride ldc) <- t [mv, nv] (row stride tld) per mode; the scalar form of the vector
// merges below (std::fma(beta, c, t) is one rounding, like _mm512_fmadd_ps).
void merge_tile(const float* t, int64_t tld, float* c, int64_t ldc, int64_t mv, int64_t nv, Merge mode, float beta) {
  for (int64_t i = 0; i < mv; ++i) {
    float* ci = c + i * ldc;
    const float* ti = t + i * tld;
    for (int64_t j = 0; j < nv; ++j) {
      ci[j] = mode == Merge::kStore ? ti[j] : mode == Merge::kAdd ? ci[j] + ti[j] : std::fma(beta, ci[j], ti[j]);
    }
  }
}

// op(A) rows [i0, i0 + mc) x k [p0, p0 + kc), times alpha -> ap [panels][kc][mr] for panel ip;
// rows past mc are zero.
void pack_a_panel(bool ta, const float* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float alpha,
                  int64_t mr, float* ap, int64_t ip) {
  float* dst = ap + ip * kc * mr;
  const int64_t rows = std::min(mr, mc - ip * mr);
  const int64_t r0 = i0 + ip * mr;
  if (!ta) {  // A(i, p) = a[i * lda + p]
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = a + (r0 + r) * lda + p0;
      for (int64_t q = 0; q < kc; ++q) dst[q * mr + r] = alpha * src[q];
    }
  } else {  // A(i, p) = a[p * lda + i]
    for (int64_t q = 0; q < kc; ++q) {
      const float* src = a + (p0 + q) * lda + r0;
      for (int64_t r = 0; r < rows; ++r) dst[q * mr + r] = alpha * src[r];
    }
  }
  for (int64_t q = 0; q < kc; ++q)
    for (int64_t r = rows; r < mr; ++r) dst[q * mr + r] = 0.0f;
}

// op(B) k [p0, p0 + kc) x columns [j0, j0 + nc) -> bp [panels][kc][nr] for panel jp; columns past
// nc are zero.
void pack_b_panel(bool tb, const float* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int64_t nr,
                  float* bp, int64_t jp) {
  float* dst = bp + jp * kc * nr;
  const int64_t cols = std::min(nr, nc - jp * nr);
  const int64_t c0 = j0 + jp * nr;
  if (!tb) {  // B(p, j) = b[p * ldb + j]
    for (int64_t q = 0; q < kc; ++q) {
      std::memcpy(dst + q * nr, b + (p0 + q) * ldb + c0, static_cast<size_t>(cols) * sizeof(float));
      for (int64_t j = cols; j < nr; ++j) dst[q * nr + j] = 0.0f;
    }
  } else {  // B(p, j) = b[j * ldb + p]
    for (int64_t j = 0; j < cols; ++j) {
      const float* src = b + (c0 + j) * ldb + p0;
      for (int64_t q = 0; q < kc; ++q) dst[q * nr + j] = src[q];
    }
    for (int64_t q = 0; q < kc; ++q)
      for (int64_t j = cols; j < nr; ++j) dst[q * nr + j] = 0.0f;
  }
}

// ap [kc][8], bp [kc][48] -> C tile [mv <= 8, nv <= 48]: 24 zmm accumulators.
__attribute__((target("avx512f"))) void micro_avx512(int64_t kc, const float* ap, const float* bp, float* c,
                                                     int64_t ldc, int64_t mv, int64_t nv, Merge mode, float beta) {
  constexpr int MR = 8, NV = 3;
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t q = 0; q < kc; ++q) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), b2 = _mm512_loadu_ps(bp + 32);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(a, b2, acc[i][2]);
    }
    ap += MR;
    bp += 16 * NV;
  }
  if (mv == MR && nv == 16 * NV) {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) {
        float* d = c + i * ldc + 16 * v;
        if (mode == Merge::kStore) {
          _mm512_storeu_ps(d, acc[i][v]);
        } else if (mode == Merge::kAdd) {
          _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc[i][v]));
        } else {
          _mm512_storeu_ps(d, _mm512_fmadd_ps(vb, _mm512_loadu_ps(d), acc[i][v]));
        }
      }
    }
    return;
  }
  alignas(64) float t[MR * 16 * NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm512_store_ps(t + i * 16 * NV + 16 * v, acc[i][v]);
  merge_tile(t, 16 * NV, c, ldc, mv, nv, mode, beta);
}

// ap [kc][6], bp [kc][16] -> C tile [mv <= 6, nv <= 16]: 12 ymm accumulators.
__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                                    int64_t mv, int64_t nv, Merge mode, float beta) {
  constexpr int MR = 6, NV = 2;
  __m256 acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64_t q = 0; q < kc; ++q) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += MR;
    bp += 8 * NV;
  }
  if (mv == MR && nv == 8 * NV) {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        float* d = c + i * ldc + 8 * v;
        if (mode == Merge::kStore) {
          _mm256_storeu_ps(d, acc[i][v]);
        } else if (mode == Merge::kAdd) {
          _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[i][v]));
        } else {
          _mm256_storeu_ps(d, _mm256_fmadd_ps(vb, _mm256_loadu_ps(d), acc[i][v]));
        }
      }
    }
    return;
  }
  alignas(32) float t[MR * 8 * NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm256_store_ps(t + i * 8 * NV + 8 * v, acc[i][v]);
  merge_tile(t, 8 * NV, c, ldc, mv, nv, mode, beta);
}

// ap [kc][4], bp [kc][4] -> C tile [mv <= 4, nv <= 4], one std::fma per product.
void micro_scalar(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int64_t mv, int64_t nv,
                  Merge mode, float beta) {
  constexpr int MR = 4, NR = 4;
  float t[MR * NR] = {};
  for (int64_t q = 0; q < kc; ++q) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) t[i * NR + j] = std::fma(ap[i], bp[j], t[i * NR + j]);
    ap += MR;
    bp += NR;
  }
  merge_tile(t, NR, c, ldc, mv, nv, mode, beta);
}

using MicroFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int64_t, int64_t, Merge, float);

// C = beta * C (k = 0 or alpha = 0), BLAS semantics for beta = 0.
void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(ci, ci + n, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
    }
  }
}

// Work below which one thread is used (2*m*n*k flops): fork/join would cost more than it brings.
constexpr double kParallelMinFlops = 4.0e6;

// The blocked product on one tile shape. Every thread walks the same jc / pc / ic blocks; packing
// and tiles are split with static schedules, and each element is computed by exactly one thread.
void gemm_blocked(int64_t mr, int64_t nr, MicroFn micro, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  float* bp = tl_pack_b.get(kKc * round_up(std::min(n, kNc), nr));
  float* ap = tl_pack_a.get(kKc * round_up(std::min(m, kMc), mr));
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int threads = (omp_in_parallel() || flops < kParallelMinFlops) ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    for (int64_t jc = 0; jc < n; jc += kNc) {
      const int64_t nc = std::min(kNc, n - jc);
      const int64_t nb = (nc + nr - 1) / nr;
      for (int64_t pc = 0; pc < k; pc += kKc) {
        const int64_t kc = std::min(kKc, k - pc);
        const Merge mode = pc > 0         ? Merge::kAdd
                           : beta == 0.0f ? Merge::kStore
                           : beta == 1.0f ? Merge::kAdd
                                          : Merge::kScaleAdd;
#pragma omp for schedule(static)
        for (int64_t jp = 0; jp < nb; ++jp) pack_b_panel(tb, b, ldb, pc, kc, jc, nc, nr, bp, jp);
        for (int64_t ic = 0; ic < m; ic += kMc) {
          const int64_t mc = std::min(kMc, m - ic);
          const int64_t na = (mc + mr - 1) / mr;
#pragma omp for schedule(static)
          for (int64_t ip = 0; ip < na; ++ip) pack_a_panel(ta, a, lda, ic, mc, pc, kc, alpha, mr, ap, ip);
#pragma omp for collapse(2) schedule(static)
          for (int64_t jp = 0; jp < nb; ++jp) {
            for (int64_t ip = 0; ip < na; ++ip) {
              micro(kc, ap + ip * kc * mr, bp + jp * kc * nr, c + (ic + ip * mr) * ldc + jc + jp * nr, ldc,
                    std::min(mr, mc - ip * mr), std::min(nr, nc - jp * nr), mode, beta);
            }
          }
        }
      }
    }
  }
}

bool cpu_has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

GemmPath parse_path(const std::string& s) {
  if (s == "auto") return GemmPath::kAuto;
  if (s == "blas") return GemmPath::kBlas;
  if (s == "avx512") return GemmPath::kAvx512;
  if (s == "avx2") return GemmPath::kAvx2;
  if (s == "scalar") return GemmPath::kScalar;
  throw std::invalid_argument("SCALPEL_GEMM: expected one of auto, blas, avx512, avx2, scalar, found '" + s + "'");
}

constexpr int kUnset = -1;
std::atomic<int> g_path{kUnset};

// kAuto's size rule (m*n*k multiply-adds), measured on the 2-vCPU Zen 5 VM at 2 threads
// (bench_core gemm/*, docs/performance-notes.md "Finding 6"): below kSerialMaxMacs OpenBLAS runs
// single-threaded, because its fork/join costs more than the second thread brings there (128 x 128 x
// 32: 27 GFLOP/s on 2 threads, 95 on 1; the own kernel 77); from there on the own AVX-512 kernel when
// gemm_auto_uses_own() (1.5-1.7x OpenBLAS's AVX2 kernels), else OpenBLAS on every thread.
constexpr double kSerialMaxMacs = 1.0 * (1 << 23);

// cblas_sgemm on the calling thread alone: the OpenMP build of OpenBLAS sizes its team from
// omp_get_max_threads(), which omp_set_num_threads changes for this thread only.
void blas_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int threads = omp_get_max_threads();
  if (threads > 1) omp_set_num_threads(1);
  sgemm_on(GemmPath::kBlas, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (threads > 1) omp_set_num_threads(threads);
}

}  // namespace

const char* gemm_path_name(GemmPath p) {
  switch (p) {
    case GemmPath::kAuto:
      return "auto";
    case GemmPath::kBlas:
      return "blas";
    case GemmPath::kAvx512:
      return "avx512";
    case GemmPath::kAvx2:
      return "avx2";
    case GemmPath::kScalar:
      return "scalar";
  }
  return "?";
}

bool gemm_path_supported(GemmPath p) {
  switch (p) {
    case GemmPath::kAvx512:
      return cpu_has_avx512();
    case GemmPath::kAvx2:
      return cpu_has_avx2_fma();
    default:
      return true;
  }
}

void set_gemm_path(GemmPath p) {
  if (!gemm_path_supported(p)) {
    throw std::invalid_argument(std::string("set_gemm_path: this CPU cannot run the '") + gemm_path_name(p) +
                                "' kernels (use auto, blas or scalar)");
  }
  g_path.store(static_cast<int>(p));
}

GemmPath gemm_path() {
  int p = g_path.load();
  if (p == kUnset) {
    const char* env = std::getenv("SCALPEL_GEMM");
    const GemmPath parsed = env && *env ? parse_path(env) : GemmPath::kAuto;
    if (!gemm_path_supported(parsed)) {
      throw std::invalid_argument(std::string("SCALPEL_GEMM=") + env + ": this CPU cannot run these kernels" +
                                  " (use auto, blas or scalar)");
    }
    p = static_cast<int>(parsed);
    g_path.store(p);
  }
  return static_cast<GemmPath>(p);
}

bool gemm_auto_uses_own() {
  static const bool yes = [] {
    if (!cpu_has_avx512()) return false;
    const char* name = openblas_get_corename();
    std::string core = name ? name : "";
    for (char& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return !(core == "skylakex" || core == "cooperlake" || core == "sapphirerapids");
  }();
  return yes;
}

std::string gemm_summary() {
  return std::string("gemm=") + gemm_path_name(gemm_path()) +
         " (auto: " + (gemm_auto_uses_own() ? "own avx512 for large products" : "openblas") + ")";
}

void sgemm_on(GemmPath path, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  switch (path) {
    case GemmPath::kBlas:
      if (m <= 0 || n <= 0) return;
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                  static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                  beta, c, static_cast<int>(ldc));
      return;
    case GemmPath::kAvx512:
      gemm_blocked(8, 48, micro_avx512, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    case GemmPath::kAvx2:
      gemm_blocked(6, 16, micro_avx2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    case GemmPath::kScalar:
      gemm_blocked(4, 4, micro_scalar, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    case GemmPath::kAuto:
      break;
  }
  throw std::invalid_argument("sgemm_on: expected a concrete path (blas, avx512, avx2 or scalar), got 'auto'");
}

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc) {
  GemmPath p = gemm_path();
  if (p == GemmPath::kAuto) {
    const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    if (macs < kSerialMaxMacs) return blas_serial(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    p = gemm_auto_uses_own() ? GemmPath::kAvx512 : GemmPath::kBlas;
  }
  sgemm_on(p, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace kernels
}  // namespace scalpel
