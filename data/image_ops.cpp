#include "data/image_ops.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace scalpel {
namespace data {

double cubic_kernel(double x, double a) {
  x = std::fabs(x);
  if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

ResampleAxis bicubic_axis(int64_t in_size, int64_t out_size, bool antialias) {
  if (in_size <= 0 || out_size <= 0) {
    throw std::invalid_argument("resize_bicubic: sizes must be positive, got " + std::to_string(in_size) + " -> " +
                                std::to_string(out_size));
  }
  ResampleAxis ax;
  ax.in_size = in_size;
  ax.out_size = out_size;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  if (!antialias || scale <= 1.0) {
    // PyTorch upsample_bicubic2d, align_corners=False: 4 taps, indices clamped to the border.
    ax.taps = 4;
    ax.index.resize(static_cast<size_t>(out_size * 4));
    ax.weight.resize(static_cast<size_t>(out_size * 4));
    for (int64_t o = 0; o < out_size; ++o) {
      const double real = scale * (static_cast<double>(o) + 0.5) - 0.5;
      const double fl = std::floor(real);
      const double t = real - fl;
      const int64_t i0 = static_cast<int64_t>(fl);
      const double w[4] = {cubic_kernel(t + 1.0), cubic_kernel(t), cubic_kernel(1.0 - t), cubic_kernel(2.0 - t)};
      for (int64_t k = 0; k < 4; ++k) {
        ax.index[static_cast<size_t>(o * 4 + k)] = std::min(std::max<int64_t>(i0 - 1 + k, 0), in_size - 1);
        ax.weight[static_cast<size_t>(o * 4 + k)] = static_cast<float>(w[k]);
      }
    }
    return ax;
  }
  // Antialiased downscaling: the kernel is stretched by `scale`, taps outside the image are
  // dropped and the remaining weights renormalised.
  const double support = 2.0 * scale;
  ax.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  ax.index.assign(static_cast<size_t>(out_size * ax.taps), 0);
  ax.weight.assign(static_cast<size_t>(out_size * ax.taps), 0.0f);
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = scale * (static_cast<double>(o) + 0.5);
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size);
    std::vector<double> w;
    double total = 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      const double v = cubic_kernel((static_cast<double>(j) - center + 0.5) / scale, -0.5);
      w.push_back(v);
      total += v;
    }
    for (int64_t k = 0; k < static_cast<int64_t>(w.size()) && k < ax.taps; ++k) {
      ax.index[static_cast<size_t>(o * ax.taps + k)] = lo + k;
      ax.weight[static_cast<size_t>(o * ax.taps + k)] =
          static_cast<float>(total != 0.0 ? w[static_cast<size_t>(k)] / total : 0.0);
    }
    for (int64_t k = static_cast<int64_t>(w.size()); k < ax.taps; ++k) {
      ax.index[static_cast<size_t>(o * ax.taps + k)] = std::min(lo, in_size - 1);  // weight 0
    }
  }
  return ax;
}

// src [C, H, W] -> tmp [C, H, Wo] (along W) -> dst [C, Ho, Wo] (along H)
void resize_bicubic(const float* src, int64_t c, const ResampleAxis& ay, const ResampleAxis& ax, float* dst,
                    std::vector<float>& scratch) {
  const int64_t h = ay.in_size, w = ax.in_size, ho = ay.out_size, wo = ax.out_size;
  scratch.resize(static_cast<size_t>(c * h * wo));
  float* tmp = scratch.data();
  for (int64_t r = 0; r < c * h; ++r) {
    const float* in = src + r * w;
    float* out = tmp + r * wo;
    for (int64_t o = 0; o < wo; ++o) {
      const int64_t* idx = ax.index.data() + o * ax.taps;
      const float* wt = ax.weight.data() + o * ax.taps;
      float acc = 0.0f;
      for (int64_t k = 0; k < ax.taps; ++k) acc += wt[k] * in[idx[k]];
      out[o] = acc;
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* in = tmp + ch * h * wo;
    float* out = dst + ch * ho * wo;
    for (int64_t o = 0; o < ho; ++o) {
      const int64_t* idx = ay.index.data() + o * ay.taps;
      const float* wt = ay.weight.data() + o * ay.taps;
      float* row = out + o * wo;
      std::fill(row, row + wo, 0.0f);
      for (int64_t k = 0; k < ay.taps; ++k) {
        const float* srow = in + idx[k] * wo;
        const float wk = wt[k];
        for (int64_t x = 0; x < wo; ++x) row[x] += wk * srow[x];
      }
    }
  }
}

void resize_bicubic(const float* src, int64_t c, int64_t h, int64_t w, float* dst, int64_t ho, int64_t wo,
                    bool antialias) {
  const ResampleAxis ay = bicubic_axis(h, ho, antialias);
  const ResampleAxis ax = bicubic_axis(w, wo, antialias);
  std::vector<float> scratch;
  resize_bicubic(src, c, ay, ax, dst, scratch);
}

Tensor resize_bicubic(const Tensor& x, int64_t ho, int64_t wo, bool antialias) {
  if (x.dim() != 2 && x.dim() != 3) {
    throw std::invalid_argument("resize_bicubic: expects [C, H, W] or [H, W], got " + shape_str(x.shape()));
  }
  const Tensor c = x.contiguous();
  const int64_t ch = x.dim() == 3 ? x.size(0) : 1;
  Shape out_shape = x.shape();
  out_shape[out_shape.size() - 2] = ho;
  out_shape[out_shape.size() - 1] = wo;
  Tensor out = Tensor::empty(out_shape);
  resize_bicubic(c.data(), ch, x.size(-2), x.size(-1), out.data(), ho, wo, antialias);
  return out;
}

std::vector<uint8_t> center_crop(const std::vector<uint8_t>& src, int64_t c, int64_t h, int64_t w, int64_t ch,
                                 int64_t cw) {
  if (ch > h || cw > w || ch <= 0 || cw <= 0) {
    throw std::invalid_argument("center_crop: window " + std::to_string(ch) + "x" + std::to_string(cw) +
                                " does not fit in a " + std::to_string(h) + "x" + std::to_string(w) + " image");
  }
  const int64_t top = (h - ch) / 2, left = (w - cw) / 2;
  std::vector<uint8_t> out(static_cast<size_t>(c * ch * cw));
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t y = 0; y < ch; ++y) {
      const uint8_t* s = src.data() + (k * h + top + y) * w + left;
      std::copy(s, s + cw, out.begin() + (k * ch + y) * cw);
    }
  }
  return out;
}

}  // namespace data
}  // namespace scalpel
