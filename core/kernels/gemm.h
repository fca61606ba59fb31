// Every matrix product of the ops (matmul/linear, the im2col convolutions, attention) goes through
// `sgemm` here, which hands it to OpenBLAS or to Scalpel's own blocked kernels.
//
// Why own kernels: an environment may hold OpenBLAS to its AVX2 kernels (OPENBLAS_CORETYPE=Haswell)
// on a CPU whose 512-bit FMA units are twice as wide. We never override that variable; instead,
// when the CPU has AVX-512 and the loaded OpenBLAS core is not an AVX-512 one, the products large
// enough to gain run on our own AVX-512 kernel (GemmPath::kAuto). The kernel is the usual packed
// GEMM: B is packed in kc x nr panels, A (scaled by alpha) in kc x mr panels, and a register tile of
// mr x nr accumulators streams the k dimension (AVX-512: 8 x 48, AVX2: 6 x 16, portable: 4 x 4).
//
// Results: every element is the same sequence of fused multiply-adds on every path, at every
// thread count: each kc = 256 slice of k is summed in order from zero, then merged into C
// (C = t, C = beta*C + t as one fma, or C += t), slice after slice. Tiles and threads only decide
// who computes an element, never how, so the AVX-512, AVX2 and portable paths agree bit for bit
// (tests/core/test_gemm.cpp). OpenBLAS orders its sums differently, so it agrees to rounding.
#pragma once

#include <cstdint>
#include <string>

namespace scalpel {
namespace kernels {

enum class GemmPath {
  kAuto,    // small products: OpenBLAS on one thread; large: own AVX-512 kernel where it gains, else OpenBLAS
  kBlas,    // cblas_sgemm
  kAvx512,  // own kernel, 8 x 48 AVX-512 tile
  kAvx2,    // own kernel, 6 x 16 AVX2 + FMA tile
  kScalar,  // own kernel, 4 x 4 portable tile (std::fma)
};

// "auto", "blas", "avx512", "avx2", "scalar".
const char* gemm_path_name(GemmPath p);
// Whether this CPU runs the path (kAuto and kBlas always; the own paths by CPU features).
bool gemm_path_supported(GemmPath p);

// The process-wide choice. Defaults to the SCALPEL_GEMM environment variable (one of the names
// above), else kAuto. Throws std::invalid_argument for a path this CPU cannot run.
void set_gemm_path(GemmPath p);
GemmPath gemm_path();
// kAuto: products under 2^23 multiply-adds run on OpenBLAS with one thread (fork/join would cost
// more); larger ones on the own AVX-512 kernel when gemm_auto_uses_own(), else on OpenBLAS.
// True when kAuto sends large products to the own AVX-512 kernel on this machine: the CPU has
// AVX-512F and OpenBLAS's loaded core is not an AVX-512 one (SkylakeX, Cooperlake, SapphireRapids).
bool gemm_auto_uses_own();
// One line for logs and benchmark headers: the configured path and what kAuto picks.
std::string gemm_summary();

// Row-major C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C, op = transpose when the flag
// is set (A is then stored [k, m] with leading dimension lda, B [n, k]). beta = 0 ignores C's old
// contents (NaN included), as BLAS does. Runs on the configured path; serial inside a parallel region.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The same product on one given path, no dispatch (tests and benchmarks); kAuto is not accepted.
void sgemm_on(GemmPath path, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace kernels
}  // namespace scalpel
