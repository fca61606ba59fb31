// Threading: one OpenMP thread pool for BLAS and for Scalpel's own parallel loops.
//
// Scalpel links the OpenMP build of OpenBLAS (Debian's libopenblas0-openmp), so a GEMM and our own
// loops run on the same OpenMP threads instead of two pools fighting over the cores.
// `set_num_threads(n)` sets both. Without a call, the OpenMP default applies (OMP_NUM_THREADS, else
// one thread per core). Our loops split work into chunks whose results never depend on the chunk
// boundaries (elementwise maps) or use a fixed chunking independent of the thread count
// (reductions), so a given seed and thread count gives the same bits every run.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace scalpel {

// Threads used by BLAS and by parallel_for. n <= 0 restores the default.
void set_num_threads(int n);
int num_threads();
// "Haswell", "SkylakeX", "Cooperlake", ...: the OpenBLAS kernel set in use.
std::string blas_corename();
// One line describing the threading setup, for logs and benchmark headers.
std::string threading_summary();

// Runs f(begin, end) over [0, n) split into contiguous chunks of at least `grain` elements.
// Serial when n is small, when one thread is configured, or when already inside a parallel region.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(static_cast <int>(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    f(n * c / chunks, n * (c + 1) / chunks);
  }
}

}  // namespace scalpel
