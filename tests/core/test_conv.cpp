// conv2d: every algorithm (im2col + sgemm with channel-major columns or with pixel-major rows, and
// the direct kernels) against a convolution loop in double, on shapes that reach every blocking
// remainder of each path; determinism across runs and thread counts; error messages.
//
// Tolerances: |actual - reference| <= 2e-4 + 1e-4 * |reference| (float sums of up to a few
// thousand terms of size ~1; observed errors are 10x or more below).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/parallel.h"
#include "test_util.h"

using namespace scalpel;
using scalpel::testing::bit_equal;
using scalpel::testing::error_of;
using scalpel::testing::randn;

namespace {

std::string algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::kDirect:
      return "direct";
    case ConvAlgo::kIm2col:
      return "im2col";
    case ConvAlgo::kIm2colRows:
      return "im2col rows";
    default:
      return "auto";
  }
}

}  // namespace

// ---- conv2d against a loop in double ----------------------------------------------------------

namespace {
struct ConvRef {
  std::vector<double> out, dx, dw, db;
};
// Direct convolution in double: out, and d<out, r>/d(x, w, b).
ConvRef conv_reference(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& r, const Conv2dParams& p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t Ho = (H + 2 * p.pad_h - kh) / p.stride_h + 1, Wo = (W + 2 * p.pad_w - kw) / p.stride_w + 1;
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector(), rv = r.to_vector();
  const std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>(O, 0.0f);
  ConvRef ref;
  ref.out.assign(N * O * Ho * Wo, 0.0);
  ref.dx.assign(xv.size(), 0.0);
  ref.dw.assign(wv.size(), 0.0);
  ref.db.assign(O, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t oi = ((n * O + o) * Ho + oh) * Wo + ow;
          double acc = bv[o];
          const double rr = rv[oi];
          ref.db[o] += rr;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * p.stride_h - p.pad_h + i, iw = ow * p.stride_w - p.pad_w + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t xi = ((n * C + c) * H + ih) * W + iw, wi = ((o * C + c) * kh + i) * kw + j;
                acc += static_cast<double>(xv[xi]) * wv[wi];
                ref.dx[xi] += rr * wv[wi];
                ref.dw[wi] += rr * xv[xi];
              }
          ref.out[oi] = acc;
        }
  return ref;
}

::testing::AssertionResult close_to(const Tensor& t, const std::vector<double>& ref, double atol, double rtol,
                                    const std::string& what) {
  const std::vector<float> v = t.to_vector();
  if (v.size() != ref.size()) return ::testing::AssertionFailure() << what << ": " << v.size() << " vs " << ref.size();
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(std::fabs(v[i] - ref[i]) <= atol + rtol * std::fabs(ref[i]))) {
      return ::testing::AssertionFailure() << what << ": element " << i << " is " << v[i] << ", reference " << ref[i];
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult conv_matches_reference(const Shape& xs, const Shape& ws, bool bias, Conv2dParams p,
                                                  uint64_t seed, ConvAlgo algo = ConvAlgo::kAuto) {
  p.algo(algo);
  Tensor x = randn(xs, seed).set_requires_grad();
  Tensor w = randn(ws, seed + 1, 0.3f).set_requires_grad();
  Tensor b = bias ? randn({ws[0]}, seed + 2).set_requires_grad() : Tensor();
  const Tensor out = conv2d(x, w, b, p);
  const Tensor r = randn(out.shape(), seed + 3);
  const ConvRef ref = conv_reference(x, w, b, r, p);
  std::vector<Tensor> ins{x, w};
  if (bias) ins.push_back(b);
  const std::vector<Tensor> g = grad({out}, ins, GradOptions().set_seeds({r}));
  const std::string tag = "conv2d (" + algo_name(algo) + ") x " + shape_str(xs) + " w " + shape_str(ws);
  // Float sums of up to a few thousand terms of size ~1: atol 2e-4, rtol 1e-4.
  auto res = close_to(out, ref.out, 2e-4, 1e-4, tag + " out");
  if (res) res = close_to(g[0], ref.dx, 2e-4, 1e-4, tag + " dx");
  if (res) res = close_to(g[1], ref.dw, 2e-4, 1e-4, tag + " dw");
  if (res && bias) res = close_to(g[2], ref.db, 2e-4, 1e-4, tag + " db");
  return res;
}
}  // namespace

TEST(Conv2d, BothIm2colLayoutsMatchLoopOnEveryBatchingPath) {
  for (ConvAlgo algo : {ConvAlgo::kIm2col, ConvAlgo::kIm2colRows}) {
    SCOPED_TRACE(algo_name(algo));
    // 32x32 outputs: one image per product (writes straight into the output).
    EXPECT_TRUE(conv_matches_reference({2, 2, 32, 32}, {3, 2, 3, 3}, true, Conv2dParams().padding(1), 100, algo));
    // 20x20 outputs: groups of 3 images (3, 3, then a last group of 1) for N = 7.
    EXPECT_TRUE(conv_matches_reference({7, 3, 20, 20}, {4, 3, 3, 3}, true, Conv2dParams().padding(1), 110, algo));
    // 4x4 outputs: the whole batch of 9 in one product; stride 2, pad 1.
    EXPECT_TRUE(
        conv_matches_reference({9, 4, 8, 8}, {5, 4, 3, 3}, true, Conv2dParams().stride(2).padding(1), 120, algo));
    // Non-square kernel and per-axis stride/padding, no bias; 1x1 stride-2 shortcut; 5x5 kernel, pad 2.
    EXPECT_TRUE(conv_matches_reference({3, 3, 9, 11}, {2, 3, 2, 4}, false, Conv2dParams().stride(3, 2).padding(1, 2),
                                       130, algo));
    EXPECT_TRUE(conv_matches_reference({4, 6, 8, 8}, {5, 6, 1, 1}, false, Conv2dParams().stride(2), 140, algo));
    EXPECT_TRUE(conv_matches_reference({2, 2, 7, 7}, {3, 2, 5, 5}, true, Conv2dParams().padding(2), 150, algo));
    // Kernel as large as the padded input: a single output pixel.
    EXPECT_TRUE(conv_matches_reference({2, 2, 3, 3}, {2, 2, 5, 5}, true, Conv2dParams().padding(1), 160, algo));
  }
}

TEST(Conv2d, IsDeterministic) {
  const Tensor x = randn({7, 3, 20, 20}, 200), w = randn({4, 3, 3, 3}, 201), b = randn({4}, 202);
  std::vector<Tensor> first;
  for (int rep = 0; rep < 2; ++rep) {
    Tensor xl = x.clone().set_requires_grad(), wl = w.clone().set_requires_grad(), bl = b.clone().set_requires_grad();
    const Tensor out = conv2d(xl, wl, bl, Conv2dParams().padding(1));
    const std::vector<Tensor> g = grad({out}, {xl, wl, bl}, GradOptions().set_seeds({Tensor::ones_like(out)}));
    if (rep == 0) {
      first = {out, g[0], g[1], g[2]};
    } else {
      EXPECT_TRUE(bit_equal(out, first[0]));
      EXPECT_TRUE(bit_equal(g[0], first[1]));
      EXPECT_TRUE(bit_equal(g[1], first[2]));
      EXPECT_TRUE(bit_equal(g[2], first[3]));
    }
  }
}

TEST(Conv2d, ErrorsNameTheOpAndShapes) {
  const Tensor x = Tensor::zeros({2, 5, 8, 8}), w = Tensor::zeros({4, 3, 3, 3});
  std::string e = error_of([&] { conv2d(x, w, Tensor()); });
  EXPECT_NE(e.find("conv2d"), std::string::npos) << e;
  EXPECT_NE(e.find("[2, 5, 8, 8]"), std::string::npos) << e;
  EXPECT_NE(e.find("[4, 3, 3, 3]"), std::string::npos) << e;
  EXPECT_NE(e.find("channels"), std::string::npos) << e;

  e = error_of([&] { conv2d(Tensor::zeros({5, 8, 8}), Tensor::zeros({4, 5, 3, 3}), Tensor()); });
  EXPECT_NE(e.find("conv2d: input must be 4-D [N, C, H, W], got [5, 8, 8]"), std::string::npos) << e;

  const Tensor x3 = Tensor::zeros({2, 3, 8, 8});
  e = error_of([&] { conv2d(x3, w, Tensor(), Conv2dParams().stride(0)); });
  EXPECT_NE(e.find("conv2d: stride must be positive, got (0, 0)"), std::string::npos) << e;
  e = error_of([&] { conv2d(x3, w, Tensor(), Conv2dParams().padding(-1, 0)); });
  EXPECT_NE(e.find("conv2d: padding must be non-negative"), std::string::npos) << e;
  e = error_of([&] { conv2d(Tensor::zeros({1, 3, 2, 2}), w, Tensor()); });
  EXPECT_NE(e.find("conv2d: kernel 3x3 is larger than the padded input 2x2"), std::string::npos) << e;
  e = error_of([&] { conv2d(x3, w, Tensor::zeros({3})); });
  EXPECT_NE(e.find("conv2d: bias has shape [3], expected [4]"), std::string::npos) << e;
  e = error_of([&] { conv2d(x3, Tensor::zeros({4, 3, 3}), Tensor()); });
  EXPECT_NE(e.find("conv2d: weight must be 4-D [O, C, kh, kw], got [4, 3, 3]"), std::string::npos) << e;
}

// ---- the direct path -----------------------------------------------------------------------------

TEST(Conv2d, EveryAlgorithmMatchesLoopOnEveryBlockingRemainder) {
  struct Case {
    Shape x, w;
    bool bias;
    Conv2dParams p;
    const char* what;
  };
  const std::vector<Case> cases{
      {{2, 16, 12, 12}, {16, 16, 3, 3}, false, Conv2dParams().padding(1), "whole register tiles"},
      {{3, 5, 9, 7}, {11, 5, 3, 3}, true, Conv2dParams().padding(1), "channel remainders in both tiles"},
      {{9, 3, 6, 10}, {19, 3, 3, 3}, true, Conv2dParams().padding(1), "two output-channel vectors, 9 images"},
      {{2, 4, 8, 8}, {6, 4, 3, 3}, false, Conv2dParams(), "no padding"},
      {{2, 3, 5, 6}, {4, 3, 3, 3}, true, Conv2dParams().padding(2), "padding kernel-1: no junk columns"},
      {{2, 2, 7, 9}, {3, 2, 5, 5}, true, Conv2dParams().padding(2), "5x5: weight gradient per tap"},
      {{3, 6, 5, 5}, {9, 6, 1, 1}, false, Conv2dParams(), "1x1"},
      {{2, 3, 6, 5}, {4, 3, 2, 4}, true, Conv2dParams().padding(1, 2), "2x4 kernel, padding (1, 2)"},
      {{1, 2, 40, 37}, {3, 2, 3, 3}, true, Conv2dParams().padding(1), "long planes: every pixel tile width"},
      {{1, 1, 3, 3}, {1, 1, 3, 3}, true, Conv2dParams().padding(1), "one channel each way"},
      {{40, 3, 5, 5}, {4, 3, 3, 3}, true, Conv2dParams().padding(1), "40 images: 5 per weight-gradient chunk"},
      {{3, 4, 9, 8}, {6, 4, 3, 3}, true, Conv2dParams().stride(2).padding(1), "stride 2, odd height"},
      {{2, 3, 7, 6}, {4, 3, 3, 3}, false, Conv2dParams().stride(2), "stride 2, no padding"},
      {{2, 3, 8, 8}, {5, 3, 1, 1}, false, Conv2dParams().stride(2), "1x1 stride 2: inputs no tap reads"},
      {{2, 2, 9, 11}, {3, 2, 2, 4}, true, Conv2dParams().stride(3, 2).padding(1, 2), "stride (3, 2) > kernel rows"},
      {{1, 2, 7, 7}, {3, 2, 5, 5}, true, Conv2dParams().stride(2).padding(4), "stride 2, padding 4 with 5x5"},
      {{2, 16, 16, 16}, {32, 16, 3, 3}, false, Conv2dParams().stride(2).padding(1), "ResNet transition"},
  };
  uint64_t seed = 300;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    for (ConvAlgo algo : {ConvAlgo::kDirect, ConvAlgo::kIm2col, ConvAlgo::kIm2colRows, ConvAlgo::kAuto}) {
      EXPECT_TRUE(conv_matches_reference(c.x, c.w, c.bias, c.p, seed, algo));
    }
    seed += 10;
  }
}

// The direct path splits work into pieces fixed by the shapes (images; chunks of images for the
// weight gradient), so its bits do not depend on the thread count either.
TEST(Conv2d, DirectIsBitIdenticalAcrossThreadCounts) {
  const Tensor x = randn({9, 16, 10, 10}, 400), w = randn({16, 16, 3, 3}, 401, 0.2f), b = randn({16}, 402);
  for (const Conv2dParams& p : {Conv2dParams().padding(1), Conv2dParams().stride(2).padding(1)}) {
    SCOPED_TRACE("stride " + std::to_string(p.stride_h));
    auto run = [&](int threads) {
      set_num_threads(threads);
      Tensor xl = x.clone().set_requires_grad(), wl = w.clone().set_requires_grad();
      Tensor bl = b.clone().set_requires_grad();
      const Tensor out = conv2d(xl, wl, bl, Conv2dParams(p).algo(ConvAlgo::kDirect));
      std::vector<Tensor> g = grad({out}, {xl, wl, bl}, GradOptions().set_seeds({randn(out.shape(), 403)}));
      g.insert(g.begin(), out);
      return g;
    };
    const std::vector<Tensor> one = run(1), two = run(2);
    set_num_threads(0);
    const char* names[4] = {"out", "dx", "dw", "db"};
    for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(bit_equal(one[i], two[i])) << names[i];
  }
}

TEST(Conv2d, DirectHandlesAnEmptyBatch) {
  Tensor x = Tensor::zeros({0, 3, 5, 5}).set_requires_grad();
  Tensor w = randn({4, 3, 3, 3}, 410).set_requires_grad();
  Tensor b = randn({4}, 411).set_requires_grad();
  const Tensor out = conv2d(x, w, b, Conv2dParams().padding(1).algo(ConvAlgo::kDirect));
  EXPECT_EQ(out.shape(), (Shape{0, 4, 5, 5}));
  const std::vector<Tensor> g = grad({sum(out)}, {x, w, b});
  EXPECT_EQ(g[0].shape(), (Shape{0, 3, 5, 5}));
  EXPECT_EQ(g[1].to_vector(), std::vector<float>(4 * 3 * 3 * 3, 0.0f));
  EXPECT_EQ(g[2].to_vector(), std::vector<float>(4, 0.0f));
}

TEST(Conv2d, DirectRefusesWhatItCannotCompute) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3});
  const std::string e = error_of([&] { conv2d(x, w, Tensor(), Conv2dParams().padding(3).algo(ConvAlgo::kDirect)); });
  EXPECT_NE(e.find("conv2d: ConvAlgo::kDirect at stride 1 needs padding smaller than the kernel"), std::string::npos)
      << e;
  EXPECT_NE(e.find("padding (3, 3) with kernel 3x3"), std::string::npos) << e;
  EXPECT_NE(e.find("kIm2col"), std::string::npos) << e;
  // The same call works on the im2col path.
  EXPECT_EQ(conv2d(x, w, Tensor(), Conv2dParams().padding(3).algo(ConvAlgo::kIm2col)).shape(), (Shape{2, 4, 12, 12}));
}
