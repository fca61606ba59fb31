// Direct convolution kernels on a zero-padded "virtual grid", for the layers where
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
// A stride > 1 splits the padded input into phase planes (see DirectConvGeom), which keeps the
// fixed-offset-per-tap property.
//
// The same forward kernel computes the input gradient: at stride 1, dX is the convolution of dY
// (padded by kh-1-ph, kw-1-pw) with the flipped, transposed weight; at larger strides each input
// phase is such a convolution with a subset of the taps (phase_weight).
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

// Geometry of one convolution image on the virtual grid: Cin planes H x W in, Cout planes Ho x Wo
// out. Stride 1 uses one padded plane per channel; a larger stride splits the padded input into
// phase planes (rows a, a + sh, ...; columns b, b + sw, ...), so that every tap again reads one
// plane at a fixed offset and the output grid is dense.
struct DirectConvGeom {
  int64_t cin = 0, cout = 0, h = 0, w = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t ho = 0, wo = 0;
  int64_t wp = 0;                      // virtual row width (row stride of the planes)
  int64_t hq = 0;                      // rows per (phase) plane
  int64_t phases_h = 1, phases_w = 1;  // phase planes per channel: phases_h x phases_w
  int64_t pv = 0;                      // virtual outputs per plane: ho*wp rounded up to the vector width
  int64_t plane = 0;                   // floats per (phase) plane, covering pv + the largest tap offset
  int64_t cstride = 0;                 // floats per input channel (all its phase planes)
  std::vector<int64_t> off;            // [kh*kw] tap offsets from a channel's first plane
  int64_t taps() const { return kh * kw; }
};

// Fills every derived field; stride 1 needs ph < kh and pw < kw (checked by the caller).
DirectConvGeom direct_conv_geom(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh,
                                int64_t sw, int64_t ph, int64_t pw);

// x [cin, h, w] -> xp [cin, cstride]: zero-padded planes. Stride 1: x[c, i, j] at
// pw + (i + ph)*wp + j (row stride wp = w + pw), zero slack at the end. Larger strides: the phase
// planes, each [hq, wp] plus slack.
void pad_planes(const float* x, float* xp, const DirectConvGeom& g);

// xp [cin, cstride], w [cout, cin, kh, kw] -> outv [cout, pv]: outv[o, p] = sum over c, ki, kj of
// w[o, c, ki, kj] * xp[c, p + off[ki*kw + kj]]. Positions with p % wp >= wo are junk.
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

// dyt [images, pv, opad], xp [images, cin, cstride] -> partial [cin, taps, opad] += sums over n and
// p of dyt[n, p, o] * xp[n, c, p + off[ki*kw + kj]] (vectorized over o).
void direct_conv_weight_grad(const float* dyt, const float* xp, int64_t images, float* partial,
                             const DirectConvGeom& g);

// partial [cin, taps, opad] -> dw [cout, cin, kh, kw], written (accumulate = false) or added.
void weight_grad_from_partial(const float* partial, float* dw, const DirectConvGeom& g, bool accumulate);

// The input gradient of a convolution with stride (sh, sw), split by the phase (a, b) of the padded
// input position (a = row % sh, b = column % sw): phase (a, b) of dX is a stride-1 convolution of
// dY (padded by ku-1, kv-1) with the taps (a + u*sh, b + v*sw) of the weight, transposed and flipped.
// Stride 1 has the single phase (0, 0) with the whole kernel.
//
// w [O, C, kh, kw] -> wt [C, O, ku, kv], ku = ceil((kh - a) / sh), kv = ceil((kw - b) / sw).
void phase_weight(const float* w, float* wt, int64_t O, int64_t C, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                  int64_t a, int64_t b);
// outv [cin, pv] (the phase convolution's output on its virtual grid `pg`) -> dx [cin, h, w]:
// output (i, j) is added at padded position (i*sh + a, j*sw + b), i.e. dx[i*sh + a - ph, j*sw + b - pw]
// when that lies inside the image.
void add_phase_outputs(const float* outv, const DirectConvGeom& pg, float* dx, int64_t h, int64_t w, int64_t sh,
                       int64_t sw, int64_t ph, int64_t pw, int64_t a, int64_t b);

}  // namespace kernels
}  // namespace scalpel
