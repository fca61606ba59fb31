// Elementwise loop machinery shared by the op families: strided N-operand iteration with
// broadcasting, dimension coalescing, fast contiguous paths and OpenMP chunking.
//
// Everything here is data-only (no autograd). Ops in core/ops/*.cpp call these to compute their
// forward and backward values. Work is split with parallel_for over rows of the coalesced shape;
// each output element is computed by exactly one thread from the same inputs, so results do not
// depend on the thread count.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "core/parallel.h"
#include "core/tensor.h"

// On the contiguous fast paths of map/map2: inline the whole element function (and what it calls)
// into the loop, so that the loop can vectorize even when the function is large (GELU's derivative
// with its exp and erf).
#define SCALPEL_FLATTEN __attribute__((flatten))

namespace scalpel {
namespace kernels {

// A tensor viewed as [outer, R, inner] around dimension d: the layout every reduction and
// softmax-style kernel works on (after contiguous()).
struct Split3 {
  int64_t outer = 1, r = 1, inner = 1;
};
inline Split3 split_at(const Shape& shape, int64_t d) {
  Split3 s;
  for (int64_t i = 0; i < d; ++i) s.outer *= shape[i];
  s.r = shape[d];
  for (size_t i = d + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

// Minimum elements per thread before a loop goes parallel.
constexpr int64_t kGrain = 32768;

// A view reduced to its essentials for iteration: shape with strides per operand.
template <size_t N>
struct Layout {
  Shape shape;
  std::array<Shape, N> strides;
};

// Drops size-1 dimensions and merges dimensions that are contiguous for every operand, so that
// the innermost loop is as long as possible.
template <size_t N>
Layout<N> coalesce(const Shape& shape, const std::array<Shape, N>& strides) {
  Layout<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!out.shape.empty()) {
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k) {
        if (out.strides[k].back() != strides[k][d] * shape[d]) mergeable = false;
      }
      if (mergeable) {
        out.shape.back() *= shape[d];
        for (size_t k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
        continue;
      }
    }
    out.shape.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
  }
  if (out.shape.empty()) {  // scalar or all-ones shape
    out.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// Calls row(offsets, inner, inner_strides) for every row of the coalesced layout, where a row is
// the innermost dimension and offsets[k] is operand k's element offset of the row's start.
template <size_t N, class RowFn>
void for_each_row(const Shape& shape, const std::array<Shape, N>& strides, RowFn&& row) {
  for (int64_t s : shape) {
    if (s == 0) return;  // an empty view has no rows (and may have no storage to point into)
  }
  const Layout<N> L = coalesce<N>(shape, strides);
  const int64_t rank = static_cast<int64_t>(L.shape.size());
  const int64_t inner = L.shape.back();
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = L.strides[k].back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < rank; ++d) rows *= L.shape[d];
  const int64_t grain_rows = std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1));
  parallel_for(rows, grain_rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      std::array<int64_t, N> off{};
      int64_t rem = r;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const int64_t i = rem % L.shape[d];
        rem /= L.shape[d];
        for (size_t k = 0; k < N; ++k) off[k] += i * L.strides[k][d];
      }
      row(off, inner, inner_strides);
    }
  });
}

inline void fill(float* p, int64_t n, float v) {
  parallel_for(n, kGrain, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = v;
  });
}

// out = f(a), elementwise, into a fresh contiguous tensor.
template <class F>
Tensor map(const Tensor& a, F f) {
  Tensor out = make_tensor(a.shape());
  float* po = out.data();
  const float* pa = a.data();
  if (a.is_contiguous()) {
    parallel_for(a.numel(), kGrain, [=](int64_t b, int64_t e) SCALPEL_FLATTEN {
      for (int64_t i = b; i < e; ++i) po[i] = f(pa[i]);
    });
    return out;
  }
  for_each_row<2>(a.shape(), {out.strides(), a.strides()},
                  [=](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    float* o = po + off[0];
                    const float* x = pa + off[1];
                    for (int64_t j = 0; j < n; ++j) o[j * st[0]] = f(x[j * st[1]]);
                  });
  return out;
}

// out = f(a, b) with broadcasting, into a fresh contiguous tensor of shape `out_shape`.
template <class F>
Tensor map2(const Tensor& a, const Tensor& b, const Shape& out_shape, F f) {
  Tensor out = make_tensor(out_shape);
  float* po = out.data();
  const float* pa = a.data();
  const float* pb = b.data();
  const int64_t n = out.numel();
  if (a.shape() == out_shape && b.shape() == out_shape && a.is_contiguous() && b.is_contiguous()) {
    parallel_for(n, kGrain, [=](int64_t s, int64_t e) SCALPEL_FLATTEN {
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
    });
    return out;
  }
  if (b.numel() == 1 && a.shape() == out_shape && a.is_contiguous()) {
    const float vb = pb[0];
    parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], vb);
    });
    return out;
  }
  if (a.numel() == 1 && b.shape() == out_shape && b.is_contiguous()) {
    const float va = pa[0];
    parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) po[i] = f(va, pb[i]);
    });
    return out;
  }
  for_each_row<3>(out_shape,
                  {out.strides(), broadcast_strides(a.shape(), a.strides(), out_shape),
                   broadcast_strides(b.shape(), b.strides(), out_shape)},
                  [=](const std::array<int64_t, 3>& off, int64_t m, const std::array<int64_t, 3>& st) {
                    float* o = po + off[0];
                    const float* x = pa + off[1];
                    const float* y = pb + off[2];
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                      for (int64_t j = 0; j < m; ++j) o[j] = f(x[j], y[j]);
                    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                      const float yv = y[0];
                      for (int64_t j = 0; j < m; ++j) o[j] = f(x[j], yv);
                    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                      const float xv = x[0];
                      for (int64_t j = 0; j < m; ++j) o[j] = f(xv, y[j]);
                    } else {
                      for (int64_t j = 0; j < m; ++j) o[j * st[0]] = f(x[j * st[1]], y[j * st[2]]);
                    }
                  });
  return out;
}

// out = f(a, b, c) with broadcasting of all three into `out_shape`.
template <class F>
Tensor map3(const Tensor& a, const Tensor& b, const Tensor& c, const Shape& out_shape, F f) {
  Tensor out = make_tensor(out_shape);
  float* po = out.data();
  const float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  for_each_row<4>(
      out_shape,
      {out.strides(), broadcast_strides(a.shape(), a.strides(), out_shape),
       broadcast_strides(b.shape(), b.strides(), out_shape), broadcast_strides(c.shape(), c.strides(), out_shape)},
      [=](const std::array<int64_t, 4>& off, int64_t m, const std::array<int64_t, 4>& st) {
        for (int64_t j = 0; j < m; ++j) {
          po[off[0] + j * st[0]] = f(pa[off[1] + j * st[1]], pb[off[2] + j * st[2]], pc[off[3] + j * st[3]]);
        }
      });
  return out;
}

// In-place writes need every element of dst at its own address: a stride-0 view (from expand())
// would apply f several times to one value. Throws std::invalid_argument naming shape and strides.
inline void check_no_internal_overlap(const Tensor& dst) {
  for (int64_t d = 0; d < dst.dim(); ++d) {
    if (dst.strides()[d] == 0 && dst.shape()[d] > 1) {
      throw std::invalid_argument("in-place operation on a view whose elements overlap in memory (shape " +
                                  shape_str(dst.shape()) + ", strides " + shape_str(dst.strides()) +
                                  ", e.g. from expand()); write into a clone() or contiguous() copy instead");
    }
  }
}

// dst = f(dst) in place (dst may be any strided view without overlapping elements).
template <class F>
void map_inplace(Tensor& dst, F f) {
  check_no_internal_overlap(dst);
  float* pd = dst.data();
  if (dst.is_contiguous()) {
    parallel_for(dst.numel(), kGrain, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) pd[i] = f(pd[i]);
    });
    return;
  }
  for_each_row<1>(dst.shape(), {dst.strides()},
                  [=](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
                    for (int64_t j = 0; j < n; ++j) pd[off[0] + j * st[0]] = f(pd[off[0] + j * st[0]]);
                  });
}

inline void copy_to_contiguous(const Tensor& src, float* dst);

// dst = f(dst, src) in place, src broadcast to dst's shape. A src that shares dst's storage other
// than element for element (x.add_(x.t()), a shifted narrow, a broadcast row of dst) is read from
// a copy first, so no element is read after it was overwritten.
template <class F>
void binary_inplace(Tensor& dst, const Tensor& src, F f) {
  check_no_internal_overlap(dst);
  if (src.storage() == dst.storage() &&
      !(src.offset() == dst.offset() && src.shape() == dst.shape() && src.strides() == dst.strides())) {
    Tensor copy = make_tensor(src.shape());
    copy_to_contiguous(src, copy.data());
    binary_inplace(dst, copy, f);
    return;
  }
  float* pd = dst.data();
  const float* ps = src.data();
  if (dst.is_contiguous() && src.is_contiguous() && src.shape() == dst.shape()) {
    parallel_for(dst.numel(), kGrain, [=](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) pd[i] = f(pd[i], ps[i]);
    });
    return;
  }
  for_each_row<2>(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(), dst.shape())},
                  [=](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    for (int64_t j = 0; j < n; ++j) {
                      float& d = pd[off[0] + j * st[0]];
                      d = f(d, ps[off[1] + j * st[1]]);
                    }
                  });
}

// Row-major copy of any view into `dst` (contiguous, same numel).
inline void copy_to_contiguous(const Tensor& src, float* dst) {
  const float* ps = src.data();
  if (src.is_contiguous()) {
    if (src.numel() > 0) std::memcpy(dst, ps, static_cast<size_t>(src.numel()) * sizeof(float));
    return;
  }
  for_each_row<2>(src.shape(), {contiguous_strides(src.shape()), src.strides()},
                  [=](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    float* o = dst + off[0];
                    const float* x = ps + off[1];
                    if (st[1] == 1) {
                      std::memcpy(o, x, static_cast<size_t>(n) * sizeof(float));
                    } else {
                      for (int64_t j = 0; j < n; ++j) o[j * st[0]] = x[j * st[1]];
                    }
                  });
}

}  // namespace kernels
}  // namespace scalpel
