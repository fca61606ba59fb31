// Direct convolution kernels (see conv_direct.h for the virtual-grid and phase-plane layouts).
//
// Compiled with -ffp-contract=fast (core/CMakeLists.txt) so that acc += x * w becomes one fused
// multiply-add; the order of every sum is fixed by the loops below, so results are reproducible.
#include "core/kernels/conv_direct.h"

#include <algorithm>
#include <cstring>

namespace scalpel {
namespace kernels {

namespace {

// Vector width and register blocking per instruction set: a forward tile keeps kOB output channels
// x kNV pixel vectors of accumulators; a 3x3 weight-gradient tile keeps kCBW input channels x 9 taps
// of output-channel vectors and walks kPBW pixels at a time.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kOB = 8, kNV = 3, kCBW = 2, kPBW = 4;
#elif defined(__AVX__)
constexpr int kLanes = 8;
constexpr int kOB = 4, kNV = 3, kCBW = 1, kPBW = 2;
#else
constexpr int kLanes = 4;
constexpr int kOB = 4, kNV = 3, kCBW = 1, kPBW = 2;
#endif

typedef float vf __attribute__((vector_size(kLanes * sizeof(float))));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// dst[0, n) = src[0, n) for the short rows of a plane, inline: whole vectors and one overlapping
// last vector (a memcpy call per 16-128-byte row cost more than the copy itself).
inline void copy_row(float* dst, const float* src, int64_t n) {
  if (n < kLanes) {
    for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
    return;
  }
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) store(dst + j, load(src + j));
  if (j < n) store(dst + n - kLanes, load(src + n - kLanes));
}

int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// ---- forward ------------------------------------------------------------------------------------

// One tile: outv[o0 .. o0+OB, p0 .. p0 + NV*kLanes) over all input channels and taps.
template <int OB, int NV>
void forward_tile(const float* xp, const float* w, float* outv, const DirectConvGeom& g, const int64_t* off, int64_t o0,
                  int64_t p0) {
  vf acc[OB][NV];
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[o][v] = vf{};
  }
  const int64_t taps = g.taps(), ckk = g.cin * taps;
  for (int64_t c = 0; c < g.cin; ++c) {
    const float* xc = xp + c * g.cstride + p0;
    const float* wc = w + o0 * ckk + c * taps;
    for (int64_t t = 0; t < taps; ++t) {
      const float* xs = xc + off[t];
      vf xv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) xv[v] = load(xs + v * kLanes);
#pragma GCC unroll 16
      for (int o = 0; o < OB; ++o) {
        const float s = wc[o * ckk + t];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[o][v] += xv[v] * s;
      }
    }
  }
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) store(outv + (o0 + o) * g.pv + p0 + v * kLanes, acc[o][v]);
  }
}

// forward_tile with a run-time channel count ob in [1, OB].
template <int NV, int OB = kOB>
void forward_tile_any(int64_t ob, const float* xp, const float* w, float* outv, const DirectConvGeom& g,
                      const int64_t* off, int64_t o0, int64_t p0) {
  if constexpr (OB >= 1) {
    if (ob == OB) {
      forward_tile<OB, NV>(xp, w, outv, g, off, o0, p0);
    } else {
      forward_tile_any<NV, OB - 1>(ob, xp, w, outv, g, off, o0, p0);
    }
  }
}

// ---- weight gradient ----------------------------------------------------------------------------

// partial[c0+cb, t, ov*kLanes .. +kLanes) += sums over images n and positions p of
// dyt[n, p, ov*kLanes ..] * xp[n, c0+cb, p + off[t]], for CB input channels and one tap t (any
// kernel shape). Vectorized over output channels: dY is transposed to pixel-major rows, and the
// input value is a broadcast, so no load ever straddles a cache line.
template <int CB>
void weight_grad_tile(const float* dyt, int64_t opad, const float* xp, int64_t images, float* partial,
                      const DirectConvGeom& g, int64_t ov, int64_t c0, int64_t t) {
  vf acc[CB];
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) acc[cb] = vf{};
  const int64_t off = g.off[static_cast<size_t>(t)];
  for (int64_t n = 0; n < images; ++n) {
    const float* dn = dyt + n * g.pv * opad + ov * kLanes;
    const float* xn = xp + (n * g.cin + c0) * g.cstride + off;
    for (int64_t p = 0; p < g.pv; ++p) {
      const vf d = load(dn + p * opad);
#pragma GCC unroll 16
      for (int cb = 0; cb < CB; ++cb) acc[cb] += d * xn[cb * g.cstride + p];
    }
  }
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
    float* dst = partial + ((c0 + cb) * g.taps() + t) * opad + ov * kLanes;
    store(dst, load(dst) + acc[cb]);
  }
}

template <int CB = kOB>
void weight_grad_tile_any(int64_t cb, const float* dyt, int64_t opad, const float* xp, int64_t images, float* partial,
                          const DirectConvGeom& g, int64_t ov, int64_t c0, int64_t t) {
  if constexpr (CB >= 1) {
    if (cb == CB) {
      weight_grad_tile<CB>(dyt, opad, xp, images, partial, g, ov, c0, t);
    } else {
      weight_grad_tile_any<CB - 1>(cb, dyt, opad, xp, images, partial, g, ov, c0, t);
    }
  }
}

// The 3x3 case of weight_grad_tile for column stride SW in {1, 2}, PB pixels at a time. In kernel
// row ki, the taps of one column phase read consecutive inputs: at stride 1, pixels p .. p+PB-1 need
// x[p + 0 .. PB+1] of one row for all three taps; at stride 2, taps 0 and 2 read phase 0 at columns
// +0 and +1 (PB + 1 values) and tap 1 reads phase 1 (PB values). Each broadcast input so feeds up to
// three taps, and the loop is bound by the multiply-adds rather than by loads.
template <int CB, int PB, int SW>
void weight_grad_tile_3x3(const float* dyt, int64_t opad, const float* xp, int64_t images, float* partial,
                          const DirectConvGeom& g, int64_t ov, int64_t c0) {
  static_assert(SW == 1 || SW == 2, "column stride 1 or 2");
  constexpr int kA = SW == 1 ? PB + 2 : PB + 1;  // inputs of the phase holding tap 0
  vf acc[CB][9];
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 16
    for (int t = 0; t < 9; ++t) acc[cb][t] = vf{};
  }
  for (int64_t n = 0; n < images; ++n) {
    const float* dn = dyt + n * g.pv * opad + ov * kLanes;
    const float* xn = xp + (n * g.cin + c0) * g.cstride;
    for (int64_t p = 0; p < g.pv; p += PB) {  // pv is a multiple of kLanes, hence of PB
      vf d[PB];
#pragma GCC unroll 16
      for (int j = 0; j < PB; ++j) d[j] = load(dn + (p + j) * opad);
#pragma GCC unroll 16
      for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 4
        for (int ki = 0; ki < 3; ++ki) {
          const float* xa = xn + cb * g.cstride + g.off[ki * 3] + p;
          float va[kA];
#pragma GCC unroll 16
          for (int u = 0; u < kA; ++u) va[u] = xa[u];
          if constexpr (SW == 1) {
#pragma GCC unroll 16
            for (int j = 0; j < PB; ++j) {
#pragma GCC unroll 4
              for (int kj = 0; kj < 3; ++kj) acc[cb][ki * 3 + kj] += d[j] * va[j + kj];
            }
          } else {
            const float* xb = xn + cb * g.cstride + g.off[ki * 3 + 1] + p;
#pragma GCC unroll 16
            for (int j = 0; j < PB; ++j) {
              acc[cb][ki * 3] += d[j] * va[j];
              acc[cb][ki * 3 + 2] += d[j] * va[j + 1];
              acc[cb][ki * 3 + 1] += d[j] * xb[j];
            }
          }
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 16
    for (int t = 0; t < 9; ++t) {
      float* dst = partial + ((c0 + cb) * 9 + t) * opad + ov * kLanes;
      store(dst, load(dst) + acc[cb][t]);
    }
  }
}

template <int SW, int CB = kCBW>
void weight_grad_tile_3x3_any(int64_t cb, const float* dyt, int64_t opad, const float* xp, int64_t images,
                              float* partial, const DirectConvGeom& g, int64_t ov, int64_t c0) {
  if constexpr (CB >= 1) {
    if (cb == CB) {
      weight_grad_tile_3x3<CB, kPBW, SW>(dyt, opad, xp, images, partial, g, ov, c0);
    } else {
      weight_grad_tile_3x3_any<SW, CB - 1>(cb, dyt, opad, xp, images, partial, g, ov, c0);
    }
  }
}

}  // namespace

DirectConvGeom direct_conv_geom(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh,
                                int64_t sw, int64_t ph, int64_t pw) {
  DirectConvGeom g;
  g.cin = cin, g.cout = cout, g.h = h, g.w = w, g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
  g.ho = (h + 2 * ph - kh) / sh + 1, g.wo = (w + 2 * pw - kw) / sw + 1;
  g.off.resize(static_cast<size_t>(kh * kw));
  int64_t reach = 0;  // largest tap offset inside one phase plane
  if (sh == 1 && sw == 1) {
    // Rows share their zero columns: the pw columns after row i are both its right padding and
    // the left padding of row i+1 (the plane starts with pw zeros for row 0), so wp = w + pw.
    g.phases_h = g.phases_w = 1;
    g.wp = w + pw;
    g.hq = h + 2 * ph;
    for (int64_t ki = 0; ki < kh; ++ki) {
      for (int64_t kj = 0; kj < kw; ++kj) g.off[static_cast<size_t>(ki * kw + kj)] = ki * g.wp + kj;
    }
    reach = (kh - 1) * g.wp + kw - 1;
  } else {
    // Phase (a, b) holds the padded input at rows a, a + sh, ... and columns b, b + sw, ...; tap
    // (ki, kj) reads phase (ki % sh, kj % sw) at (oh + ki / sh, ow + kj / sw). Only phases that
    // some tap reads are stored.
    g.phases_h = std::min(sh, kh), g.phases_w = std::min(sw, kw);
    g.wp = (w + 2 * pw + sw - 1) / sw;
    g.hq = (h + 2 * ph + sh - 1) / sh;
    reach = ((kh - 1) / sh) * g.wp + (kw - 1) / sw;
  }
  g.pv = round_up(g.ho * g.wp, kLanes);
  const int64_t lead = (sh == 1 && sw == 1) ? pw : 0;
  g.plane = round_up(std::max(g.pv + reach + 1, lead + g.hq * g.wp), kLanes);
  g.cstride = g.plane * g.phases_h * g.phases_w;
  if (!(sh == 1 && sw == 1)) {
    for (int64_t ki = 0; ki < kh; ++ki) {
      for (int64_t kj = 0; kj < kw; ++kj) {
        const int64_t phase = (ki % sh) * g.phases_w + kj % sw;
        g.off[static_cast<size_t>(ki * kw + kj)] = phase * g.plane + (ki / sh) * g.wp + kj / sw;
      }
    }
  }
  return g;
}

// x [cin, h, w] -> xp [cin, cstride]
void pad_planes(const float* x, float* xp, const DirectConvGeom& g) {
  for (int64_t c = 0; c < g.cin; ++c) {
    float* dst = xp + c * g.cstride;
    const float* src = x + c * g.h * g.w;
    if (g.sh == 1 && g.sw == 1) {  // x[c, i, j] at pw + (i + ph)*wp + j
      const int64_t first = g.pw + g.ph * g.wp;
      std::memset(dst, 0, static_cast<size_t>(first) * sizeof(float));
      for (int64_t i = 0; i < g.h; ++i) {
        float* row = dst + first + i * g.wp;
        copy_row(row, src + i * g.w, g.w);
        for (int64_t j = g.w; j < g.wp; ++j) row[j] = 0.0f;
      }
      const int64_t used = first + g.h * g.wp;
      std::memset(dst + used, 0, static_cast<size_t>(g.plane - used) * sizeof(float));
      continue;
    }
    // Phase (a, b), element (i, j) = padded input (i*sh + a, j*sw + b).
    std::memset(dst, 0, static_cast<size_t>(g.cstride) * sizeof(float));
    for (int64_t a = 0; a < g.phases_h; ++a) {
      for (int64_t b = 0; b < g.phases_w; ++b) {
        float* ph_plane = dst + (a * g.phases_w + b) * g.plane;
        for (int64_t i = 0; i < g.hq; ++i) {
          const int64_t ih = i * g.sh + a - g.ph;
          if (ih < 0 || ih >= g.h) continue;
          const float* srow = src + ih * g.w;
          float* drow = ph_plane + i * g.wp;
          for (int64_t j = 0; j < g.wp; ++j) {
            const int64_t iw = j * g.sw + b - g.pw;
            if (iw >= 0 && iw < g.w) drow[j] = srow[iw];
          }
        }
      }
    }
  }
}

// xp [cin, cstride], w [cout, cin, kh, kw] -> outv [cout, pv]
void direct_conv_forward(const float* xp, const float* w, float* outv, const DirectConvGeom& g) {
  const std::vector<int64_t>& off = g.off;
  const int64_t nvec = g.pv / kLanes;
  for (int64_t o0 = 0; o0 < g.cout; o0 += kOB) {
    const int64_t ob = std::min<int64_t>(kOB, g.cout - o0);
    int64_t v = 0;
    for (; v + kNV <= nvec; v += kNV) forward_tile_any<kNV>(ob, xp, w, outv, g, off.data(), o0, v * kLanes);
    for (; v + 2 <= nvec; v += 2) forward_tile_any<2>(ob, xp, w, outv, g, off.data(), o0, v * kLanes);
    for (; v < nvec; ++v) forward_tile_any<1>(ob, xp, w, outv, g, off.data(), o0, v * kLanes);
  }
}

// outv [cout, pv] -> out [cout, ho, wo] (+ bias)
void unpad_outputs(const float* outv, const float* bias, float* out, const DirectConvGeom& g, bool accumulate) {
  for (int64_t o = 0; o < g.cout; ++o) {
    const float b = bias ? bias[o] : 0.0f;
    for (int64_t i = 0; i < g.ho; ++i) {
      const float* s = outv + o * g.pv + i * g.wp;
      float* d = out + (o * g.ho + i) * g.wo;
      if (accumulate) {
        for (int64_t j = 0; j < g.wo; ++j) d[j] += s[j] + b;
      } else {
        for (int64_t j = 0; j < g.wo; ++j) d[j] = s[j] + b;
      }
    }
  }
}

int64_t padded_out_channels(const DirectConvGeom& g) { return round_up(g.cout, kLanes); }

// dy [cout, ho, wo] -> dyt [pv, opad]; channels innermost so that the writes are sequential.
void place_on_grid_t(const float* dy, float* dyt, const DirectConvGeom& g) {
  const int64_t opad = padded_out_channels(g), plane = g.ho * g.wo;
  for (int64_t i = 0; i < g.ho; ++i) {
    float* row = dyt + i * g.wp * opad;
    for (int64_t j = 0; j < g.wo; ++j) {
      float* d = row + j * opad;
      const float* s = dy + i * g.wo + j;
      for (int64_t o = 0; o < g.cout; ++o) d[o] = s[o * plane];
      std::fill(d + g.cout, d + opad, 0.0f);
    }
    std::fill(row + g.wo * opad, row + g.wp * opad, 0.0f);  // junk columns
  }
  std::fill(dyt + g.ho * g.wp * opad, dyt + g.pv * opad, 0.0f);  // tail
}

// dyt [images, pv, opad], xp [images, cin, cstride] -> partial [cin, taps, opad] (added)
void direct_conv_weight_grad(const float* dyt, const float* xp, int64_t images, float* partial,
                             const DirectConvGeom& g) {
  const int64_t taps = g.taps(), opad = padded_out_channels(g);
  // 3x3 at column stride 1 or 2 (any row stride: rows are offsets in g.off).
  const bool three = g.kh == 3 && g.kw == 3 && (g.sw == 1 || g.sw == 2);
  const int64_t cbw = three ? kCBW : kOB;
  for (int64_t ov = 0; ov < opad / kLanes; ++ov) {
    for (int64_t c0 = 0; c0 < g.cin; c0 += cbw) {
      const int64_t cb = std::min<int64_t>(cbw, g.cin - c0);
      if (three && g.sw == 1) {
        weight_grad_tile_3x3_any<1>(cb, dyt, opad, xp, images, partial, g, ov, c0);
      } else if (three) {
        weight_grad_tile_3x3_any<2>(cb, dyt, opad, xp, images, partial, g, ov, c0);
      } else {
        for (int64_t t = 0; t < taps; ++t) weight_grad_tile_any(cb, dyt, opad, xp, images, partial, g, ov, c0, t);
      }
    }
  }
}

// partial [cin, taps, opad] -> dw [cout, cin, taps]
void weight_grad_from_partial(const float* partial, float* dw, const DirectConvGeom& g, bool accumulate) {
  const int64_t opad = padded_out_channels(g), rows = g.cin * g.taps();
  for (int64_t o = 0; o < g.cout; ++o) {
    for (int64_t r = 0; r < rows; ++r) {
      const float v = partial[r * opad + o];
      dw[o * rows + r] = accumulate ? dw[o * rows + r] + v : v;
    }
  }
}

// w [O, C, kh, kw] -> wt [C, O, ku, kv]: taps (a + u*sh, b + v*sw) of phase (a, b), flipped
void phase_weight(const float* w, float* wt, int64_t O, int64_t C, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                  int64_t a, int64_t b) {
  const int64_t ku = (kh - a + sh - 1) / sh, kv = (kw - b + sw - 1) / sw;
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t c = 0; c < C; ++c) {
      const float* src = w + (o * C + c) * kh * kw;
      float* d = wt + (c * O + o) * ku * kv;
      for (int64_t u = 0; u < ku; ++u) {
        for (int64_t v = 0; v < kv; ++v) d[(ku - 1 - u) * kv + (kv - 1 - v)] = src[(a + u * sh) * kw + b + v * sw];
      }
    }
  }
}

// outv [cin, pv] of phase (a, b) -> dx [cin, h, w] += at (i*sh + a - ph, j*sw + b - pw)
void add_phase_outputs(const float* outv, const DirectConvGeom& pg, float* dx, int64_t h, int64_t w, int64_t sh,
                       int64_t sw, int64_t ph, int64_t pw, int64_t a, int64_t b) {
  for (int64_t c = 0; c < pg.cout; ++c) {
    float* dxc = dx + c * h * w;
    for (int64_t i = 0; i < pg.ho; ++i) {
      const int64_t ih = i * sh + a - ph;
      if (ih < 0 || ih >= h) continue;
      const float* srow = outv + c * pg.pv + i * pg.wp;
      float* drow = dxc + ih * w;
      for (int64_t j = 0; j < pg.wo; ++j) {
        const int64_t iw = j * sw + b - pw;
        if (iw >= 0 && iw < w) drow[iw] += srow[j];
      }
    }
  }
}

}  // namespace kernels
}  // namespace scalpel
