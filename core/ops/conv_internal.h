// Internal to the conv2d op family (core/ops/conv*.cpp): the shared geometry and the three ways
// of computing a convolution. conv.cpp checks the arguments and picks one (Conv2dParams::algo, or
// from the shapes); each path keeps its forward and backward side by side in its own file:
//   conv_im2col.cpp  im2col + sgemm with channel-major columns [C*kh*kw, pixels] (large planes)
//   conv_rows.cpp    im2col + sgemm with pixel-major rows [pixels, kh*kw*C] built from an NHWC copy
//                    (small planes: every copy is a run of C floats)
//   conv_direct.cpp  the register-blocked direct kernels of core/kernels/conv_direct.h
#pragma once

#include <cstdint>

#include "core/autograd.h"
#include "core/tensor.h"

namespace scalpel {
namespace conv_detail {

// One conv2d call: batch N, C -> O channels, H x W -> Ho x Wo, kernel kh x kw, stride, padding.
struct ConvGeom {
  int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw, Ho, Wo;
  int64_t ckk() const { return C * kh * kw; }
  int64_t hw_out() const { return Ho * Wo; }
  int64_t hw_in() const { return H * W; }
};

// Images per group of the two im2col paths: about 1024 output pixels per product, at most 16 MiB
// of columns; a function of the shapes only.
int64_t group_size(const ConvGeom& g);

// db [O] = sum over n, h, w of dY [N, O, Ho*Wo] (double per channel), written or added per acc.beta.
void bias_grad(const float* dy, const ConvGeom& g, GradSink::Accum acc);

// The paths: x, weight, bias as given (for recording); xc, wc, bc their contiguous versions (bc may
// be undefined). Each returns out [N, O, Ho, Wo] and records its backward.
Tensor conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& xc, const Tensor& wc,
                     const Tensor& bc, const ConvGeom& g);
Tensor conv2d_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& xc, const Tensor& wc,
                   const Tensor& bc, const ConvGeom& g);
Tensor conv2d_direct(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& xc, const Tensor& wc,
                     const Tensor& bc, const ConvGeom& g);

}  // namespace conv_detail
}  // namespace scalpel
