// Reductions: sum, mean, max, logsumexp, sum_to and argmax; forward and backward side by side.
//
// Every reduction views its (contiguous) input as [outer, R, inner] around the reduced dimension
// and accumulates in double, always in the order r = 0..R-1, so a sum's bits never depend on the
// thread count. Full reductions use a fixed chunking (kChunk elements) for the same reason.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {

namespace {

constexpr int64_t kChunk = 1 << 16;

using kernels::Split3;
using kernels::split_at;

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims_sorted, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    const bool reduced = std::find(dims_sorted.begin(), dims_sorted.end(), i) != dims_sorted.end();
    if (!reduced)
      out.push_back(shape[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, const Shape& shape, const char* op) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  std::vector<int64_t> out;
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t d = normalize_dim(dims[k], rank, op);
    if (std::find(out.begin(), out.end(), d) != out.end()) {
      throw std::invalid_argument(std::string(op) + ": dimension " + std::to_string(dims[k]) + " is listed twice in " +
                                  shape_str(dims) + " (tensor of shape " + shape_str(shape) + ")");
    }
    out.push_back(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// x [outer, R, inner] (contiguous) -> out [outer, inner] = sum over R, double accumulation.
void sum_dim_kernel(const float* x, float* out, const Split3& s) {
  if (s.inner == 1) {
    parallel_for(s.outer, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(s.r, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const float* p = x + o * s.r;
        double acc = 0.0;
        for (int64_t r = 0; r < s.r; ++r) acc += p[r];
        out[o] = static_cast<float>(acc);
      }
    });
    return;
  }
  // Parallel over (outer, inner block) pairs; each output element sums r = 0..R-1 in order.
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (s.inner + kBlock - 1) / kBlock;
  parallel_for(s.outer * blocks, std::max<int64_t>(1, kernels::kGrain / (kBlock * std::max<int64_t>(s.r, 1))),
               [&](int64_t b, int64_t e) {
                 double acc[kBlock];
                 for (int64_t w = b; w < e; ++w) {
                   const int64_t o = w / blocks;
                   const int64_t i0 = (w % blocks) * kBlock;
                   const int64_t n = std::min(kBlock, s.inner - i0);
                   for (int64_t i = 0; i < n; ++i) acc[i] = 0.0;
                   for (int64_t r = 0; r < s.r; ++r) {
                     const float* p = x + (o * s.r + r) * s.inner + i0;
                     for (int64_t i = 0; i < n; ++i) acc[i] += p[i];
                   }
                   float* q = out + o * s.inner + i0;
                   for (int64_t i = 0; i < n; ++i) q[i] = static_cast<float>(acc[i]);
                 }
               });
}

// Sum over the sorted dims, no autograd. Always a fresh tensor (never an alias of `a`).
Tensor sum_dims_data(const Tensor& a, const std::vector<int64_t>& dims_sorted) {
  if (dims_sorted.empty()) {
    Tensor copy = make_tensor(a.shape());
    kernels::copy_to_contiguous(a, copy.data());
    return copy;
  }
  Tensor x = a.contiguous();
  Shape shape = x.shape();
  // Reduce from the last listed dim to the first, keeping dims (size 1) so indices stay valid.
  for (size_t k = dims_sorted.size(); k-- > 0;) {
    const int64_t d = dims_sorted[k];
    const Split3 s = split_at(shape, d);
    shape[d] = 1;
    Tensor y = make_tensor(shape);
    sum_dim_kernel(x.data(), y.data(), s);
    x = y;
  }
  return x;
}

double sum_all_data(const Tensor& a) {
  Tensor x = a.contiguous();
  const float* p = x.data();
  const int64_t n = x.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(std::max<int64_t>(chunks, 1)), 0.0);
  parallel_for(chunks, 4, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double acc = 0.0;
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; ++i) acc += p[i];
      partial[c] = acc;
    }
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

// g (reduced shape) -> g viewed with keepdim ones and expanded to `input`.
Tensor expand_back(const Tensor& g, const Shape& input, const std::vector<int64_t>& dims_sorted) {
  Shape keep = input;
  for (int64_t d : dims_sorted) keep[d] = 1;
  return expand(g.reshape(keep), input);
}

}  // namespace

// a (any) -> scalar
Tensor sum(const Tensor& a) {
  Tensor out = Tensor::scalar(static_cast<float>(sum_all_data(a)));
  if (should_record({a})) {
    record("sum", out, {a}, [shape = a.shape()](const Tensor& g, GradSink& s) { s.add(0, expand(g, shape)); });
  }
  return out;
}

// a (A) -> A with `dims` removed (or kept as size 1)
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  const std::vector<int64_t> ds = normalize_dims(dims, a.shape(), "sum");
  Tensor out = sum_dims_data(a, ds).reshape(reduced_shape(a.shape(), ds, keepdim)).detach();
  if (should_record({a})) {
    record("sum_dim", out, {a},
           [shape = a.shape(), ds](const Tensor& g, GradSink& s) { s.add(0, expand_back(g, shape, ds)); });
  }
  return out;
}

Tensor mean(const Tensor& a) {
  if (a.numel() == 0) throw std::invalid_argument("mean: the tensor is empty (shape " + shape_str(a.shape()) + ")");
  const float inv = 1.0f / static_cast<float>(a.numel());
  Tensor out = Tensor::scalar(static_cast<float>(sum_all_data(a) / static_cast<double>(a.numel())));
  if (should_record({a})) {
    record("mean", out, {a},
           [shape = a.shape(), inv](const Tensor& g, GradSink& s) { s.add(0, expand(mul(g, inv), shape)); });
  }
  return out;
}

Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  const std::vector<int64_t> ds = normalize_dims(dims, a.shape(), "mean");
  int64_t count = 1;
  for (int64_t d : ds) count *= a.shape()[d];
  if (count == 0)
    throw std::invalid_argument("mean: reducing over an empty dimension (shape " + shape_str(a.shape()) + ")");
  const float inv = 1.0f / static_cast<float>(count);
  Tensor summed = sum_dims_data(a, ds);
  kernels::map_inplace(summed, [inv](float x) { return x * inv; });
  Tensor out = summed.reshape(reduced_shape(a.shape(), ds, keepdim)).detach();
  if (should_record({a})) {
    record("mean_dim", out, {a}, [shape = a.shape(), ds, inv](const Tensor& g, GradSink& s) {
      s.add(0, expand_back(mul(g, inv), shape, ds));
    });
  }
  return out;
}

// a (A) -> A without `dim`; gradient flows to the first maximal element.
Tensor max(const Tensor& a, int64_t dim, bool keepdim) {
  const int64_t d = normalize_dim(dim, a.dim(), "max");
  const Split3 s = split_at(a.shape(), d);
  if (s.r == 0)
    throw std::invalid_argument("max: dimension " + std::to_string(dim) + " is empty (shape " + shape_str(a.shape()) +
                                ")");
  Tensor x = a.contiguous();
  Shape keep = a.shape();
  keep[d] = 1;
  Tensor out = make_tensor(keep);
  auto idx = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(s.outer * s.inner));
  const float* px = x.data();
  float* po = out.data();
  parallel_for(s.outer, 1, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const float* p = px + o * s.r * s.inner + i;
        int64_t best = 0;
        float bv = p[0];
        for (int64_t r = 1; r < s.r; ++r) {
          const float v = p[r * s.inner];
          if (v > bv || (std::isnan(v) && !std::isnan(bv))) {
            bv = v;
            best = r;
          }
        }
        po[o * s.inner + i] = bv;
        (*idx)[o * s.inner + i] = best;
      }
    }
  });
  out = out.reshape(reduced_shape(a.shape(), {d}, keepdim)).detach();
  if (should_record({a})) {
    record("max", out, {a}, [shape = a.shape(), s, idx, keep](const Tensor& g, GradSink& sink) {
      // dx = g at each slice's first maximum, 0 elsewhere; in a create_graph sweep g times that
      // one-hot mask (a constant), so the result stays differentiable in g.
      const bool graph = sink.create_graph();
      Tensor gc = graph ? Tensor::ones(keep) : g.contiguous();
      Tensor dx = Tensor::zeros(shape);
      float* pd = dx.data();
      const float* pg = gc.data();
      for (int64_t o = 0; o < s.outer; ++o) {
        for (int64_t i = 0; i < s.inner; ++i) {
          pd[(o * s.r + (*idx)[o * s.inner + i]) * s.inner + i] = pg[o * s.inner + i];
        }
      }
      sink.add(0, graph ? mul(dx, g.reshape(keep)) : dx);
    });
  }
  return out;
}

Tensor max(const Tensor& a) { return max(a.reshape({a.numel()}), 0, false); }

// a (A) -> A without `dim`: log(sum(exp(a))) computed stably.
Tensor logsumexp(const Tensor& a, int64_t dim, bool keepdim) {
  const int64_t d = normalize_dim(dim, a.dim(), "logsumexp");
  const Split3 s = split_at(a.shape(), d);
  Tensor x = a.contiguous();
  Shape keep = a.shape();
  keep[d] = 1;
  Tensor out = make_tensor(keep);
  const float* px = x.data();
  float* po = out.data();
  parallel_for(s.outer, 1, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const float* p = px + o * s.r * s.inner + i;
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t r = 0; r < s.r; ++r) m = std::max(m, p[r * s.inner]);
        const float shift = std::isfinite(m) ? m : 0.0f;
        double acc = 0.0;
        for (int64_t r = 0; r < s.r; ++r) acc += std::exp(static_cast<double>(p[r * s.inner] - shift));
        po[o * s.inner + i] = shift + static_cast<float>(std::log(acc));
      }
    }
  });
  Tensor kept = out;
  out = out.reshape(reduced_shape(a.shape(), {d}, keepdim)).detach();
  if (should_record({a})) {
    record("logsumexp", out, {a},
           [sx = save(a, "logsumexp"), so = save(kept, "logsumexp"), keep, d](const Tensor& g, GradSink& sink) {
             // d/dx = g * exp(x - lse) = g * softmax(x)
             Tensor gk = g.reshape(keep);
             if (sink.create_graph()) {
               sink.add(0, mul(softmax(sink.saved(sx), d), gk));
               return;
             }
             Tensor sm = kernels::map2(sx.get(), so.get(), sx.get().shape(),
                                       [](float xv, float l) { return std::exp(xv - l); });
             sink.add(0, mul(sm, gk));
           });
  }
  return out;
}

// a (broadcast of S) -> S
Tensor sum_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  if (broadcast_shapes(shape, a.shape(), "sum_to") != a.shape()) {
    throw std::invalid_argument("sum_to: shape " + shape_str(a.shape()) + " cannot be summed down to " +
                                shape_str(shape));
  }
  const int64_t lead = a.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < a.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && a.shape()[i] != 1)) dims.push_back(i);
  }
  Tensor out = sum_dims_data(a, dims).reshape(shape).detach();
  if (should_record({a})) {
    record("sum_to", out, {a}, [full = a.shape()](const Tensor& g, GradSink& s) { s.add(0, expand(g, full)); });
  }
  return out;
}

IndexTensor argmax(const Tensor& a, int64_t dim) {
  const int64_t d = normalize_dim(dim, a.dim(), "argmax");
  const Split3 s = split_at(a.shape(), d);
  if (s.r == 0)
    throw std::invalid_argument("argmax: dimension " + std::to_string(dim) + " is empty (shape " +
                                shape_str(a.shape()) + ")");
  Tensor x = a.contiguous();
  Shape out_shape = reduced_shape(a.shape(), {d}, false);
  std::vector<int64_t> idx(static_cast<size_t>(s.outer * s.inner));
  const float* px = x.data();
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t i = 0; i < s.inner; ++i) {
      const float* p = px + o * s.r * s.inner + i;
      int64_t best = 0;
      for (int64_t r = 1; r < s.r; ++r) {
        const float v = p[r * s.inner], bv = p[best * s.inner];
        if (v > bv || (std::isnan(v) && !std::isnan(bv))) best = r;  // NaN is maximal, as in max()
      }
      idx[o * s.inner + i] = best;
    }
  }
  return IndexTensor(std::move(idx), out_shape);
}

}  // namespace scalpel
