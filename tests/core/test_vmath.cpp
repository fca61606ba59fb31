// core/kernels/vmath.h: the vectorizable exp and erf against libm in double, over sampled and
// special inputs. exp: <= 2 ulp from the correctly rounded float on the normal range (an
// exhaustive run over all floats measured 1 ulp); erf: absolute error <= 6e-7 (the documented
// bound; measured 5.3e-7).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/kernels/vmath.h"
#include "core/random.h"

using scalpel::kernels::erf_approx;
using scalpel::kernels::exp_approx;

namespace {

// Distance in units in the last place between two finite floats of the same sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
}

}  // namespace

TEST(Vmath, ExpIsWithinTwoUlpOnTheNormalRange) {
  scalpel::Generator gen(5);
  int64_t worst = 0;
  float worst_x = 0.0f;
  for (int i = 0; i < 2000000; ++i) {
    const float x = static_cast<float>(gen.uniform_double() * (88.7 + 87.3) - 87.3);
    const float ref = static_cast<float>(std::exp(static_cast<double>(x)));
    const int64_t d = ulps(exp_approx(x), ref);
    if (d > worst) worst = d, worst_x = x;
  }
  EXPECT_LE(worst, 2) << "at x = " << worst_x;
  // Small arguments, where e^x is 1 + x + ...
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 0.5f, -0.5f}) {
    EXPECT_LE(ulps(exp_approx(x), static_cast<float>(std::exp(static_cast<double>(x)))), 1) << x;
  }
}

TEST(Vmath, ExpEdgesOverflowUnderflowAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_approx(89.0f), inf);
  EXPECT_EQ(exp_approx(inf), inf);
  EXPECT_EQ(exp_approx(-inf), 0.0f);
  EXPECT_EQ(exp_approx(-104.0f), 0.0f);
  EXPECT_TRUE(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
  // Largest finite result and a denormal one come out of the scaling multiplies.
  EXPECT_TRUE(std::isfinite(exp_approx(88.72f)));
  EXPECT_LE(ulps(exp_approx(88.72f), static_cast<float>(std::exp(static_cast<double>(88.72f)))), 2);
  const float denormal = exp_approx(-100.0f);
  EXPECT_GT(denormal, 0.0f);
  EXPECT_LT(denormal, std::numeric_limits<float>::min());
  EXPECT_NEAR(denormal, static_cast<float>(std::exp(-100.0)), 2 * std::numeric_limits<float>::denorm_min());
}

TEST(Vmath, ErfIsWithinItsAbsoluteBound) {
  double worst = 0.0;
  float worst_x = 0.0f;
  for (int i = -200000; i <= 200000; ++i) {
    const float x = static_cast<float>(i) * 5e-5f;  // [-10, 10]
    const double err = std::fabs(static_cast<double>(erf_approx(x)) - std::erf(static_cast<double>(x)));
    if (err > worst) worst = err, worst_x = x;
  }
  EXPECT_LE(worst, 6e-7) << "at x = " << worst_x;
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(erf_approx(inf), 1.0f);
  EXPECT_EQ(erf_approx(-inf), -1.0f);
  EXPECT_EQ(erf_approx(0.0f), 0.0f);
  EXPECT_EQ(erf_approx(-2.5f), -erf_approx(2.5f));  // odd
  EXPECT_TRUE(std::isnan(erf_approx(std::numeric_limits<float>::quiet_NaN())));
}
