// The own GEMM kernels (core/kernels/gemm.h): every path against a double-precision reference loop
// on shapes that hit every remainder of the register tiles (8 x 48, 6 x 16, 4 x 4) and of the
// blocking (kc = 256, mc = 192, nc = 3072), all transpose combinations, alpha and beta cases; the
// paths agree bit for bit with each other and at every thread count; ops give the same results on
// the own kernels as on OpenBLAS to rounding.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "test_util.h"

namespace {

using scalpel::kernels::GemmPath;
using scalpel::kernels::sgemm_on;

std::vector<GemmPath> own_paths() {
  std::vector<GemmPath> out;
  for (GemmPath p : {GemmPath::kAvx512, GemmPath::kAvx2, GemmPath::kScalar}) {
    if (scalpel::kernels::gemm_path_supported(p)) out.push_back(p);
  }
  return out;
}

struct Problem {
  int64_t m, n, k;
  bool ta, tb;
  float alpha, beta;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;
};

// Operands with leading dimensions 3 wider than needed (the padding holds values that must not be read).
Problem make_problem(int64_t m, int64_t n, int64_t k, bool ta, bool tb, float alpha, float beta, uint32_t seed) {
  Problem p{m, n, k, ta, tb, alpha, beta, 0, 0, 0, {}, {}, {}};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  p.lda = (ta ? m : k) + 3;
  p.ldb = (tb ? k : n) + 3;
  p.ldc = n + 3;
  p.a.resize(static_cast<size_t>((ta ? k : m) * p.lda));
  p.b.resize(static_cast<size_t>((tb ? n : k) * p.ldb));
  p.c.resize(static_cast<size_t>(m * p.ldc));
  for (float& x : p.a) x = u(rng);
  for (float& x : p.b) x = u(rng);
  for (float& x : p.c) x = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  return p;
}

std::vector<float> run(GemmPath path, const Problem& p) {
  std::vector<float> c = p.c;
  sgemm_on(path, p.ta, p.tb, p.m, p.n, p.k, p.alpha, p.a.data(), p.lda, p.b.data(), p.ldb, p.beta, c.data(), p.ldc);
  return c;
}

// Checks c against the double reference; the padding columns of C must be untouched.
void expect_matches_reference(const Problem& p, const std::vector<float>& c, const char* what) {
  const double tol = 1e-5 * (8.0 + std::sqrt(static_cast<double>(p.k)));
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * p.ldc + j);
      if (j >= p.n) {
        ASSERT_TRUE(std::isnan(c[at]) ? std::isnan(p.c[at]) : c[at] == p.c[at]) << what << ": wrote past n";
        continue;
      }
      double s = 0.0;
      for (int64_t q = 0; q < p.k; ++q) {
        const double a = p.ta ? p.a[static_cast<size_t>(q * p.lda + i)] : p.a[static_cast<size_t>(i * p.lda + q)];
        const double b = p.tb ? p.b[static_cast<size_t>(j * p.ldb + q)] : p.b[static_cast<size_t>(q * p.ldb + j)];
        s += a * b;
      }
      const double ref = p.alpha * s + (p.beta == 0.0f ? 0.0 : p.beta * static_cast<double>(p.c[at]));
      ASSERT_NEAR(c[at], ref, tol) << what << " m=" << p.m << " n=" << p.n << " k=" << p.k << " ta=" << p.ta
                                   << " tb=" << p.tb << " at (" << i << ", " << j << ")";
    }
  }
}

void expect_bitwise_equal(const std::vector<float>& x, const std::vector<float>& y, const char* what) {
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    ASSERT_EQ(x[i], y[i]) << what << " at " << i;
  }
}

TEST(Gemm, EveryPathMatchesTheReferenceOnEveryRemainder) {
  // m: under, at and over the tiles (4, 6, 8) and the mc block (192); n: the tiles (4, 16, 48);
  // k: the kc slice (256).
  const int64_t ms[] = {1, 5, 8, 13, 193};
  const int64_t ns[] = {1, 17, 47, 49};
  const int64_t ks[] = {1, 7, 256, 257};
  uint32_t seed = 1;
  for (int64_t m : ms)
    for (int64_t n : ns)
      for (int64_t k : ks)
        for (int t = 0; t < 4; ++t) {
          const float beta = (t == 0 ? 0.0f : t == 1 ? 1.0f : 0.5f);
          const Problem p = make_problem(m, n, k, t & 1, t & 2, t == 3 ? -0.75f : 1.0f, beta, seed++);
          for (GemmPath path : own_paths()) {
            const std::vector<float> c = run(path, p);
            expect_matches_reference(p, c, scalpel::kernels::gemm_path_name(path));
            if (HasFatalFailure()) return;
          }
        }
}

TEST(Gemm, BlockBoundariesOfNAndKMatchTheReference) {
  // n over the nc block (3072) and k over several kc slices, on the fastest path and the portable one.
  for (GemmPath path : {own_paths().front(), GemmPath::kScalar}) {
    const Problem wide = make_problem(9, 3073 + 48, 40, false, true, 1.0f, 0.5f, 77);
    expect_matches_reference(wide, run(path, wide), "n > nc");
    const Problem deep = make_problem(10, 50, 3 * 256 + 5, true, false, 2.0f, 0.0f, 78);
    expect_matches_reference(deep, run(path, deep), "k > 3 kc");
  }
}

TEST(Gemm, ThePathsAgreeBitForBit) {
  uint32_t seed = 100;
  for (int64_t m : {3, 8, 50, 200})
    for (int64_t n : {5, 48, 100})
      for (int64_t k : {9, 256, 300})
        for (int t = 0; t < 4; ++t) {
          const Problem p = make_problem(m, n, k, t & 1, t & 2, 0.5f, t == 0 ? 0.0f : 0.3f, seed++);
          const std::vector<float> ref = run(GemmPath::kScalar, p);
          for (GemmPath path : own_paths())
            expect_bitwise_equal(run(path, p), ref, scalpel::kernels::gemm_path_name(path));
        }
}

TEST(Gemm, ResultsDoNotDependOnTheThreadCount) {
  // Large enough to run in parallel (above the 4 Mflop serial threshold), with remainders.
  const Problem p = make_problem(203, 301, 517, false, true, 1.0f, 1.0f, 9);
  for (GemmPath path : own_paths()) {
    scalpel::set_num_threads(1);
    const std::vector<float> one = run(path, p);
    scalpel::set_num_threads(2);
    const std::vector<float> two = run(path, p);
    scalpel::set_num_threads(3);
    const std::vector<float> three = run(path, p);
    std::vector<float> nested;
    scalpel::set_num_threads(2);
#pragma omp parallel num_threads(2)
    {
#pragma omp single
      nested = run(path, p);  // inside a parallel region: the serial path
    }
    scalpel::set_num_threads(0);
    expect_bitwise_equal(one, two, "1 vs 2 threads");
    expect_bitwise_equal(one, three, "1 vs 3 threads");
    expect_bitwise_equal(one, nested, "inside a parallel region");
    expect_matches_reference(p, one, scalpel::kernels::gemm_path_name(path));
  }
}

TEST(Gemm, DegenerateSizesFollowBlasSemantics) {
  for (GemmPath path : own_paths()) {
    // k = 0: C = beta * C; beta = 0 clears NaN.
    std::vector<float> c = {1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, 4.0f};
    sgemm_on(path, false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
    c = {1.0f, 2.0f, 3.0f, 4.0f};
    const float a[2] = {5.0f, 6.0f}, b[2] = {7.0f, 8.0f};
    sgemm_on(path, false, false, 2, 2, 1, 0.0f, a, 1, b, 2, 2.0f, c.data(), 2);  // alpha = 0
    EXPECT_EQ(c, (std::vector<float>{2.0f, 4.0f, 6.0f, 8.0f}));
    sgemm_on(path, false, false, 2, 2, 1, 1.0f, a, 1, b, 2, 1.0f, c.data(), 2);
    EXPECT_EQ(c, (std::vector<float>{37.0f, 44.0f, 48.0f, 56.0f}));
  }
}

TEST(Gemm, AutoIsNotAConcretePath) {
  float c = 0.0f;
  try {
    sgemm_on(GemmPath::kAuto, false, false, 1, 1, 1, 1.0f, &c, 1, &c, 1, 0.0f, &c, 1);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sgemm_on"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("auto"), std::string::npos) << e.what();
  }
}

// The ops on the own kernel give OpenBLAS's results to rounding (the im2col convolution, its
// backward, and a batched matmul), so switching paths never changes a model's behaviour.
TEST(Gemm, OpsOnTheOwnKernelMatchOpenBlas) {
  using namespace scalpel;
  const GemmPath saved = kernels::gemm_path();
  Tensor x = scalpel::testing::randn({4, 32, 12, 12}, 5).set_requires_grad();
  Tensor w = scalpel::testing::randn({40, 32, 3, 3}, 6).set_requires_grad();
  const Tensor a = scalpel::testing::randn({3, 70, 90}, 7), b = scalpel::testing::randn({3, 90, 60}, 8);
  Conv2dParams cp;
  cp.pad_h = cp.pad_w = 1;
  cp.algorithm = ConvAlgo::kIm2col;
  std::vector<std::vector<float>> got;
  for (GemmPath path : {GemmPath::kBlas, own_paths().front()}) {
    kernels::set_gemm_path(path);
    const Tensor y = conv2d(x, w, Tensor(), cp);
    const auto g = grad({sum(mul(y, y))}, {x, w});
    got.push_back(y.to_vector());
    got.push_back(g[0].to_vector());
    got.push_back(g[1].to_vector());
    got.push_back(matmul(a, b).to_vector());
  }
  kernels::set_gemm_path(saved);
  for (size_t i = 0; i < 4; ++i) {
    const auto& r = got[i];
    const auto& o = got[i + 4];
    ASSERT_EQ(r.size(), o.size());
    double scale = 0.0;
    for (float v : r) scale = std::max(scale, static_cast<double>(std::fabs(v)));
    for (size_t j = 0; j < r.size(); ++j) ASSERT_NEAR(o[j], r[j], 2e-6 * scale) << "output " << i << " at " << j;
  }
}

}  // namespace
