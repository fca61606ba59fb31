// conv2d by im2col + sgemm (core/kernels/gemm.h: OpenBLAS or the own AVX-512 kernel) with pixel-major rows, forward and
// backward side by side.
//
// For small output planes (the late ResNet stages, strided layers) the channel-major columns of
// conv_im2col.cpp are built from runs of a few floats, and the copies cost as much as the products.
// Here each group of G images is first copied to NHWC, so every row of the unfolded matrix,
// rows [G*Ho*Wo, kh*kw*C], is kh*kw runs of C consecutive floats (or zeros at the padding):
//   out_rows [G*HoWo, O]  = rows · Wrᵀ       (Wr [O, kh*kw*C]: the weight with channels innermost)
//   dWr [O, kh*kw*C]     += dY_rowsᵀ · rows  (sgemm, summed over the groups in order)
//   drows                 = dY_rows · Wr     then added back run by run into dX (NHWC), transposed
//   db [O]               += sum of dY over n, h, w
// Backward makes one pass over the groups, transposing each group's dY once for both products.
// G comes from group_size (shapes only). Copies and transposes are parallel over the images of a
// group (each image written by one thread), so results depend on the thread count at most through
// the products (kernels::sgemm; the own kernel and single-threaded OpenBLAS do not), as on the
// other im2col path.

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/kernels/gemm.h"
#include "core/ops.h"
#include "core/ops/conv_internal.h"
#include "core/parallel.h"

namespace scalpel {
namespace conv_detail {

namespace {

constexpr int64_t kTile = 16;  // transpose tile

// src [rows, cols] -> dst [cols, rows] (accumulate: dst +=), in kTile x kTile tiles.
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, bool accumulate) {
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    const int64_t i1 = std::min(rows, i0 + kTile);
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j) {
        float* d = dst + j * rows;
        if (accumulate) {
          for (int64_t i = i0; i < i1; ++i) d[i] += src[i * cols + j];
        } else {
          for (int64_t i = i0; i < i1; ++i) d[i] = src[i * cols + j];
        }
      }
    }
  }
}

// xt [H, W, C] (one image, NHWC) -> rows [Ho*Wo, kh*kw*C]
void unfold_rows(const float* xt, float* rows, const ConvGeom& g) {
  const int64_t K = g.ckk();
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      float* r = rows + (oh * g.Wo + ow) * K;
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        const int64_t ih = oh * g.sh - g.ph + ki;
        for (int64_t kj = 0; kj < g.kw; ++kj, r += g.C) {
          const int64_t iw = ow * g.sw - g.pw + kj;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
            std::fill(r, r + g.C, 0.0f);
          } else {
            std::memcpy(r, xt + (ih * g.W + iw) * g.C, static_cast<size_t>(g.C) * sizeof(float));
          }
        }
      }
    }
  }
}

// drows [Ho*Wo, kh*kw*C] -> dxt [H, W, C] (one image, NHWC), ADDED run by run in a fixed order.
void fold_rows(const float* drows, float* dxt, const ConvGeom& g) {
  const int64_t K = g.ckk();
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      const float* r = drows + (oh * g.Wo + ow) * K;
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        const int64_t ih = oh * g.sh - g.ph + ki;
        for (int64_t kj = 0; kj < g.kw; ++kj, r += g.C) {
          const int64_t iw = ow * g.sw - g.pw + kj;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
          float* d = dxt + (ih * g.W + iw) * g.C;
          for (int64_t c = 0; c < g.C; ++c) d[c] += r[c];
        }
      }
    }
  }
}

// w [O, C, kh, kw] <-> wr [O, kh, kw, C]; weight_from_rows writes or adds into w.
void weight_to_rows(const float* w, float* wr, const ConvGeom& g) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t o = 0; o < g.O; ++o) {
    for (int64_t c = 0; c < g.C; ++c) {
      for (int64_t t = 0; t < taps; ++t) wr[(o * taps + t) * g.C + c] = w[(o * g.C + c) * taps + t];
    }
  }
}
void weight_from_rows(const float* wr, float* w, const ConvGeom& g, bool accumulate) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t o = 0; o < g.O; ++o) {
    for (int64_t c = 0; c < g.C; ++c) {
      for (int64_t t = 0; t < taps; ++t) {
        const float v = wr[(o * taps + t) * g.C + c];
        float& d = w[(o * g.C + c) * taps + t];
        d = accumulate ? d + v : v;
      }
    }
  }
}

// Images [n0, n0+gc) of x [N, C, H, W] -> rows [gc*HoWo, K] (xt: scratch [gc, H*W*C]).
void unfold_group(const float* x, float* xt, float* rows, const ConvGeom& g, int64_t n0, int64_t gc) {
  parallel_for(gc, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      float* xtj = xt + j * g.hw_in() * g.C;
      transpose(x + (n0 + j) * g.C * g.hw_in(), g.C, g.hw_in(), xtj, false);
      unfold_rows(xtj, rows + j * g.hw_out() * g.ckk(), g);
    }
  });
}

// Images [n0, n0+gc) of dY [N, O, HoWo] -> dy_rows [gc*HoWo, O]
void dy_to_rows(const float* dy, float* dy_rows, const ConvGeom& g, int64_t n0, int64_t gc) {
  parallel_for(gc, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      transpose(dy + (n0 + j) * g.O * g.hw_out(), g.O, g.hw_out(), dy_rows + j * g.hw_out() * g.O, false);
    }
  });
}

}  // namespace

// x [N, C, H, W], weight [O, C, kh, kw], bias [O] or undefined -> out [N, O, Ho, Wo]
Tensor conv2d_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& xc, const Tensor& wc,
                   const Tensor& bc, const ConvGeom& g) {
  Tensor out = make_tensor({g.N, g.O, g.Ho, g.Wo});
  const int64_t G = group_size(g), hw = g.hw_out(), K = g.ckk();
  // Scratch from the tensor block cache, not std::vector: no zero fill, no fresh pages per step.
  Tensor wr = make_tensor({g.O * K});
  weight_to_rows(wc.data(), wr.data(), g);
  if (g.N > 0) {
    Tensor xt = make_tensor({G * g.hw_in() * g.C}), rows = make_tensor({G * hw * K});
    Tensor out_rows = make_tensor({G * hw * g.O});
    const float* pb = bc.defined() ? bc.data() : nullptr;
    for (int64_t n0 = 0; n0 < g.N; n0 += G) {
      const int64_t gc = std::min(G, g.N - n0), m = gc * hw;
      unfold_group(xc.data(), xt.data(), rows.data(), g, n0, gc);
      kernels::sgemm(false, true, m, g.O, K, 1.0f, rows.data(), K, wr.data(), K, 0.0f, out_rows.data(), g.O);
      // out_rows [gc*HoWo, O] -> out[n0 + j] [O, HoWo] (+ bias)
      parallel_for(gc, 1, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          float* dst = out.data() + (n0 + j) * g.O * hw;
          transpose(out_rows.data() + j * hw * g.O, hw, g.O, dst, false);
          if (pb) {
            for (int64_t o = 0; o < g.O; ++o) {
              for (int64_t i = 0; i < hw; ++i) dst[o * hw + i] += pb[o];
            }
          }
        }
      });
    }
  }

  if (!should_record({x, weight, bias})) return out;
  SavedTensor sx = weight.requires_grad() ? save(xc, "conv2d") : SavedTensor();
  SavedTensor sw = x.requires_grad() ? save(weight, "conv2d") : SavedTensor();  // for create_graph
  record("conv2d", out, {x, weight, bias}, [sx, sw, wr, g, G](const Tensor& grad_out, GradSink& s) {
    if (s.create_graph()) return backward_graph(grad_out, sx, sw, g, s);
    const Tensor gy = grad_out.contiguous();
    const float* pg = gy.data();
    const int64_t hw = g.hw_out(), K = g.ckk();
    if (s.needs(2)) bias_grad(pg, g, s.accumulate(2));
    if (g.N == 0) {  // empty batch: weight gradient is zero, input gradient is empty
      if (s.needs(1)) {
        GradSink::Accum acc = s.accumulate(1);
        if (acc.beta == 0.0f) std::fill(acc.data, acc.data + g.O * K, 0.0f);
      }
      if (s.needs(0)) s.accumulate(0);
      return;
    }
    Tensor dy_rows = make_tensor({G * hw * g.O}), rows = make_tensor({G * hw * K});
    Tensor xt = make_tensor({G * g.hw_in() * g.C});
    // One pass over the groups: dY is transposed once per group for both products. dW is summed
    // into a local dWr (reordered into the sink after the loop), so only dX writes into the sink
    // while the loop runs.
    const bool want_dw = s.needs(1), want_dx = s.needs(0);
    Tensor dwr = make_tensor({want_dw ? g.O * K : 0});  // the first group's product overwrites it
    GradSink::Accum dx = want_dx ? s.accumulate(0) : GradSink::Accum{nullptr, 0.0f, Tensor()};
    const bool accumulate = dx.beta != 0.0f;
    for (int64_t n0 = 0; n0 < g.N; n0 += G) {
      const int64_t gc = std::min(G, g.N - n0), m = gc * hw;
      dy_to_rows(pg, dy_rows.data(), g, n0, gc);
      if (want_dw) {  // dWr [O, K] += dY_rowsᵀ · rows
        unfold_group(sx.get().data(), xt.data(), rows.data(), g, n0, gc);
        kernels::sgemm(true, false, g.O, K, m, 1.0f, dy_rows.data(), g.O, rows.data(), K, n0 == 0 ? 0.0f : 1.0f,
                       dwr.data(), K);
      }
      if (want_dx) {  // drows = dY_rows · Wr, folded into dX (NHWC scratch), transposed into dX
        kernels::sgemm(false, false, m, K, g.O, 1.0f, dy_rows.data(), g.O, wr.data(), K, 0.0f, rows.data(), K);
        parallel_for(gc, 1, [&](int64_t j0, int64_t j1) {
          for (int64_t j = j0; j < j1; ++j) {
            float* dxt = xt.data() + j * g.hw_in() * g.C;
            std::fill(dxt, dxt + g.hw_in() * g.C, 0.0f);
            fold_rows(rows.data() + j * hw * K, dxt, g);
            transpose(dxt, g.hw_in(), g.C, dx.data + (n0 + j) * g.C * g.hw_in(), accumulate);
          }
        });
      }
    }
    if (want_dw) {
      GradSink::Accum acc = s.accumulate(1);
      weight_from_rows(dwr.data(), acc.data, g, acc.beta != 0.0f);
    }
  });
  return out;
}

}  // namespace conv_detail
}  // namespace scalpel
