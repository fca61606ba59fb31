// Direct stride-1 convolution kernels on a zero-padded "virtual grid", for the layers where
// im2col + sgemm is slow: few channels (ResNet-18 at width 16 has 16-128), where the GEMM has a
// skinny dimension and the im2col/col2im copies cost as much as the products.
//
// The idea: copy each input channel into a zero-padded plane with row stride Wp = W + pw (the pw
// zero columns after a row serve as its right padding and as the next row's left padding). An
// output pixel (oh, ow) sits at virtual position p = oh*Wp + ow, and its tap (ki, kj) reads the
// plane at p + ki*Wp + kj, one fixed offset per tap for every pixel. So a run of consecutive p is a
// plain vector load per tap, with no bounds checks; the Wp - Wo "junk" columns per row are computed
// and thrown away. The kernels keep a block of output channels x pixel vectors in registers
// (GCC vector extensions, 16 lanes with AVX-512, 8 with AVX, 4 otherwise) and stream the taps.
//
// The same forward kernel computes the input gradient of a stride-1 convolution: dX is the
// convolution of dY (padded by kh-1-ph, kw-1-pw) with the flipped, transposed weight.
// The weight gradient sums dY (transposed to pixel-major rows on the virtual grid, zero in the junk
// columns) times the shifted input, vectorized over output channels; partial sums are kept per
// fixed chunk of images and added in chunk order, so results never depend on the thread count.
//
// Data only, no autograd: core/ops/conv.cpp wraps these into the conv2d op.
#pragma once

#include <cstdint>
#include <vector>

namespace scalpel {
namespace kernels {

// Geometry of one stride-1 convolution image: Cin planes H x W in, Cout planes Ho x Wo out.
struct DirectConvGeom {
  int64_t cin = 0, cout = 0, h = 0, w = 0, kh = 0, kw = 0, ph = 0, pw = 0;
  int64_t hp = 0, wp = 0, ho = 0, wo = 0;
  int64_t pv = 0;     // virtual outputs per plane: ho*wp rounded up to the vector width
  int64_t plane = 0;  // floats per padded input plane (covers pv + the largest tap offset)
  int64_t taps() const { return kh * kw; }
};

// Vector width in floats of the compiled kernels (16, 8 or 4).
int64_t direct_conv_lanes();

// Fills every derived field; stride 1, ph < kh, pw < kw (checked by the caller).
DirectConvGeom direct_conv_geom(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t ph,
                                int64_t pw);

// x [cin, h, w] -> xp [cin, plane]: zero-padded planes (row stride wp = w + pw; x[c, i, j] at
// pw + (i + ph)*wp + j), zero slack at the end.
void pad_planes(const float* x, float* xp, const DirectConvGeom& g);

// xp [cin, plane], w [cout, cin, kh, kw] -> outv [cout, pv]: outv[o, p] = sum over c, ki, kj of
// w[o, c, ki, kj] * xp[c, p + ki*wp + kj]. Positions with p % wp >= wo are junk.
void direct_conv_forward(const float* xp, const float* w, float* outv, const DirectConvGeom& g);

// outv [cout, pv] -> out [cout, ho, wo]: the valid columns, plus bias[o] when bias is not null;
// written (accumulate = false) or added (accumulate = true).
void unpad_outputs(const float* outv, const float* bias, float* out, const DirectConvGeom& g, bool accumulate);

// Output channels rounded up to the vector width: the row length of the transposed dY and of the
// weight-gradient partial sums.
int64_t padded_out_channels(const DirectConvGeom& g);

// dy [cout, ho, wo] -> dyt [pv, opad]: dY transposed to pixel-major rows on the virtual grid, zero
// in the junk columns, the tail and the padded channels.
void place_on_grid_t(const float* dy, float* dyt, const DirectConvGeom& g);

// dyt [images, pv, opad], xp [images, cin, plane] -> partial [cin, taps, opad] += sums over n and p
// of dyt[n, p, o] * xp[n, c, p + ki*wp + kj] (vectorized over o).
void direct_conv_weight_grad(const float* dyt, const float* xp, int64_t images, float* partial,
                             const DirectConvGeom& g);

// partial [cin, taps, opad] -> dw [cout, cin, kh, kw], written (accumulate = false) or added.
void weight_grad_from_partial(const float* partial, float* dw, const DirectConvGeom& g, bool accumulate);

// w [O, C, kh, kw] -> wt [C, O, kh, kw] flipped in both spatial dims: the weight that turns dY into dX.
void flip_transpose_weight(const float* w, float* wt, int64_t O, int64_t C, int64_t kh, int64_t kw);

}  // namespace kernels
}  // namespace scalpel
