// Pooling over [N, C, H, W]: max_pool2d, avg_pool2d, global_avg_pool2d, forward and backward side
// by side.
//
// Every kernel works plane by plane ((n, c) pairs, parallel): a plane's outputs read only that
// plane and its gradients write only that plane, in a fixed order, so results never depend on the
// thread count. Output sizes use PyTorch's floor mode: Ho = (H + 2*padding - kernel) / stride + 1.
// max_pool2d records, while grad is recorded, the flat in-plane index of each window's maximum
// (first maximum in row-major window order; a NaN is taken as the maximum, as in PyTorch), and its
// backward scatters the gradient there. avg_pool2d counts padded zeros in the window
// (count_include_pad=true), so every window divides by kernel*kernel.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {

namespace {

struct PoolGeom {
  int64_t planes, H, W, k, s, p, Ho, Wo;
};

// Validates a pooling call and returns its geometry. `op` names the op in error messages.
PoolGeom pool_geometry(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, const char* op) {
  const std::string name(op);
  if (!x.defined()) throw std::invalid_argument(name + ": the input is undefined");
  if (x.dim() != 4) {
    throw std::invalid_argument(name + ": input must be 4-D [N, C, H, W], got " + shape_str(x.shape()));
  }
  if (kernel <= 0) throw std::invalid_argument(name + ": kernel size must be positive, got " + std::to_string(kernel));
  if (stride <= 0) throw std::invalid_argument(name + ": stride must be positive, got " + std::to_string(stride));
  if (padding < 0 || padding > kernel / 2) {
    throw std::invalid_argument(name + ": padding must be in [0, kernel/2] = [0, " + std::to_string(kernel / 2) +
                                "], got " + std::to_string(padding) + " (kernel " + std::to_string(kernel) + ")");
  }
  PoolGeom g{};
  g.planes = x.size(0) * x.size(1);
  g.H = x.size(2);
  g.W = x.size(3);
  g.k = kernel;
  g.s = stride;
  g.p = padding;
  if (g.H + 2 * padding < kernel || g.W + 2 * padding < kernel) {
    throw std::invalid_argument(name + ": kernel " + std::to_string(kernel) + " is larger than the padded input " +
                                std::to_string(g.H + 2 * padding) + "x" + std::to_string(g.W + 2 * padding) +
                                " (input " + shape_str(x.shape()) + ", padding " + std::to_string(padding) + ")");
  }
  g.Ho = (g.H + 2 * padding - kernel) / stride + 1;
  g.Wo = (g.W + 2 * padding - kernel) / stride + 1;
  return g;
}

int64_t plane_grain(const PoolGeom& g) {
  return std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(g.Ho * g.Wo * g.k * g.k, 1));
}

// dY [planes, Ho, Wo] -> dX [planes, H, W]: each window's dY / k^2 added over the window (written
// or added per acc.beta).
void avg_pool2d_grad_into(const float* pg, const PoolGeom& g, GradSink::Accum acc) {
  const float inv = 1.0f / static_cast<float>(g.k * g.k);
  const bool fresh = acc.beta == 0.0f;
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      float* dx = acc.data + pl * g.H * g.W;
      if (fresh) std::memset(dx, 0, static_cast<size_t>(g.H * g.W) * sizeof(float));
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t h0 = std::max<int64_t>(oh * g.s - g.p, 0), h1 = std::min(oh * g.s - g.p + g.k, g.H);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t w0 = std::max<int64_t>(ow * g.s - g.p, 0), w1 = std::min(ow * g.s - g.p + g.k, g.W);
          const float d = pg[(pl * g.Ho + oh) * g.Wo + ow] * inv;
          for (int64_t ih = h0; ih < h1; ++ih) {
            for (int64_t iw = w0; iw < w1; ++iw) dx[ih * g.W + iw] += d;
          }
        }
      }
    }
  });
}

// avg_pool2d's backward as a differentiable op (create_graph sweeps): linear in dY, and its own
// gradient is avg_pool2d again.
Tensor avg_pool2d_grad(const Tensor& dy, const PoolGeom& g, const Shape& x_shape) {
  Tensor out = make_tensor(x_shape);
  avg_pool2d_grad_into(dy.contiguous().data(), g, {out.data(), 0.0f, Tensor()});
  if (should_record({dy})) {
    record("avg_pool2d_grad", out, {dy}, [g](const Tensor& u, GradSink& s) { s.add(0, avg_pool2d(u, g.k, g.s, g.p)); });
  }
  return out;
}

}  // namespace

// x [N, C, H, W] -> out [N, C, Ho, Wo]; window max over padded (-inf) input
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const PoolGeom g = pool_geometry(x, kernel, stride, padding, "max_pool2d");
  if (g.H * g.W > std::numeric_limits<int32_t>::max()) {
    throw std::invalid_argument("max_pool2d: planes of " + std::to_string(g.H * g.W) + " elements are too large");
  }
  const Tensor xc = x.contiguous();
  Tensor out = make_tensor({x.size(0), x.size(1), g.Ho, g.Wo});
  const bool rec = should_record({x});
  // argmax [planes, Ho, Wo]: flat index inside the input plane, kept for backward only.
  auto argmax = rec ? std::make_shared<std::vector<int32_t>>(static_cast<size_t>(g.planes * g.Ho * g.Wo))
                    : std::shared_ptr<std::vector<int32_t>>();
  const float* px = xc.data();
  float* po = out.data();
  int32_t* pi = rec ? argmax->data() : nullptr;
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const float* xp = px + pl * g.H * g.W;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t h0 = std::max<int64_t>(oh * g.s - g.p, 0), h1 = std::min(oh * g.s - g.p + g.k, g.H);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t w0 = std::max<int64_t>(ow * g.s - g.p, 0), w1 = std::min(ow * g.s - g.p + g.k, g.W);
          float best = -std::numeric_limits<float>::infinity();
          int64_t best_i = h0 * g.W + w0;
          for (int64_t ih = h0; ih < h1; ++ih) {
            for (int64_t iw = w0; iw < w1; ++iw) {
              const float v = xp[ih * g.W + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                best_i = ih * g.W + iw;
              }
            }
          }
          const int64_t o = (pl * g.Ho + oh) * g.Wo + ow;
          po[o] = best;
          if (pi) pi[o] = static_cast<int32_t>(best_i);
        }
      }
    }
  });
  if (rec) {
    record("max_pool2d", out, {x}, [argmax, g](const Tensor& grad_out, GradSink& s) {
      if (s.create_graph()) {  // each window's gradient lands on its maximum: a scatter_add per plane
        const int64_t hwo = g.Ho * g.Wo;
        IndexTensor idx(std::vector<int64_t>(argmax->begin(), argmax->end()), {g.planes, hwo});
        const Tensor dx = scatter_add(Tensor::zeros({g.planes, g.H * g.W}), 1, idx, grad_out.reshape({g.planes, hwo}));
        s.add(0, dx.reshape(s.input_shape(0)));
        return;
      }
      const Tensor gy = grad_out.contiguous();
      const float* pg = gy.data();
      const int32_t* idx = argmax->data();
      GradSink::Accum acc = s.accumulate(0);
      const bool fresh = acc.beta == 0.0f;
      parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
        for (int64_t pl = p0; pl < p1; ++pl) {
          float* dx = acc.data + pl * g.H * g.W;
          if (fresh) std::memset(dx, 0, static_cast<size_t>(g.H * g.W) * sizeof(float));
          const int64_t base = pl * g.Ho * g.Wo;
          for (int64_t o = 0; o < g.Ho * g.Wo; ++o) dx[idx[base + o]] += pg[base + o];
        }
      });
    });
  }
  return out;
}

// x [N, C, H, W] -> out [N, C, Ho, Wo]; window sum / (kernel * kernel), padded zeros included
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const PoolGeom g = pool_geometry(x, kernel, stride, padding, "avg_pool2d");
  const Tensor xc = x.contiguous();
  Tensor out = make_tensor({x.size(0), x.size(1), g.Ho, g.Wo});
  const float inv = 1.0f / static_cast<float>(g.k * g.k);
  const float* px = xc.data();
  float* po = out.data();
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const float* xp = px + pl * g.H * g.W;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t h0 = std::max<int64_t>(oh * g.s - g.p, 0), h1 = std::min(oh * g.s - g.p + g.k, g.H);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t w0 = std::max<int64_t>(ow * g.s - g.p, 0), w1 = std::min(ow * g.s - g.p + g.k, g.W);
          float sum = 0.0f;
          for (int64_t ih = h0; ih < h1; ++ih) {
            for (int64_t iw = w0; iw < w1; ++iw) sum += xp[ih * g.W + iw];
          }
          po[(pl * g.Ho + oh) * g.Wo + ow] = sum * inv;
        }
      }
    }
  });
  if (should_record({x})) {
    record("avg_pool2d", out, {x}, [g](const Tensor& grad_out, GradSink& s) {
      if (s.create_graph()) {
        s.add(0, avg_pool2d_grad(grad_out, g, s.input_shape(0)));
        return;
      }
      avg_pool2d_grad_into(grad_out.contiguous().data(), g, s.accumulate(0));
    });
  }
  return out;
}

// x [N, C, H, W] -> out [N, C]; mean over each H x W plane (accumulated in double)
Tensor global_avg_pool2d(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("global_avg_pool2d: the input is undefined");
  if (x.dim() != 4) {
    throw std::invalid_argument("global_avg_pool2d: input must be 4-D [N, C, H, W], got " + shape_str(x.shape()));
  }
  const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  if (hw == 0) {
    throw std::invalid_argument("global_avg_pool2d: input " + shape_str(x.shape()) + " has empty planes");
  }
  const Tensor xc = x.contiguous();
  Tensor out = make_tensor({x.size(0), x.size(1)});
  const float* px = xc.data();
  float* po = out.data();
  const int64_t grain = std::max<int64_t>(1, kernels::kGrain / hw);
  parallel_for(planes, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      double sum = 0.0;
      for (int64_t i = 0; i < hw; ++i) sum += px[pl * hw + i];
      po[pl] = static_cast<float>(sum / static_cast<double>(hw));
    }
  });
  if (should_record({x})) {
    record("global_avg_pool2d", out, {x}, [planes, hw, grain](const Tensor& grad_out, GradSink& s) {
      if (s.create_graph()) {
        const Shape& in = s.input_shape(0);
        s.add(0, expand(mul(grad_out, 1.0f / static_cast<float>(hw)).reshape({in[0], in[1], 1, 1}), in));
        return;
      }
      const Tensor gy = grad_out.contiguous();
      const float* pg = gy.data();
      GradSink::Accum acc = s.accumulate(0);
      const float inv = 1.0f / static_cast<float>(hw);
      const bool fresh = acc.beta == 0.0f;
      parallel_for(planes, grain, [&](int64_t p0, int64_t p1) {
        for (int64_t pl = p0; pl < p1; ++pl) {
          const float d = pg[pl] * inv;
          float* dx = acc.data + pl * hw;
          if (fresh) {
            for (int64_t i = 0; i < hw; ++i) dx[i] = d;
          } else {
            for (int64_t i = 0; i < hw; ++i) dx[i] += d;
          }
        }
      });
    });
  }
  return out;
}

}  // namespace scalpel
