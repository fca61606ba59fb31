// conv2d on the direct path (core/kernels/conv_direct.h), forward and backward side by side:
// per image, a register-blocked convolution over a zero-padded copy of the input; dX is the same
// kernel applied to dY with the flipped, transposed weight (one such convolution per input phase
// when the stride is larger); dW sums dY times the shifted input per fixed chunk of images, the
// chunks' partial sums added in chunk order. Work is split into pieces fixed by the shapes
// (images, image chunks), so results do not depend on the thread count.
#include <algorithm>
#include <vector>

#include "core/kernels/conv_direct.h"
#include "core/ops.h"
#include "core/ops/conv_internal.h"
#include "core/parallel.h"

namespace scalpel {
namespace conv_detail {

namespace {

// Per-thread scratch buffers, reused from call to call: slot `slot` of the calling thread, at least
// n floats, contents undefined until written (every user writes all it reads). Fresh vectors cost a
// zero-fill plus cache misses on every call; a few hundred KiB per thread stay allocated instead.
float* scratch(int slot, int64_t n) {
  thread_local std::vector<float> buffers[2];
  std::vector<float>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

constexpr int64_t kDirectWgradChunks = 8;             // image chunks of the direct weight gradient
constexpr int64_t kDirectWgradImages = 4;             // images per weight-gradient kernel call
constexpr int64_t kDirectMaxPartialFloats = 1 << 22;  // 16 MiB cap on all chunks' partial sums

// Chunks of images of the direct weight gradient: the partial sums [C, taps, Opad] of each
// chunk are summed in chunk order, so the chunking (shapes only) fixes the result.
int64_t direct_wgrad_chunks(const ConvGeom& g, int64_t partial_floats) {
  const int64_t by_memory = std::max<int64_t>(1, kDirectMaxPartialFloats / std::max<int64_t>(partial_floats, 1));
  return std::max<int64_t>(1, std::min<int64_t>({g.N, kDirectWgradChunks, by_memory}));
}

// dW [O, C, kh, kw] (+)= per acc.beta, from x [N, C, H, W] and dY [N, O, Ho, Wo]: partial sums
// [C, taps, Opad] per chunk of images, added in chunk order.
void direct_weight_grad(const float* px, const float* pg, const ConvGeom& g, const kernels::DirectConvGeom& fg,
                        GradSink::Accum acc) {
  const int64_t opad = kernels::padded_out_channels(fg), pfloats = g.ckk() * opad;
  const int64_t chunks = direct_wgrad_chunks(g, pfloats);
  // From the tensor block cache (no fresh pages per step); each chunk zeroes its own slice.
  Tensor partial_t = make_tensor({chunks * pfloats});
  float* partial = partial_t.data();
  // A chunk's images go through the kernel kDirectWgradImages at a time, which bounds the
  // scratch memory whatever the batch size.
  const int64_t per_call = std::min<int64_t>(kDirectWgradImages, (g.N + chunks - 1) / chunks);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    float* xp = scratch(0, per_call * g.C * fg.cstride);
    float* dyt = scratch(1, per_call * fg.pv * opad);
    for (int64_t k = c0; k < c1; ++k) {
      std::fill(partial + k * pfloats, partial + (k + 1) * pfloats, 0.0f);
      const int64_t k0 = g.N * k / chunks, k1 = g.N * (k + 1) / chunks;
      for (int64_t n0 = k0; n0 < k1; n0 += per_call) {
        const int64_t n1 = std::min(k1, n0 + per_call);
        for (int64_t n = n0; n < n1; ++n) {
          kernels::pad_planes(px + n * g.C * g.hw_in(), xp + (n - n0) * g.C * fg.cstride, fg);
          kernels::place_on_grid_t(pg + n * g.O * g.hw_out(), dyt + (n - n0) * fg.pv * opad, fg);
        }
        kernels::direct_conv_weight_grad(dyt, xp, n1 - n0, partial + k * pfloats, fg);
      }
    }
  });
  // Chunk sums in chunk order for every element (split over elements: the same bits at any thread count).
  parallel_for(pfloats, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t k = 1; k < chunks; ++k) {
      const float* src = partial + k * pfloats;
      for (int64_t i = i0; i < i1; ++i) partial[i] += src[i];
    }
  });
  kernels::weight_grad_from_partial(partial, acc.data, fg, acc.beta != 0.0f);
}

// dX [N, C, H, W] (+)= per acc.beta, from W and dY: per image one stride-1 convolution of dY per
// input phase.
void direct_input_grad(const float* w, const float* pg, const ConvGeom& g, GradSink::Accum acc) {
  const bool accumulate = acc.beta != 0.0f;
  const bool unit = g.sh == 1 && g.sw == 1;
  struct Phase {
    int64_t a, b;
    kernels::DirectConvGeom geom;
    std::vector<float> wt;
  };
  std::vector<Phase> phases;
  int64_t dyp_floats = 0, outv_floats = 0;
  for (int64_t a = 0; a < std::min(g.sh, g.kh); ++a) {
    for (int64_t b = 0; b < std::min(g.sw, g.kw); ++b) {
      const int64_t ku = (g.kh - a + g.sh - 1) / g.sh, kv = (g.kw - b + g.sw - 1) / g.sw;
      // Stride 1: padding k-1-p gives exactly dX [H, W]; otherwise the full convolution (k-1).
      const int64_t pad_u = unit ? g.kh - 1 - g.ph : ku - 1, pad_v = unit ? g.kw - 1 - g.pw : kv - 1;
      Phase phase{a, b, kernels::direct_conv_geom(g.O, g.C, g.Ho, g.Wo, ku, kv, 1, 1, pad_u, pad_v), {}};
      phase.wt.resize(static_cast<size_t>(g.C * g.O * ku * kv));
      kernels::phase_weight(w, phase.wt.data(), g.O, g.C, g.kh, g.kw, g.sh, g.sw, a, b);
      dyp_floats = std::max(dyp_floats, g.O * phase.geom.cstride);
      outv_floats = std::max(outv_floats, g.C * phase.geom.pv);
      phases.push_back(std::move(phase));
    }
  }
  parallel_for(g.N, 1, [&](int64_t n0, int64_t n1) {
    float* dyp = scratch(0, dyp_floats);
    float* outv = scratch(1, outv_floats);
    for (int64_t n = n0; n < n1; ++n) {
      const float* dy = pg + n * g.O * g.hw_out();
      float* dx = acc.data + n * g.C * g.hw_in();
      if (unit) {
        const Phase& phase = phases[0];
        kernels::pad_planes(dy, dyp, phase.geom);
        kernels::direct_conv_forward(dyp, phase.wt.data(), outv, phase.geom);
        kernels::unpad_outputs(outv, nullptr, dx, phase.geom, accumulate);
        continue;
      }
      if (!accumulate) std::fill(dx, dx + g.C * g.hw_in(), 0.0f);  // positions no tap reads stay 0
      for (const Phase& phase : phases) {
        kernels::pad_planes(dy, dyp, phase.geom);
        kernels::direct_conv_forward(dyp, phase.wt.data(), outv, phase.geom);
        kernels::add_phase_outputs(outv, phase.geom, dx, g.H, g.W, g.sh, g.sw, g.ph, g.pw, phase.a, phase.b);
      }
    }
  });
}

}  // namespace

void direct_weight_grad_into(const float* x, const float* dy, const ConvGeom& g, float* dw) {
  const kernels::DirectConvGeom fg = kernels::direct_conv_geom(g.C, g.O, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
  direct_weight_grad(x, dy, g, fg, {dw, 0.0f, Tensor()});
}

void direct_input_grad_into(const float* w, const float* dy, const ConvGeom& g, float* dx) {
  direct_input_grad(w, dy, g, {dx, 0.0f, Tensor()});
}

// x [N, C, H, W], weight [O, C, kh, kw], bias [O] or undefined -> out [N, O, Ho, Wo]
Tensor conv2d_direct(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& xc, const Tensor& wc,
                     const Tensor& bc, const ConvGeom& g) {
  const kernels::DirectConvGeom fg = kernels::direct_conv_geom(g.C, g.O, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
  Tensor out = make_tensor({g.N, g.O, g.Ho, g.Wo});
  {
    const float* px = xc.data();
    const float* pw = wc.data();
    const float* pb = bc.defined() ? bc.data() : nullptr;
    float* po = out.data();
    parallel_for(g.N, 1, [&](int64_t n0, int64_t n1) {
      float* xp = scratch(0, g.C * fg.cstride);
      float* outv = scratch(1, g.O * fg.pv);
      for (int64_t n = n0; n < n1; ++n) {
        kernels::pad_planes(px + n * g.C * g.hw_in(), xp, fg);
        kernels::direct_conv_forward(xp, pw, outv, fg);
        kernels::unpad_outputs(outv, pb, po + n * g.O * g.hw_out(), fg, false);
      }
    });
  }
  if (!should_record({x, weight, bias})) return out;
  SavedTensor sx = weight.requires_grad() ? save(xc, "conv2d") : SavedTensor();
  SavedTensor sw = x.requires_grad() ? save(wc, "conv2d") : SavedTensor();
  record("conv2d", out, {x, weight, bias}, [sx, sw, g, fg](const Tensor& grad_out, GradSink& s) {
    if (s.create_graph()) return backward_graph(grad_out, sx, sw, g, s);
    const Tensor gy = grad_out.contiguous();
    const float* pg = gy.data();
    if (s.needs(2)) bias_grad(pg, g, s.accumulate(2));
    if (s.needs(1)) direct_weight_grad(sx.get().data(), pg, g, fg, s.accumulate(1));
    if (s.needs(0)) direct_input_grad(sw.get().data(), pg, g, s.accumulate(0));
  });
  return out;
}

}  // namespace conv_detail
}  // namespace scalpel
