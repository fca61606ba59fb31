// Row sums in double that vectorize and keep a fixed order: the reductions behind batch_norm and
// the conv2d bias gradient.
//
// A plain `double s; for (i) s += r[i];` is one long dependency chain (the compiler may not reorder
// floating-point adds), so it runs at one add per 4 cycles. These helpers keep kSumLanes independent
// partial sums (lane l takes elements i = l mod kSumLanes, in order), which the compiler maps onto
// vector registers, then add the lanes left to right and finally the tail. The order depends only
// on the row length, so results stay bit-identical for any thread count.
#pragma once

#include <cstdint>

namespace scalpel {
namespace kernels {

constexpr int kSumLanes = 8;

// r [n] -> sum of r[i]
inline double row_sum(const float* r, int64_t n) {
  double a[kSumLanes] = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) a[l] += static_cast<double>(r[i + l]);
  }
  double s = 0.0;
  for (int l = 0; l < kSumLanes; ++l) s += a[l];
  for (; i < n; ++i) s += static_cast<double>(r[i]);
  return s;
}

// r [n] -> sum of (r[i] - m)^2
inline double row_sum_sq_dev(const float* r, int64_t n, double m) {
  double a[kSumLanes] = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) {
      const double d = static_cast<double>(r[i + l]) - m;
      a[l] += d * d;
    }
  }
  double s = 0.0;
  for (int l = 0; l < kSumLanes; ++l) s += a[l];
  for (; i < n; ++i) {
    const double d = static_cast<double>(r[i]) - m;
    s += d * d;
  }
  return s;
}

// g [n], x [n] -> sum of g[i] and sum of g[i] * (x[i] - m)
inline void row_sum_and_dot_dev(const float* g, const float* x, int64_t n, float m, double& sum_g,
                                double& sum_gx) {
  double a[kSumLanes] = {}, b[kSumLanes] = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) {
      const double gi = static_cast<double>(g[i + l]);
      a[l] += gi;
      b[l] += gi * static_cast<double>(x[i + l] - m);
    }
  }
  double sa = 0.0, sb = 0.0;
  for (int l = 0; l < kSumLanes; ++l) {
    sa += a[l];
    sb += b[l];
  }
  for (; i < n; ++i) {
    const double gi = static_cast<double>(g[i]);
    sa += gi;
    sb += gi * static_cast<double>(x[i] - m);
  }
  sum_g = sa;
  sum_gx = sb;
}

}  // namespace kernels
}  // namespace scalpel
