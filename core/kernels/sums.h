// Row reductions that vectorize and keep a fixed order: sums in double behind batch_norm, the conv2d
// bias gradient and softmax, and a row maximum.
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

// r [n] -> the largest r[i], NaNs skipped as std::max(m, r[i]) skips them (-inf for n = 0 or all
// NaN). Lane maxima then their maximum: max is exact, so the order does not change the result.
inline float row_max(const float* r, int64_t n) {
  float m[kSumLanes];
  for (int l = 0; l < kSumLanes; ++l) m[l] = -__builtin_inff();
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) m[l] = m[l] < r[i + l] ? r[i + l] : m[l];
  }
  float best = -__builtin_inff();
  for (int l = 0; l < kSumLanes; ++l) best = best < m[l] ? m[l] : best;
  for (; i < n; ++i) best = best < r[i] ? r[i] : best;
  return best;
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

// r [n] -> s1 = sum of (r[i] - k), s2 = sum of (r[i] - k)^2: one pass for a mean and a variance
// (var = s2/n - (s1/n)^2). With k a value of the data itself the subtraction cancels any common
// offset, and double accumulation keeps the difference of the two terms accurate.
inline void row_shifted_sums(const float* r, int64_t n, double k, double& s1, double& s2) {
  SumVecD a = {}, b = {};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    const SumVecD d = load_widen(r + i) - k;
    a += d;
    b += d * d;
  }
  double sa = sum_lanes(a), sb = sum_lanes(b);
  for (; i < n; ++i) {
    const double d = static_cast<double>(r[i]) - k;
    sa += d;
    sb += d * d;
  }
  s1 = sa;
  s2 = sb;
}

// g [n], x [n] -> sum_g = sum of g'[i] and sum_gx = sum of g'[i] * (x[i] - m), (x[i] - m) rounded to
// float first, where g' = g, or with kRelu g'[i] = g[i] * (x[i] * scale + shift > 0 ? 1 : 0): the
// gradient through the ReLU of batch_norm_relu, whose mask is recomputed from x exactly as the
// forward computed the output, and rounded as relu's own backward rounds it.
template <bool kRelu>
inline void row_sum_and_dot_dev(const float* g, const float* x, int64_t n, float m, float scale, float shift,
                                double& sum_g, double& sum_gx) {
  SumVecD a = {}, b = {};
  const SumVecF zero = {}, one = zero + 1.0f;
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    SumVecF gf, xf;
    std::memcpy(&gf, g + i, sizeof gf);
    std::memcpy(&xf, x + i, sizeof xf);
    if constexpr (kRelu) gf = gf * (xf * scale + shift > zero ? one : zero);
    const SumVecD gi = __builtin_convertvector(gf, SumVecD);
    a += gi;
    b += gi * __builtin_convertvector(xf - m, SumVecD);
  }
  double sa = sum_lanes(a), sb = sum_lanes(b);
  for (; i < n; ++i) {
    float gv = g[i];
    if constexpr (kRelu) gv = gv * (x[i] * scale + shift > 0.0f ? 1.0f : 0.0f);
    const double gi = static_cast<double>(gv);
    sa += gi;
    sb += gi * static_cast<double>(x[i] - m);
  }
  sum_g = sa;
  sum_gx = sb;
}

}  // namespace kernels
}  // namespace scalpel
