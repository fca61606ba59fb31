// Float exp and erf written so that the compiler vectorizes the loops that call them: only
// arithmetic, selects and bit casts, no branches and no libm calls. glibc's
// expf/erff are scalar calls, and in the byte-level transformer the GELU and softmax loops spent
// more time in them than in anything but the matrix products (README, Performance).
//
// exp_approx: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for
// e^r (the Cephes coefficients) and 2^n from the exponent bits. Relative error <= 2 ulp against
// the correctly rounded result over the normal range (tested); denormal results come out of the
// final multiply; x < -103.97 gives 0, x > 88.72 gives +inf, NaN stays NaN.
// erf_approx: Abramowitz & Stegun 7.1.26, erf(x) = 1 - (a1 t + ... + a5 t^5) e^{-x^2} with
// t = 1 / (1 + p|x|), odd in x. Absolute error <= 6e-7 (the formula's 1.5e-7 plus float rounding
// where the two terms nearly cancel, near 0), which is what GELU's 0.5 x (1 + erf(x / sqrt 2))
// needs; relative accuracy near 0 is poor, so this is not a general-purpose erf. PyTorch's
// vectorized CPU GELU uses the same formula.
//
// Every multiply-add is an explicit fused one (__builtin_fmaf), so the compiler has no contraction
// left to decide: a vectorized loop and a scalar one give the same bits, and so does every machine
// with FMA (without it, fmaf is a correctly rounded library call: same bits, slower).
#pragma once

#include <cstdint>
#include <limits>

namespace scalpel {
namespace kernels {

// always_inline: a call in a loop body would keep the loop from vectorizing.
[[gnu::always_inline]] inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kHi = 88.7228394f;                     // ln(FLT_MAX): above, +inf
  constexpr float kLo = -103.972084f;                    // ln(2^-150): below, 0
  const float xc = x < kLo ? kLo : (x > kHi ? kHi : x);  // NaN passes through unchanged
  // n = round(x / ln2) by the 1.5 * 2^23 shifter (floorf would not vectorize under the default
  // -ftrapping-math); exact for |x / ln2| < 2^22, which the clamp guarantees.
  constexpr float kShifter = 12582912.0f;
  const float nf = __builtin_fmaf(xc, kLog2e, kShifter) - kShifter;
  const float n = nf == nf ? nf : 0.0f;  // keep the integer conversion defined for NaN
  const float r = __builtin_fmaf(-n, kLn2Lo, __builtin_fmaf(-n, kLn2Hi, xc));
  float p = 1.9875691500e-4f;
  p = __builtin_fmaf(p, r, 1.3981999507e-3f);
  p = __builtin_fmaf(p, r, 8.3334519073e-3f);
  p = __builtin_fmaf(p, r, 4.1665795894e-2f);
  p = __builtin_fmaf(p, r, 1.6666665459e-1f);
  p = __builtin_fmaf(p, r, 5.0000001201e-1f);
  p = __builtin_fmaf(p, r * r, r) + 1.0f;
  // 2^n as two normal factors 2^n1 * 2^n2 (n in [-150, 128]), so that results near the top of the
  // range and gradual underflow both come out of ordinary multiplies.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni / 2, n2 = ni - n1;
  const float s1 = __builtin_bit_cast(float, (n1 + 127) << 23);
  const float s2 = __builtin_bit_cast(float, (n2 + 127) << 23);
  const float e = (p * s1) * s2;
  const float big = x > kHi ? std::numeric_limits<float>::infinity() : e;
  return x < kLo ? 0.0f : big;
}

[[gnu::always_inline]] inline float erf_approx(float x) {
  constexpr float kP = 0.3275911f;
  constexpr float kA1 = 0.254829592f, kA2 = -0.284496736f, kA3 = 1.421413741f, kA4 = -1.453152027f, kA5 = 1.061405429f;
  const float ax = x < 0.0f ? -x : x;
  const float t = 1.0f / __builtin_fmaf(kP, ax, 1.0f);
  float q = kA5;
  q = __builtin_fmaf(q, t, kA4);
  q = __builtin_fmaf(q, t, kA3);
  q = __builtin_fmaf(q, t, kA2);
  q = __builtin_fmaf(q, t, kA1);
  const float y = __builtin_fmaf(-(q * t), exp_approx(-(ax * ax)), 1.0f);
  return x < 0.0f ? -y : y;
}

}  // namespace kernels
}  // namespace scalpel
