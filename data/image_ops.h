// Image resampling used by the loaders: bicubic resize (our own implementation, exact to
// PyTorch's), centre crop, and float <-> byte conversion.
//
// Bicubic kernel: Keys' cubic convolution with a = -0.75, the constant PyTorch
// (F.interpolate(mode="bicubic")) and OpenCV (INTER_CUBIC) use. PIL/torchvision-on-PIL use
// a = -0.5, which rings slightly less; we follow PyTorch so that our Cifar10Mnist matches a
// PyTorch pipeline bit-for-bit up to float rounding (tests/data checks this on a fixture made with
// torch). Sampling follows align_corners=False: output pixel o samples the input at
// (o + 0.5) * in/out - 0.5, and the 4 taps are clamped to the border (edge replication).
//
// Downscaling with `antialias` widens the kernel by the scale factor, drops taps outside the image
// and renormalises the weights, with a = -0.5: exactly torch's antialias=True (which follows PIL).
// It avoids aliasing when an image folder holds large pictures. Upscaling ignores `antialias`.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace scalpel {
namespace data {

// The cubic convolution kernel W(x) with parameter a (default -0.75).
double cubic_kernel(double x, double a = -0.75);

// Per-output-index taps along one axis: output o = sum_k weight[o*taps + k] * in[index[o*taps + k]].
struct ResampleAxis {
  int64_t in_size = 0, out_size = 0, taps = 0;
  std::vector<int64_t> index;
  std::vector<float> weight;
};
ResampleAxis bicubic_axis(int64_t in_size, int64_t out_size, bool antialias = false);

// src [C, H, W] -> dst [C, Ho, Wo], separable (rows first, then columns).
void resize_bicubic(const float* src, int64_t c, int64_t h, int64_t w, float* dst, int64_t ho, int64_t wo,
                    bool antialias = false);
// Same with precomputed axes (ay: H -> Ho, ax: W -> Wo); `scratch` is resized as needed.
void resize_bicubic(const float* src, int64_t c, const ResampleAxis& ay, const ResampleAxis& ax, float* dst,
                    std::vector<float>& scratch);
// x [C, H, W] or [H, W] -> same rank with the last two dims (ho, wo).
Tensor resize_bicubic(const Tensor& x, int64_t ho, int64_t wo, bool antialias = false);

// Bytes [C, H, W] -> the centre [C, ch, cw] window (ch <= H, cw <= W); odd margins put the extra
// row/column at the bottom/right, like torchvision's CenterCrop.
std::vector<uint8_t> center_crop(const std::vector<uint8_t>& src, int64_t c, int64_t h, int64_t w, int64_t ch,
                                 int64_t cw);

// Rounds a float in [0, 255] scale to a byte: clamp to [0, 255], then round half away from zero.
inline uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;  // also maps NaN to 0
  if (v >= 255.0f) return 255;
  return static_cast<uint8_t>(v + 0.5f);
}

}  // namespace data
}  // namespace scalpel
