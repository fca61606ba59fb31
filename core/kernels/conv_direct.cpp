// Direct stride-1 convolution kernels (see conv_direct.h for the virtual-grid layout).
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

int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// ---- forward ------------------------------------------------------------------------------------

// One tile: outv[o0 .. o0+OB, p0 .. p0 + NV*kLanes) over all input channels and taps.
template <int OB, int NV>
void forward_tile(const float* xp, const float* w, float* outv, const DirectConvGeom& g, const int64_t* off,
                  int64_t o0, int64_t p0) {
  vf acc[OB][NV];
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[o][v] = vf{};
  }
  const int64_t taps = g.taps(), ckk = g.cin * taps;
  for (int64_t c = 0; c < g.cin; ++c) {
    const float* xc = xp + c * g.plane + p0;
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

// partial[c0+cb, t0+t, ov*kLanes .. +kLanes) += sums over images n and positions p of
// dyt[n, p, ov*kLanes ..] * xp[n, c0+cb, p + off[t0+t]], for CB input channels and KK consecutive
// taps from t0. Vectorized over output channels: dY is transposed to pixel-major rows, and the
// input value is a broadcast, so no load ever straddles a cache line.
template <int CB, int KK>
void weight_grad_tile(const float* dyt, int64_t opad, const float* xp, int64_t images, float* partial,
                      const DirectConvGeom& g, const int64_t* off, int64_t ov, int64_t c0, int64_t t0) {
  vf acc[CB][KK];
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 16
    for (int t = 0; t < KK; ++t) acc[cb][t] = vf{};
  }
  const int64_t* o = off + t0;
  for (int64_t n = 0; n < images; ++n) {
    const float* dn = dyt + n * g.pv * opad + ov * kLanes;
    const float* xn = xp + (n * g.cin + c0) * g.plane;
    for (int64_t p = 0; p < g.pv; ++p) {
      const vf d = load(dn + p * opad);
#pragma GCC unroll 16
      for (int cb = 0; cb < CB; ++cb) {
        const float* xs = xn + cb * g.plane + p;
#pragma GCC unroll 16
        for (int t = 0; t < KK; ++t) acc[cb][t] += d * xs[o[t]];
      }
    }
  }
  const int64_t taps = g.taps();
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 16
    for (int t = 0; t < KK; ++t) {
      float* dst = partial + ((c0 + cb) * taps + t0 + t) * opad + ov * kLanes;
      store(dst, load(dst) + acc[cb][t]);
    }
  }
}

template <int CB = kOB>
void weight_grad_tile_any(int64_t cb, const float* dyt, int64_t opad, const float* xp, int64_t images,
                          float* partial, const DirectConvGeom& g, const int64_t* off, int64_t ov, int64_t c0,
                          int64_t t0) {
  if constexpr (CB >= 1) {
    if (cb == CB) {
      weight_grad_tile<CB, 1>(dyt, opad, xp, images, partial, g, off, ov, c0, t0);
    } else {
      weight_grad_tile_any<CB - 1>(cb, dyt, opad, xp, images, partial, g, off, ov, c0, t0);
    }
  }
}

// The 3x3 case of weight_grad_tile, PB pixels at a time: pixels p .. p+PB-1 of kernel row ki read
// the PB + 2 consecutive inputs x[p + ki*wp + 0 .. PB+1], so each broadcast input feeds up to three
// taps and the loop is bound by the multiply-adds rather than by loads.
template <int CB, int PB>
void weight_grad_tile_3x3(const float* dyt, int64_t opad, const float* xp, int64_t images, float* partial,
                          const DirectConvGeom& g, int64_t ov, int64_t c0) {
  vf acc[CB][9];
#pragma GCC unroll 16
  for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 16
    for (int t = 0; t < 9; ++t) acc[cb][t] = vf{};
  }
  for (int64_t n = 0; n < images; ++n) {
    const float* dn = dyt + n * g.pv * opad + ov * kLanes;
    const float* xn = xp + (n * g.cin + c0) * g.plane;
    for (int64_t p = 0; p < g.pv; p += PB) {  // pv is a multiple of kLanes, hence of PB
      vf d[PB];
#pragma GCC unroll 16
      for (int j = 0; j < PB; ++j) d[j] = load(dn + (p + j) * opad);
#pragma GCC unroll 16
      for (int cb = 0; cb < CB; ++cb) {
#pragma GCC unroll 4
        for (int ki = 0; ki < 3; ++ki) {
          const float* xs = xn + cb * g.plane + p + ki * g.wp;
          float b[PB + 2];
#pragma GCC unroll 16
          for (int u = 0; u < PB + 2; ++u) b[u] = xs[u];
#pragma GCC unroll 16
          for (int j = 0; j < PB; ++j) {
#pragma GCC unroll 4
            for (int kj = 0; kj < 3; ++kj) acc[cb][ki * 3 + kj] += d[j] * b[j + kj];
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

template <int CB = kCBW>
void weight_grad_tile_3x3_any(int64_t cb, const float* dyt, int64_t opad, const float* xp, int64_t images,
                              float* partial, const DirectConvGeom& g, int64_t ov, int64_t c0) {
  if constexpr (CB >= 1) {
    if (cb == CB) {
      weight_grad_tile_3x3<CB, kPBW>(dyt, opad, xp, images, partial, g, ov, c0);
    } else {
      weight_grad_tile_3x3_any<CB - 1>(cb, dyt, opad, xp, images, partial, g, ov, c0);
    }
  }
}

std::vector<int64_t> tap_offsets(const DirectConvGeom& g) {
  std::vector<int64_t> off(static_cast<size_t>(g.taps()));
  for (int64_t ki = 0; ki < g.kh; ++ki) {
    for (int64_t kj = 0; kj < g.kw; ++kj) off[static_cast<size_t>(ki * g.kw + kj)] = ki * g.wp + kj;
  }
  return off;
}

}  // namespace

int64_t direct_conv_lanes() { return kLanes; }

DirectConvGeom direct_conv_geom(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t ph,
                                int64_t pw) {
  DirectConvGeom g;
  g.cin = cin, g.cout = cout, g.h = h, g.w = w, g.kh = kh, g.kw = kw, g.ph = ph, g.pw = pw;
  // Rows share their zero columns: the pw columns after row i are both its right padding and the
  // left padding of row i+1 (the plane starts with pw zeros for row 0), so wp = w + pw.
  g.hp = h + 2 * ph, g.wp = w + pw;
  g.ho = g.hp - kh + 1, g.wo = w + 2 * pw - kw + 1;
  g.pv = round_up(g.ho * g.wp, kLanes);
  // Forward tiles read up to pv - 1 + (kh-1)*wp + (kw-1); keep whole vectors in bounds.
  g.plane = round_up(std::max(g.pv + (kh - 1) * g.wp + kw, pw + g.hp * g.wp), kLanes);
  return g;
}

// x [cin, h, w] -> xp [cin, plane]: x[c, i, j] at xp[c, pw + (i + ph)*wp + j], zeros elsewhere.
void pad_planes(const float* x, float* xp, const DirectConvGeom& g) {
  for (int64_t c = 0; c < g.cin; ++c) {
    float* dst = xp + c * g.plane;
    const float* src = x + c * g.h * g.w;
    const int64_t first = g.pw + g.ph * g.wp;  // x[c, 0, 0]
    std::memset(dst, 0, static_cast<size_t>(first) * sizeof(float));
    for (int64_t i = 0; i < g.h; ++i) {
      float* row = dst + first + i * g.wp;
      std::memcpy(row, src + i * g.w, static_cast<size_t>(g.w) * sizeof(float));
      std::fill(row + g.w, row + g.wp, 0.0f);
    }
    const int64_t used = first + g.h * g.wp;
    std::memset(dst + used, 0, static_cast<size_t>(g.plane - used) * sizeof(float));
  }
}

// xp [cin, plane], w [cout, cin, kh, kw] -> outv [cout, pv]
void direct_conv_forward(const float* xp, const float* w, float* outv, const DirectConvGeom& g) {
  const std::vector<int64_t> off = tap_offsets(g);
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

// dyt [images, pv, opad], xp [images, cin, plane] -> partial [cin, taps, opad] (added)
void direct_conv_weight_grad(const float* dyt, const float* xp, int64_t images, float* partial,
                             const DirectConvGeom& g) {
  const std::vector<int64_t> off = tap_offsets(g);
  const int64_t taps = g.taps(), opad = padded_out_channels(g);
  const bool three = g.kh == 3 && g.kw == 3;
  const int64_t cbw = three ? kCBW : kOB;
  for (int64_t ov = 0; ov < opad / kLanes; ++ov) {
    for (int64_t c0 = 0; c0 < g.cin; c0 += cbw) {
      const int64_t cb = std::min<int64_t>(cbw, g.cin - c0);
      if (three) {
        weight_grad_tile_3x3_any(cb, dyt, opad, xp, images, partial, g, ov, c0);
      } else {
        for (int64_t t = 0; t < taps; ++t) weight_grad_tile_any(cb, dyt, opad, xp, images, partial, g, off.data(), ov, c0, t);
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

// w [O, C, kh, kw] -> wt [C, O, kh, kw], flipped
void flip_transpose_weight(const float* w, float* wt, int64_t O, int64_t C, int64_t kh, int64_t kw) {
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t c = 0; c < C; ++c) {
      const float* s = w + (o * C + c) * kh * kw;
      float* d = wt + (c * O + o) * kh * kw;
      for (int64_t i = 0; i < kh; ++i) {
        for (int64_t j = 0; j < kw; ++j) d[(kh - 1 - i) * kw + (kw - 1 - j)] = s[i * kw + j];
      }
    }
  }
}

}  // namespace kernels
}  // namespace scalpel
