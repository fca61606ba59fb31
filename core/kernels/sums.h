// Row sums in double that vectorize and keep a fixed order: the reductions behind batch_norm and
// the conv2d bias gradient.
//
// A plain `double s; for (i) s += r[i];` is one long dependency chain (the compiler may not reorder
// floating-point adds), so it runs at one add per 4 cycles. These helpers keep kSumLanes independent
// partial sums in one vector of doubles (lane l takes elements i = l mod kSumLanes, in order), then
// add the lanes left to right and finally the tail. The order depends only on the row length, so
// results stay bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <cstring>

namespace scalpel {
namespace kernels {

constexpr int kSumLanes = 8;
typedef float SumVecF __attribute__((vector_size(kSumLanes * sizeof(float))));
typedef double SumVecD __attribute__((vector_size(kSumLanes * sizeof(double))));

// r[i .. i + kSumLanes) widened to double.
inline SumVecD load_widen(const float* r) {
  SumVecF f;
  std::memcpy(&f, r, sizeof f);
  return __builtin_convertvector(f, SumVecD);
}

inline double sum_lanes(SumVecD a) {
  double s = 0.0;
  for (int l = 0; l < kSumLanes; ++l) s += a[l];
  return s;
}

// r [n] -> sum of r[i]
inline double row_sum(const float* r, int64_t n) {
  SumVecD a = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) a += load_widen(r + i);
  double s = sum_lanes(a);
  for (; i < n; ++i) s += static_cast<double>(r[i]);
  return s;
}

// r [n] -> sum of (r[i] - m)^2
inline double row_sum_sq_dev(const float* r, int64_t n, double m) {
  SumVecD a = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    const SumVecD d = load_widen(r + i) - m;
    a += d * d;
  }
  double s = sum_lanes(a);
  for (; i < n; ++i) {
    const double d = static_cast<double>(r[i]) - m;
    s += d * d;
  }
  return s;
}

// g [n], x [n] -> sum of g[i] and sum of g[i] * (x[i] - m), (x[i] - m) rounded to float first
inline void row_sum_and_dot_dev(const float* g, const float* x, int64_t n, float m, double& sum_g, double& sum_gx) {
  SumVecD a = {}, b = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    SumVecF xf;
    std::memcpy(&xf, x + i, sizeof xf);
    const SumVecD gi = load_widen(g + i);
    a += gi;
    b += gi * __builtin_convertvector(xf - m, SumVecD);
  }
  double sa = sum_lanes(a), sb = sum_lanes(b);
  for (; i < n; ++i) {
    const double gi = static_cast<double>(g[i]);
    sa += gi;
    sb += gi * static_cast<double>(x[i] - m);
  }
  sum_g = sa;
  sum_gx = sb;
}

// The same with g[i] replaced by g[i] * (y[i] > 0 ? 1 : 0): the gradient through a ReLU whose
// output is y, rounded exactly as relu's own backward rounds it (batch_norm_relu).
inline void row_sum_and_dot_dev_masked(const float* g, const float* y, const float* x, int64_t n, float m,
                                       double& sum_g, double& sum_gx) {
  SumVecD a = {}, b = {};
  const SumVecF zero = {}, one = zero + 1.0f;
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    SumVecF gf, yf, xf;
    std::memcpy(&gf, g + i, sizeof gf);
    std::memcpy(&yf, y + i, sizeof yf);
    std::memcpy(&xf, x + i, sizeof xf);
    const SumVecD gi = __builtin_convertvector(gf * (yf > zero ? one : zero), SumVecD);
    a += gi;
    b += gi * __builtin_convertvector(xf - m, SumVecD);
  }
  double sa = sum_lanes(a), sb = sum_lanes(b);
  for (; i < n; ++i) {
    const double gi = static_cast<double>(g[i] * (y[i] > 0.0f ? 1.0f : 0.0f));
    sa += gi;
    sb += gi * static_cast<double>(x[i] - m);
  }
  sum_g = sa;
  sum_gx = sb;
}

}  // namespace kernels
}  // namespace scalpel
