#include "core/parallel.h"

#include "core/kernels/gemm.h"

#include <cblas.h>

#include <cstdlib>
#include <sstream>

namespace scalpel {
namespace {
int default_threads() {
  static const int n = omp_get_max_threads();
  return n;
}
}  // namespace

void set_num_threads(int n) {
  const int t = n > 0 ? n : default_threads();
  omp_set_num_threads(t);
  openblas_set_num_threads(t);
}

int num_threads() { return omp_get_max_threads(); }

std::string blas_corename() {
  const char* name = openblas_get_corename();
  return name ? std::string(name) : std::string("unknown");
}

std::string threading_summary() {
  std::ostringstream os;
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  os << "threads=" << num_threads() << " openblas_threads=" << openblas_get_num_threads()
     << " openblas_core=" << blas_corename() << " openblas_parallel="
     << (openblas_get_parallel() == 2   ? "openmp"
         : openblas_get_parallel() == 1 ? "pthreads"
                                        : "serial")
     << " OPENBLAS_CORETYPE=" << (coretype ? coretype : "(unset)") << " " << kernels::gemm_summary();
  return os.str();
}

}  // namespace scalpel
