// conv2d: argument checks and the choice of algorithm (Conv2dParams::algo, or from the shapes alone
// with ConvAlgo::kAuto, so the same shapes always take the same path). The paths live next door,
// each with its forward and backward side by side (see core/ops/conv_internal.h):
//   im2col + sgemm, channel-major columns   conv_im2col.cpp
//   im2col + sgemm, pixel-major rows         conv_rows.cpp
//   direct register-blocked kernels          conv_direct.cpp
#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/kernels/sums.h"
#include "core/ops.h"
#include "core/ops/conv_internal.h"
#include "core/parallel.h"

namespace scalpel {

namespace conv_detail {

namespace {
constexpr int64_t kTargetColumns = 1024;       // output pixels per group product (G * Ho * Wo)
constexpr int64_t kMaxColumnFloats = 1 << 22;  // 16 MiB cap on a group's columns when G > 1
}  // namespace

// Images per group: enough columns for an efficient product, bounded memory, a function of the
// shapes only.
int64_t group_size(const ConvGeom& g) {
  const int64_t hw = std::max<int64_t>(g.hw_out(), 1);
  int64_t G = std::min<int64_t>(std::max<int64_t>(g.N, 1), (kTargetColumns + hw - 1) / hw);
  while (G > 1 && g.ckk() * G * hw > kMaxColumnFloats) --G;
  return std::max<int64_t>(G, 1);
}

// db [O] = sum over n, h, w of dY [N, O, HoWo] (double per channel), written or added per beta.
void bias_grad(const float* pg, const ConvGeom& g, GradSink::Accum acc) {
  const int64_t hw = g.hw_out();
  parallel_for(g.O, 8, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      double sum = 0.0;
      for (int64_t n = 0; n < g.N; ++n) sum += kernels::row_sum(pg + (n * g.O + o) * hw, hw);
      acc.data[o] = static_cast<float>(sum) + (acc.beta == 0.0f ? 0.0f : acc.data[o]);
    }
  });
}

}  // namespace conv_detail

namespace {

using conv_detail::ConvGeom;

// Direct path (auto choice): C*kh*kw within [kDirectMinCkk, kDirectMaxCkk], at most kDirectMaxOut
// output channels, output rows at least kDirectMinWidth wide (kDirectMinWidthStrided when strided).
constexpr int64_t kDirectMinCkk = 64;
constexpr int64_t kDirectMaxCkk = 1152;
constexpr int64_t kDirectMaxOut = 128;
constexpr int64_t kDirectMinWidth = 8;
constexpr int64_t kDirectMinWidthStrided = 16;
// im2col with pixel-major rows (auto choice): output rows at most kRowsMaxWidth wide, at least
// kRowsMinChannels input channels.
constexpr int64_t kRowsMaxWidth = 16;
constexpr int64_t kRowsMinChannels = 32;

void check_conv_args(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  if (!x.defined()) throw std::invalid_argument("conv2d: the input is undefined");
  if (!weight.defined()) throw std::invalid_argument("conv2d: the weight is undefined");
  if (x.dim() != 4) {
    throw std::invalid_argument("conv2d: input must be 4-D [N, C, H, W], got " + shape_str(x.shape()) +
                                " (add a batch dimension with unsqueeze(0) for a single image)");
  }
  if (weight.dim() != 4) {
    throw std::invalid_argument("conv2d: weight must be 4-D [O, C, kh, kw], got " + shape_str(weight.shape()));
  }
  if (x.size(1) != weight.size(1)) {
    throw std::invalid_argument("conv2d: input " + shape_str(x.shape()) + " has " + std::to_string(x.size(1)) +
                                " channels but weight " + shape_str(weight.shape()) + " expects " +
                                std::to_string(weight.size(1)) + " (weight is [O, C, kh, kw])");
  }
  if (weight.size(1) <= 0 || weight.size(0) <= 0 || weight.size(2) <= 0 || weight.size(3) <= 0) {
    throw std::invalid_argument("conv2d: weight " + shape_str(weight.shape()) +
                                " must have positive out/in channels and kernel sizes");
  }
  if (bias.defined() && bias.shape() != Shape{weight.size(0)}) {
    throw std::invalid_argument("conv2d: bias has shape " + shape_str(bias.shape()) + ", expected [" +
                                std::to_string(weight.size(0)) + "] to match weight " + shape_str(weight.shape()));
  }
  if (p.stride_h <= 0 || p.stride_w <= 0) {
    throw std::invalid_argument("conv2d: stride must be positive, got (" + std::to_string(p.stride_h) + ", " +
                                std::to_string(p.stride_w) + ")");
  }
  if (p.pad_h < 0 || p.pad_w < 0) {
    throw std::invalid_argument("conv2d: padding must be non-negative, got (" + std::to_string(p.pad_h) + ", " +
                                std::to_string(p.pad_w) + ")");
  }
  const int64_t hp = x.size(2) + 2 * p.pad_h, wp = x.size(3) + 2 * p.pad_w;
  if (hp < weight.size(2) || wp < weight.size(3)) {
    throw std::invalid_argument("conv2d: kernel " + std::to_string(weight.size(2)) + "x" +
                                std::to_string(weight.size(3)) + " is larger than the padded input " +
                                std::to_string(hp) + "x" + std::to_string(wp) + " (input " + shape_str(x.shape()) +
                                ", padding (" + std::to_string(p.pad_h) + ", " + std::to_string(p.pad_w) + "))");
  }
}

// The direct path handles any stride; at stride 1 the padding must be smaller than the kernel (so
// that dX is again a valid convolution of dY).
bool direct_applicable(const ConvGeom& g) { return (g.sh > 1 || g.sw > 1) || (g.ph < g.kh && g.pw < g.kw); }

// Auto choice, from the shapes only (measured with bench_conv and inside the ResNet-18 step): the
// direct kernels win while the channel counts are small and the output rows are wide enough that
// the padded grid wastes little; strided layers need wider rows (kDirectMinWidthStrided), since
// their input gradient runs one small convolution per phase. 1x1 kernels stay on im2col.
bool prefer_direct(const ConvGeom& g) {
  if (!direct_applicable(g) || g.kh * g.kw == 1) return false;
  const int64_t ckk = g.ckk();
  const int64_t min_width = (g.sh == 1 && g.sw == 1) ? kDirectMinWidth : kDirectMinWidthStrided;
  return ckk >= kDirectMinCkk && ckk <= kDirectMaxCkk && g.O <= kDirectMaxOut && g.Wo >= min_width;
}

// Auto choice between the two im2col layouts: pixel-major rows once the output rows are narrow
// (channel-major columns would be assembled from short runs) and the channel runs of the rows are
// long; 1x1 kernels unfold nothing and stay on columns.
bool prefer_rows(const ConvGeom& g) { return g.Wo <= kRowsMaxWidth && g.C >= kRowsMinChannels && g.kh * g.kw > 1; }

}  // namespace

// x [N, C, H, W], weight [O, C, kh, kw], bias [O] or undefined -> out [N, O, Ho, Wo]
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  check_conv_args(x, weight, bias, p);
  conv_detail::ConvGeom g{};
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.O = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = p.stride_h, g.sw = p.stride_w, g.ph = p.pad_h, g.pw = p.pad_w;
  g.Ho = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  const Tensor xc = x.contiguous();
  const Tensor wc = weight.contiguous();
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  if (p.algorithm == ConvAlgo::kDirect && !direct_applicable(g)) {
    throw std::invalid_argument(
        "conv2d: ConvAlgo::kDirect at stride 1 needs padding smaller than the kernel, got "
        "padding (" +
        std::to_string(g.ph) + ", " + std::to_string(g.pw) + ") with kernel " + std::to_string(g.kh) + "x" +
        std::to_string(g.kw) + " (use ConvAlgo::kAuto or kIm2col)");
  }
  if (p.algorithm == ConvAlgo::kDirect || (p.algorithm == ConvAlgo::kAuto && prefer_direct(g))) {
    g.path = ConvAlgo::kDirect;
    return conv_detail::conv2d_direct(x, weight, bias, xc, wc, bc, g);
  }
  if (p.algorithm == ConvAlgo::kIm2colRows || (p.algorithm == ConvAlgo::kAuto && prefer_rows(g))) {
    g.path = ConvAlgo::kIm2colRows;
    return conv_detail::conv2d_rows(x, weight, bias, xc, wc, bc, g);
  }
  g.path = ConvAlgo::kIm2col;
  return conv_detail::conv2d_im2col(x, weight, bias, xc, wc, bc, g);
}

}  // namespace scalpel
