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
#include "core/ops.h"
#include "core/tensor.h"

namespace scalpel {
namespace conv_detail {

// One conv2d call: batch N, C -> O channels, H x W -> Ho x Wo, kernel kh x kw, stride, padding.
struct ConvGeom {
  int64_t N, C, H, W, O, kh, kw, sh, sw, ph, pw, Ho, Wo;
  ConvAlgo path;  // the path conv2d took (never kAuto): create_graph sweeps reuse it
  int64_t ckk() const { return C * kh * kw; }
  int64_t hw_out() const { return Ho * Wo; }
  int64_t hw_in() const { return H * W; }
};

// Images per group of the two im2col paths: about 1024 output pixels per product, at most 16 MiB
// of columns; a function of the shapes only.
int64_t group_size(const ConvGeom& g);

// db [O] = sum over n, h, w of dY [N, O, Ho*Wo] (double per channel), written or added per acc.beta.
void bias_grad(const float* dy, const ConvGeom& g, GradSink::Accum acc);

// The first-order products of the im2col and direct paths on raw contiguous buffers, overwriting
// their output: dW [O, C, kh, kw] from x [N, C, H, W] and dY [N, O, Ho, Wo]; dX [N, C, H, W] from
// W and dY. (The pixel-major rows path shares one pass for both; create_graph uses im2col there.)
void im2col_weight_grad_into(const float* x, const float* dy, const ConvGeom& g, float* dw);
void im2col_input_grad_into(const float* w, const float* dy, const ConvGeom& g, float* dx);
void direct_weight_grad_into(const float* x, const float* dy, const ConvGeom& g, float* dw);
void direct_input_grad_into(const float* w, const float* dy, const ConvGeom& g, float* dx);

// The backward of every path in a create_graph sweep (conv_grad.cpp): dX, dW and db as recorded
// ops, conv2d_input_grad(dY, W) and conv2d_weight_grad(X, dY), which differentiate again into
// conv2d and each other (a convolution is bilinear), so any order works.
void backward_graph(const Tensor& grad_out, const SavedTensor& sx, const SavedTensor& sw, const ConvGeom& g,
                    GradSink& s);
Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const ConvGeom& g);
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const ConvGeom& g);

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
