// conv2d by im2col + sgemm (core/kernels/gemm.h: OpenBLAS or the own AVX-512 kernel) with channel-major columns,
// forward and backward side by side.
//
// The batch is processed in groups of G images. For each group the input patches are unfolded
// (im2col, parallel over image x channel) into one column matrix col [C*kh*kw, G*Ho*Wo], and the
// whole group is a single sgemm, W [O, C*kh*kw] · col -> [O, G*Ho*Wo], which OpenBLAS runs on all
// threads. G comes from group_size (the shapes alone, never the thread count): about 1024 columns
// per product (skinny late-ResNet layers get big enough products) with the column buffer under
// 16 MiB; results are therefore the same for a given thread count.
// The column buffer and the group's output block are allocated once per call and reused by every
// group. Backward recomputes the columns instead of saving them (they are kh*kw times the input):
//   dW [O, CKK]  += dY_g [O, G*HoWo] · col_gᵀ   (sgemm, beta = 1 after the first group / existing grad)
//   dcol         =  Wᵀ [CKK, O] · dY_g          then col2im adds dcol back into dX (parallel over n, c)
//   db [O]       += sum of dY over n, h, w      (double accumulation per channel)

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/kernels/loops.h"
#include "core/ops.h"
#include "core/ops/conv_internal.h"

namespace scalpel {
namespace conv_detail {

namespace {

// Output rows at most this wide use tap tables for im2col/col2im (see TapTable).
constexpr int64_t kTableMaxWidth = 16;

// First output index o with o * s + off >= 0, and one past the last with o * s + off < size,
// clamped to [0, n_out]: the outputs whose input tap (o * s + off) is inside [0, size).
inline void valid_range(int64_t off, int64_t s, int64_t size, int64_t n_out, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = size - 1 - off < 0 ? 0 : (size - 1 - off) / s + 1;
  lo = std::min(lo, n_out);
  hi = std::max(lo, std::min(hi, n_out));
}

// x [C, H, W] (one image) -> col rows [c*kh*kw, (c+1)*kh*kw) of a [CKK, ld] matrix, this image's
// Ho*Wo columns starting at `col` (already offset to the image's column block). Zero padding.
void im2col_channel(const float* x, float* col, int64_t ld, const ConvGeom& g, int64_t c) {
  const float* xc = x + c * g.hw_in();
  for (int64_t ki = 0; ki < g.kh; ++ki) {
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      float* row = col + ((c * g.kh + ki) * g.kw + kj) * ld;
      int64_t ow_lo, ow_hi;
      valid_range(kj - g.pw, g.sw, g.W, g.Wo, ow_lo, ow_hi);
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        float* d = row + oh * g.Wo;
        const int64_t ih = oh * g.sh - g.ph + ki;
        if (ih < 0 || ih >= g.H) {
          std::memset(d, 0, static_cast<size_t>(g.Wo) * sizeof(float));
          continue;
        }
        const float* src = xc + ih * g.W;  // tap of output column ow: src[ow * sw + off]
        const int64_t off = kj - g.pw;
        for (int64_t ow = 0; ow < ow_lo; ++ow) d[ow] = 0.0f;
        if (g.sw == 1) {
          if (ow_hi > ow_lo)
            std::memcpy(d + ow_lo, src + ow_lo + off, static_cast<size_t>(ow_hi - ow_lo) * sizeof(float));
        } else {
          for (int64_t ow = ow_lo; ow < ow_hi; ++ow) d[ow] = src[ow * g.sw + off];
        }
        for (int64_t ow = ow_hi; ow < g.Wo; ++ow) d[ow] = 0.0f;
      }
    }
  }
}

// col rows of channel c (one image's column block, leading dimension ld) -> dx [C, H, W] channel c,
// ADDED (dx must be initialised). Inverse scatter of im2col_channel; serial, fixed order.
void col2im_channel(const float* col, int64_t ld, float* dx, const ConvGeom& g, int64_t c) {
  float* dxc = dx + c * g.hw_in();
  for (int64_t ki = 0; ki < g.kh; ++ki) {
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const float* row = col + ((c * g.kh + ki) * g.kw + kj) * ld;
      int64_t ow_lo, ow_hi;
      valid_range(kj - g.pw, g.sw, g.W, g.Wo, ow_lo, ow_hi);
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t ih = oh * g.sh - g.ph + ki;
        if (ih < 0 || ih >= g.H) continue;
        const float* s = row + oh * g.Wo;
        float* dst = dxc + ih * g.W;
        const int64_t off = kj - g.pw;
        if (g.sw == 1) {
          for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow + off] += s[ow];
        } else {
          for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow * g.sw + off] += s[ow];
        }
      }
    }
  }
}

// For small output planes, im2col and col2im spend their time on rows of a few floats. There, a
// per-call table gives, for every tap and output pixel, the offset into a zero-bordered copy of the
// channel plane (H + 2ph) x (W + 2pw), so both become one gather / scatter loop per tap. Without
// padding the offsets point into the channel plane itself and nothing is copied.
struct TapTable {
  int64_t hp = 0, wp = 0;
  bool bordered = false;     // padding > 0: offsets into a bordered copy
  std::vector<int32_t> idx;  // [kh*kw, Ho*Wo]
  bool used() const { return !idx.empty(); }
  int64_t scratch() const { return bordered ? hp * wp : 0; }
};

TapTable make_tap_table(const ConvGeom& g) {
  TapTable t;
  if (g.Wo > kTableMaxWidth) return t;
  t.hp = g.H + 2 * g.ph, t.wp = g.W + 2 * g.pw;
  t.bordered = g.ph > 0 || g.pw > 0;
  t.idx.resize(static_cast<size_t>(g.kh * g.kw * g.hw_out()));
  size_t i = 0;
  for (int64_t ki = 0; ki < g.kh; ++ki) {
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        for (int64_t ow = 0; ow < g.Wo; ++ow)
          t.idx[i++] = static_cast<int32_t>((oh * g.sh + ki) * t.wp + ow * g.sw + kj);
      }
    }
  }
  return t;
}

// x [C, H, W] channel c -> buf [hp, wp] with a zero border.
void border_plane(const float* x, float* buf, const ConvGeom& g, const TapTable& t, int64_t c) {
  std::fill(buf, buf + t.hp * t.wp, 0.0f);
  const float* xc = x + c * g.hw_in();
  for (int64_t i = 0; i < g.H; ++i) std::memcpy(buf + (i + g.ph) * t.wp + g.pw, xc + i * g.W, g.W * sizeof(float));
}

// im2col_channel through the table (buf: scratch of hp*wp floats when bordered).
void im2col_channel_table(const float* x, float* col, int64_t ld, const ConvGeom& g, int64_t c, const TapTable& t,
                          float* buf) {
  const float* src = x + c * g.hw_in();
  if (t.bordered) {
    border_plane(x, buf, g, t, c);
    src = buf;
  }
  const int64_t hw = g.hw_out(), taps = g.kh * g.kw;
  for (int64_t k = 0; k < taps; ++k) {
    float* row = col + (c * taps + k) * ld;
    const int32_t* idx = t.idx.data() + k * hw;
    for (int64_t q = 0; q < hw; ++q) row[q] = src[idx[q]];
  }
}

// col2im_channel through the table: scatter-add into a zeroed bordered buffer, then add its
// interior into dx channel c (taps and pixels in a fixed order).
void col2im_channel_table(const float* col, int64_t ld, float* dx, const ConvGeom& g, int64_t c, const TapTable& t,
                          float* buf) {
  const int64_t hw = g.hw_out(), taps = g.kh * g.kw;
  float* dxc = dx + c * g.hw_in();
  if (!t.bordered) {  // straight into dx, in the same order
    for (int64_t k = 0; k < taps; ++k) {
      const float* row = col + (c * taps + k) * ld;
      const int32_t* idx = t.idx.data() + k * hw;
      for (int64_t q = 0; q < hw; ++q) dxc[idx[q]] += row[q];
    }
    return;
  }
  std::fill(buf, buf + t.hp * t.wp, 0.0f);
  for (int64_t k = 0; k < taps; ++k) {
    const float* row = col + (c * taps + k) * ld;
    const int32_t* idx = t.idx.data() + k * hw;
    for (int64_t q = 0; q < hw; ++q) buf[idx[q]] += row[q];
  }
  for (int64_t i = 0; i < g.H; ++i) {
    const float* s = buf + (i + g.ph) * t.wp + g.pw;
    float* d = dxc + i * g.W;
    for (int64_t j = 0; j < g.W; ++j) d[j] += s[j];
  }
}

// Images [n0, n0+gc) of x [N, C, H, W] -> col [CKK, gc*HoWo] (parallel over image x channel).
void im2col_group(const float* x, float* col, const ConvGeom& g, const TapTable& tab, int64_t n0, int64_t gc) {
  const int64_t ld = gc * g.hw_out();
  const int64_t per_task = std::max<int64_t>(1, g.kh * g.kw * g.hw_out());
  parallel_for(gc * g.C, std::max<int64_t>(1, kernels::kGrain / per_task), [&](int64_t t0, int64_t t1) {
    std::vector<float> buf(static_cast<size_t>(tab.scratch()));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j = t / g.C, c = t % g.C;
      const float* xi = x + (n0 + j) * g.C * g.hw_in();
      if (tab.used()) {
        im2col_channel_table(xi, col + j * g.hw_out(), ld, g, c, tab, buf.data());
      } else {
        im2col_channel(xi, col + j * g.hw_out(), ld, g, c);
      }
    }
  });
}

// dY images [n0, n0+gc) of [N, O, HoWo] as an [O, gc*HoWo] matrix: a pointer into dY itself when
// gc == 1, else gathered into `buf`. Returns the matrix and sets its leading dimension.
const float* gather_group(const float* dy, float* buf, const ConvGeom& g, int64_t n0, int64_t gc, int64_t& ld) {
  const int64_t hw = g.hw_out();
  if (gc == 1) {
    ld = hw;
    return dy + n0 * g.O * hw;
  }
  ld = gc * hw;
  parallel_for(gc * g.O, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(hw, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j = t / g.O, o = t % g.O;
      std::memcpy(buf + o * ld + j * hw, dy + ((n0 + j) * g.O + o) * hw, static_cast<size_t>(hw) * sizeof(float));
    }
  });
  return buf;
}

// dW [O, CKK] (+)= sum over groups of dY_g [O, gc*HoWo] · col_gᵀ, written or added per acc.beta.
void weight_grad(const float* x, const float* dy, const ConvGeom& g, const TapTable& tab, int64_t G,
                 GradSink::Accum acc) {
  const int64_t hw = g.hw_out(), ckk = g.ckk();
  if (g.N == 0) {  // empty batch: the weight gradient is zero
    if (acc.beta == 0.0f) kernels::fill(acc.data, g.O * ckk, 0.0f);
    return;
  }
  Tensor gbuf = G > 1 ? make_tensor({g.O * G * hw}) : Tensor();  // gathered dY of a group
  Tensor col = make_tensor({ckk * G * hw});
  float beta = acc.beta;
  for (int64_t n0 = 0; n0 < g.N; n0 += G) {
    const int64_t gc = std::min(G, g.N - n0);
    im2col_group(x, col.data(), g, tab, n0, gc);
    int64_t ldg = 0;
    const float* dyg = gather_group(dy, G > 1 ? gbuf.data() : nullptr, g, n0, gc, ldg);
    kernels::sgemm(false, true, g.O, ckk, gc * hw, 1.0f, dyg, ldg, col.data(), gc * hw, beta, acc.data, ckk);
    beta = 1.0f;
  }
}

// dX [N, C, H, W] (+)= col2im(Wᵀ [CKK, O] · dY_g) per group, written or added per acc.beta; N > 0.
void input_grad(const float* w, const float* dy, const ConvGeom& g, const TapTable& tab, int64_t G,
                GradSink::Accum acc) {
  const int64_t hw = g.hw_out(), ckk = g.ckk();
  Tensor gbuf = G > 1 ? make_tensor({g.O * G * hw}) : Tensor();
  Tensor col = make_tensor({ckk * G * hw});
  const bool fresh = acc.beta == 0.0f;
  for (int64_t n0 = 0; n0 < g.N; n0 += G) {
    const int64_t gc = std::min(G, g.N - n0), ld = gc * hw;
    int64_t ldg = 0;
    const float* dyg = gather_group(dy, G > 1 ? gbuf.data() : nullptr, g, n0, gc, ldg);
    kernels::sgemm(true, false, ckk, ld, g.O, 1.0f, w, ckk, dyg, ldg, 0.0f, col.data(), ld);
    const int64_t per_task = std::max<int64_t>(1, g.kh * g.kw * hw);
    parallel_for(gc * g.C, std::max<int64_t>(1, kernels::kGrain / per_task), [&](int64_t t0, int64_t t1) {
      std::vector<float> buf(static_cast<size_t>(tab.scratch()));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t j = t / g.C, c = t % g.C;
        float* dx = acc.data + (n0 + j) * g.C * g.hw_in();
        if (fresh) std::memset(dx + c * g.hw_in(), 0, static_cast<size_t>(g.hw_in()) * sizeof(float));
        if (tab.used()) {
          col2im_channel_table(col.data() + j * hw, ld, dx, g, c, tab, buf.data());
        } else {
          col2im_channel(col.data() + j * hw, ld, dx, g, c);
        }
      }
    });
  }
}

}  // namespace

void im2col_weight_grad_into(const float* x, const float* dy, const ConvGeom& g, float* dw) {
  weight_grad(x, dy, g, make_tap_table(g), group_size(g), {dw, 0.0f, Tensor()});
}

void im2col_input_grad_into(const float* w, const float* dy, const ConvGeom& g, float* dx) {
  if (g.N > 0) input_grad(w, dy, g, make_tap_table(g), group_size(g), {dx, 0.0f, Tensor()});
}

// x [N, C, H, W], weight [O, C, kh, kw], bias [O] or undefined -> out [N, O, Ho, Wo]
Tensor conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& xc, const Tensor& wc,
                     const Tensor& bc, const ConvGeom& g) {
  Tensor out = make_tensor({g.N, g.O, g.Ho, g.Wo});
  const int64_t G = group_size(g), hw = g.hw_out(), ckk = g.ckk();
  const auto tab = std::make_shared<const TapTable>(make_tap_table(g));
  // One group's columns at a time: keeping the whole batch's columns for the weight gradient was
  // measured slower in a ResNet step (they no longer stay in cache) than recomputing them.
  Tensor col = g.N > 0 ? make_tensor({ckk * G * hw}) : Tensor();

  if (g.N > 0) {
    Tensor block = G > 1 ? make_tensor({g.O * G * hw}) : Tensor();  // [O, G*HoWo] product of a group
    const float* px = xc.data();
    const float* pw = wc.data();
    const float* pb = bc.defined() ? bc.data() : nullptr;
    float* po = out.data();
    for (int64_t n0 = 0; n0 < g.N; n0 += G) {
      const int64_t gc = std::min(G, g.N - n0), ld = gc * hw;
      float* pcol = col.data();
      im2col_group(px, pcol, g, *tab, n0, gc);
      if (gc == 1) {  // straight into out[n0] [O, HoWo], bias pre-filled
        float* dst = po + n0 * g.O * hw;
        if (pb) {
          for (int64_t o = 0; o < g.O; ++o) std::fill(dst + o * hw, dst + (o + 1) * hw, pb[o]);
        }
        kernels::sgemm(false, false, g.O, hw, ckk, 1.0f, pw, ckk, pcol, ld, pb ? 1.0f : 0.0f, dst, hw);
        continue;
      }
      float* pblk = block.data();
      kernels::sgemm(false, false, g.O, ld, ckk, 1.0f, pw, ckk, pcol, ld, 0.0f, pblk, ld);
      // block [O, gc*HoWo] -> out[n0 + j][o] (+ bias)
      parallel_for(gc * g.O, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(hw, 1)),
                   [&](int64_t t0, int64_t t1) {
                     for (int64_t t = t0; t < t1; ++t) {
                       const int64_t j = t / g.O, o = t % g.O;
                       const float* s = pblk + o * ld + j * hw;
                       float* d = po + ((n0 + j) * g.O + o) * hw;
                       const float b = pb ? pb[o] : 0.0f;
                       for (int64_t i = 0; i < hw; ++i) d[i] = s[i] + b;
                     }
                   });
    }
  }

  if (should_record({x, weight, bias})) {
    SavedTensor sx = weight.requires_grad() ? save(xc, "conv2d") : SavedTensor();
    SavedTensor sw = x.requires_grad() ? save(wc, "conv2d") : SavedTensor();
    record("conv2d", out, {x, weight, bias}, [sx, sw, tab, g, G](const Tensor& grad_out, GradSink& s) {
      if (s.create_graph()) return backward_graph(grad_out, sx, sw, g, s);
      const Tensor gy = grad_out.contiguous();
      const float* pg = gy.data();
      if (s.needs(2)) bias_grad(pg, g, s.accumulate(2));  // db [O] = sum over n, h, w of dY
      if (s.needs(1)) weight_grad(sx.get().data(), pg, g, *tab, G, s.accumulate(1));
      if (s.needs(0)) {
        GradSink::Accum acc = s.accumulate(0);
        if (g.N > 0) input_grad(sw.get().data(), pg, g, *tab, G, acc);
      }
    });
  }
  return out;
}

}  // namespace conv_detail
}  // namespace scalpel
