// Shape ops: views (reshape, view, transpose, permute, narrow, select, (un)squeeze, expand),
// contiguous/clone, and the copying ops concat, stack, index_select, gather, embedding and pad2d.
// Forward and backward side by side. Views share storage with their input; their backward maps
// the gradient back through the inverse view.
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {

namespace {

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": the input tensor is undefined");
}

// Resolves one -1 entry and checks the element count.
Shape infer_shape(const Shape& requested, int64_t numel, const Shape& from, const char* op) {
  Shape s = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0)
        throw std::invalid_argument(std::string(op) + ": only one dimension can be -1, got " + shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else if (s[i] < 0) {
      throw std::invalid_argument(std::string(op) + ": invalid size in " + shape_str(requested));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) {
      throw std::invalid_argument(std::string(op) + ": cannot reshape " + shape_str(from) + " (" +
                                  std::to_string(numel) + " elements) into " + shape_str(requested));
    }
    s[infer] = numel / known;
  } else if (known != numel) {
    throw std::invalid_argument(std::string(op) + ": cannot reshape " + shape_str(from) + " (" + std::to_string(numel) +
                                " elements) into " + shape_str(requested) + " (" + std::to_string(known) +
                                " elements)");
  }
  return s;
}

// Strides that let `shape` view the same elements as (old_shape, old_strides) in row-major order,
// or an empty result when no such view exists (then a copy is needed).
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape, Shape& out) {
  out.assign(shape.size(), 0);
  if (shape_numel(old_shape) == 0 || old_shape.empty()) {
    out = contiguous_strides(shape);
    return true;
  }
  // Walk groups of old dims that are contiguous among themselves and match groups of new dims.
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Tensor view_impl(const Tensor& a, const Shape& shape, const Shape& strides, int64_t offset, const char* name,
                 Node::BackwardFn fn) {
  Tensor out = make_view(a, shape, strides, offset);
  if (should_record({a})) record(name, out, {a}, std::move(fn));
  return out;
}

}  // namespace

// a (A) -> (shape), same elements in row-major order; a view when strides allow, else a copy
Tensor reshape(const Tensor& a, const Shape& requested) {
  check_defined(a, "reshape");
  const Shape shape = infer_shape(requested, a.numel(), a.shape(), "reshape");
  Shape strides;
  if (view_strides(a.shape(), a.strides(), shape, strides)) {
    return view_impl(a, shape, strides, a.offset(), "reshape",
                     [in = a.shape()](const Tensor& g, GradSink& s) { s.add(0, g.reshape(in)); });
  }
  return contiguous(a).view(shape);
}

Tensor view(const Tensor& a, const Shape& requested) {
  check_defined(a, "view");
  const Shape shape = infer_shape(requested, a.numel(), a.shape(), "view");
  Shape strides;
  if (!view_strides(a.shape(), a.strides(), shape, strides)) {
    throw std::invalid_argument("view: a tensor of shape " + shape_str(a.shape()) + " with strides " +
                                shape_str(a.strides()) + " cannot be viewed as " + shape_str(shape) +
                                "; use reshape() (which copies) or call contiguous() first");
  }
  return view_impl(a, shape, strides, a.offset(), "view",
                   [in = a.shape()](const Tensor& g, GradSink& s) { s.add(0, g.reshape(in)); });
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  check_defined(a, "transpose");
  const int64_t i = normalize_dim(d0, a.dim(), "transpose");
  const int64_t j = normalize_dim(d1, a.dim(), "transpose");
  Shape shape = a.shape(), strides = a.strides();
  std::swap(shape[i], shape[j]);
  std::swap(strides[i], strides[j]);
  return view_impl(a, shape, strides, a.offset(), "transpose",
                   [i, j](const Tensor& g, GradSink& s) { s.add(0, g.transpose(i, j)); });
}

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  check_defined(a, "permute");
  if (static_cast<int64_t>(dims.size()) != a.dim()) {
    throw std::invalid_argument("permute: got " + std::to_string(dims.size()) + " dims for a tensor of shape " +
                                shape_str(a.shape()));
  }
  std::vector<int64_t> p(dims.size()), inverse(dims.size());
  std::vector<char> seen(dims.size(), 0);
  Shape shape(dims.size()), strides(dims.size());
  for (size_t k = 0; k < dims.size(); ++k) {
    p[k] = normalize_dim(dims[k], a.dim(), "permute");
    if (seen[p[k]]++) {
      throw std::invalid_argument("permute: dimension " + std::to_string(dims[k]) + " is repeated in " +
                                  shape_str(dims) + " (tensor of shape " + shape_str(a.shape()) + ")");
    }
    shape[k] = a.shape()[p[k]];
    strides[k] = a.strides()[p[k]];
    inverse[p[k]] = static_cast<int64_t>(k);
  }
  return view_impl(a, shape, strides, a.offset(), "permute",
                   [inverse](const Tensor& g, GradSink& s) { s.add(0, g.permute(inverse)); });
}

namespace {
// Adds g into the region [start, start+len) of dim `d` of input 0's gradient; in a create_graph
// sweep, g between zero blocks (concat), so it stays differentiable.
void add_into_region(GradSink& s, const Tensor& g, int64_t d, int64_t start) {
  if (s.create_graph()) {
    const Shape& in = s.input_shape(0);
    std::vector<Tensor> parts;
    Shape before = in, after = in;
    before[d] = start;
    after[d] = in[d] - start - g.shape()[d];
    if (before[d] > 0) parts.push_back(Tensor::zeros(before));
    parts.push_back(g);
    if (after[d] > 0) parts.push_back(Tensor::zeros(after));
    s.add(0, parts.size() == 1 ? g : concat(parts, d));
    return;
  }
  GradSink::Accum acc = s.accumulate(0);
  Tensor buf = acc.buffer;
  if (acc.beta == 0.0f) kernels::fill(buf.data(), buf.numel(), 0.0f);
  Tensor region = make_view(buf, g.shape(), buf.strides(), buf.offset() + start * buf.strides()[d]);
  kernels::binary_inplace(region, g, [](float x, float y) { return x + y; });
}
}  // namespace

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  check_defined(a, "narrow");
  const int64_t d = normalize_dim(dim, a.dim(), "narrow");
  const int64_t n = a.shape()[d];
  if (start < 0) start += n;
  if (start < 0 || length < 0 || start + length > n) {
    throw std::invalid_argument("narrow: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                                ") is out of bounds for dimension " + std::to_string(dim) + " of shape " +
                                shape_str(a.shape()));
  }
  Shape shape = a.shape();
  shape[d] = length;
  return view_impl(a, shape, a.strides(), a.offset() + start * a.strides()[d], "narrow",
                   [d, start](const Tensor& g, GradSink& s) { add_into_region(s, g, d, start); });
}

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  check_defined(a, "select");
  const int64_t d = normalize_dim(dim, a.dim(), "select");
  const int64_t n = a.shape()[d];
  const int64_t i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) {
    throw std::invalid_argument("select: index " + std::to_string(index) + " is out of range for dimension " +
                                std::to_string(dim) + " of shape " + shape_str(a.shape()));
  }
  Shape shape = a.shape(), strides = a.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return view_impl(a, shape, strides, a.offset() + i * a.strides()[d], "select",
                   [d, i](const Tensor& g, GradSink& s) { add_into_region(s, g.unsqueeze(d), d, i); });
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  check_defined(a, "unsqueeze");
  const int64_t d = normalize_dim(dim, a.dim() + 1, "unsqueeze");
  Shape shape = a.shape(), strides = a.strides();
  const int64_t st = d < a.dim() ? a.strides()[d] * a.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, st);
  return view_impl(a, shape, strides, a.offset(), "unsqueeze",
                   [in = a.shape()](const Tensor& g, GradSink& s) { s.add(0, g.reshape(in)); });
}

Tensor squeeze(const Tensor& a, int64_t dim) {
  check_defined(a, "squeeze");
  const int64_t d = normalize_dim(dim, a.dim(), "squeeze");
  if (a.shape()[d] != 1) {
    throw std::invalid_argument("squeeze: dimension " + std::to_string(dim) + " has size " +
                                std::to_string(a.shape()[d]) + ", expected 1 (shape " + shape_str(a.shape()) + ")");
  }
  Shape shape = a.shape(), strides = a.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return view_impl(a, shape, strides, a.offset(), "squeeze",
                   [in = a.shape()](const Tensor& g, GradSink& s) { s.add(0, g.reshape(in)); });
}

Tensor expand(const Tensor& a, const Shape& shape) {
  check_defined(a, "expand");
  if (broadcast_shapes(a.shape(), shape, "expand") != shape) {
    throw std::invalid_argument("expand: shape " + shape_str(a.shape()) + " cannot be expanded to " + shape_str(shape));
  }
  if (a.shape() == shape) return a;
  return view_impl(a, shape, broadcast_strides(a.shape(), a.strides(), shape), a.offset(), "expand",
                   [in = a.shape()](const Tensor& g, GradSink& s) { s.add(0, sum_to(g, in)); });
}

// a (A, any strides) -> (A) row-major; returns `a` itself when already contiguous
Tensor contiguous(const Tensor& a) {
  check_defined(a, "contiguous");
  if (a.is_contiguous()) return a;
  return clone(a);
}

Tensor clone(const Tensor& a) {
  check_defined(a, "clone");
  Tensor out = make_tensor(a.shape());
  kernels::copy_to_contiguous(a, out.data());
  if (should_record({a})) record("clone", out, {a}, [](const Tensor& g, GradSink& s) { s.add(0, g); });
  return out;
}

// tensors[k] (A with size n_k at dim) -> A with size sum(n_k) at dim
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw std::invalid_argument("concat: expected at least one tensor");
  const Tensor& first = tensors[0];
  check_defined(first, "concat");
  const int64_t d = normalize_dim(dim, first.dim(), "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k];
    check_defined(t, "concat");
    bool ok = t.dim() == first.dim();
    for (int64_t i = 0; ok && i < t.dim(); ++i) {
      if (i != d && t.shape()[i] != first.shape()[i]) ok = false;
    }
    if (!ok) {
      throw std::invalid_argument("concat: tensor " + std::to_string(k) + " has shape " + shape_str(t.shape()) +
                                  ", expected " + shape_str(first.shape()) + " except in dimension " +
                                  std::to_string(d));
    }
    shape[d] += t.shape()[d];
  }
  Tensor out = make_tensor(shape);
  std::vector<int64_t> starts;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    Tensor region = make_view(out, t.shape(), out.strides(), start * out.strides()[d]);
    kernels::binary_inplace(region, t, [](float, float y) { return y; });
    start += t.shape()[d];
  }
  if (should_record(tensors)) {
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors) sizes.push_back(t.shape()[d]);
    record("concat", out, tensors, [d, starts, sizes](const Tensor& g, GradSink& s) {
      for (size_t k = 0; k < starts.size(); ++k) {
        if (s.needs(k)) s.add(k, g.narrow(d, starts[k], sizes[k]));
      }
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw std::invalid_argument("stack: expected at least one tensor");
  check_defined(tensors[0], "stack");
  const int64_t d = normalize_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t k = 0; k < tensors.size(); ++k) {
    check_defined(tensors[k], "stack");
    if (tensors[k].shape() != tensors[0].shape()) {
      throw std::invalid_argument("stack: tensor " + std::to_string(k) + " has shape " + shape_str(tensors[k].shape()) +
                                  ", expected " + shape_str(tensors[0].shape()) + " like tensor 0");
    }
    parts.push_back(tensors[k].unsqueeze(d));
  }
  return concat(parts, d);
}

namespace {
void check_index_range(const IndexTensor& index, int64_t n, const char* op, const Shape& shape, int64_t dim) {
  for (int64_t v : index.data) {
    if (v < 0 || v >= n) {
      throw std::invalid_argument(std::string(op) + ": index " + std::to_string(v) + " is out of range [0, " +
                                  std::to_string(n) + ") for dimension " + std::to_string(dim) + " of shape " +
                                  shape_str(shape));
    }
  }
}
}  // namespace

// a (A with size n at dim), index [m] -> A with size m at dim
Tensor index_select(const Tensor& a, int64_t dim, const IndexTensor& index) {
  check_defined(a, "index_select");
  const int64_t d = normalize_dim(dim, a.dim(), "index_select");
  if (index.dim() != 1)
    throw std::invalid_argument("index_select: index must be 1-D, got shape " + shape_str(index.shape));
  check_index_range(index, a.shape()[d], "index_select", a.shape(), d);
  const Tensor x = a.contiguous();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= a.shape()[i];
  for (int64_t i = d + 1; i < a.dim(); ++i) inner *= a.shape()[i];
  const int64_t n = a.shape()[d], m = index.numel();
  Shape shape = a.shape();
  shape[d] = m;
  Tensor out = make_tensor(shape);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < m; ++k) {
      std::memcpy(out.data() + (o * m + k) * inner, x.data() + (o * n + index.data[k]) * inner,
                  static_cast<size_t>(inner) * sizeof(float));
    }
  }
  if (should_record({a})) {
    record("index_select", out, {a}, [index, outer, inner, n, m, d](const Tensor& g, GradSink& s) {
      if (s.create_graph()) {
        s.add(0, index_add(Tensor::zeros(s.input_shape(0)), d, index, g));
        return;
      }
      const Tensor gc = g.contiguous();
      GradSink::Accum acc = s.accumulate(0);
      if (acc.beta == 0.0f) kernels::fill(acc.data, outer * n * inner, 0.0f);
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < m; ++k) {
          float* dst = acc.data + (o * n + index.data[k]) * inner;
          const float* src = gc.data() + (o * m + k) * inner;
          for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
        }
      }
    });
  }
  return out;
}

// a (A), index (I, same rank, I[j] <= A[j] for j != dim) -> out (I); out[..i..] = a[..index[..i..]..]
Tensor gather(const Tensor& a, int64_t dim, const IndexTensor& index) {
  check_defined(a, "gather");
  const int64_t d = normalize_dim(dim, a.dim(), "gather");
  if (index.dim() != a.dim()) {
    throw std::invalid_argument("gather: index has shape " + shape_str(index.shape) + ", expected rank " +
                                std::to_string(a.dim()) + " like the input " + shape_str(a.shape()));
  }
  for (int64_t i = 0; i < a.dim(); ++i) {
    if (i != d && index.shape[i] > a.shape()[i]) {
      throw std::invalid_argument("gather: index shape " + shape_str(index.shape) + " exceeds input shape " +
                                  shape_str(a.shape()) + " in dimension " + std::to_string(i));
    }
  }
  check_index_range(index, a.shape()[d], "gather", a.shape(), d);
  Tensor out = make_tensor(index.shape);
  const Shape istr = contiguous_strides(index.shape);
  const int64_t total = index.numel();
  // Offset of every gathered element in the input, computed once and reused by backward.
  auto offsets = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(total));
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t rem = flat, off = a.offset();
    for (int64_t i = 0; i < a.dim(); ++i) {
      const int64_t c = rem / istr[i];
      rem %= istr[i];
      off += (i == d ? index.data[flat] : c) * a.strides()[i];
    }
    (*offsets)[flat] = off;
  }
  const float* base = a.storage()->data();
  for (int64_t flat = 0; flat < total; ++flat) out.data()[flat] = base[(*offsets)[flat]];
  if (should_record({a})) {
    record("gather", out, {a}, [index, d, shape = a.shape()](const Tensor& g, GradSink& s) {
      if (s.create_graph()) {
        s.add(0, scatter_add(Tensor::zeros(shape), d, index, g));
        return;
      }
      const Tensor gc = g.contiguous();
      GradSink::Accum acc = s.accumulate(0);
      if (acc.beta == 0.0f) kernels::fill(acc.data, shape_numel(shape), 0.0f);
      const Shape istr = contiguous_strides(index.shape);
      const Shape astr = contiguous_strides(shape);
      for (int64_t flat = 0; flat < index.numel(); ++flat) {
        int64_t rem = flat, off = 0;
        for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
          const int64_t c = rem / istr[i];
          rem %= istr[i];
          off += (i == d ? index.data[flat] : c) * astr[i];
        }
        acc.data[off] += gc.data()[flat];
      }
    });
  }
  return out;
}

// a (A with size n at dim), index [m], src (A with size m at dim) -> A; out = a, then
// out[.., index[k], ..] += src[.., k, ..] (repeated indices add up, in order k = 0..m-1)
Tensor index_add(const Tensor& a, int64_t dim, const IndexTensor& index, const Tensor& src) {
  check_defined(a, "index_add");
  check_defined(src, "index_add");
  const int64_t d = normalize_dim(dim, a.dim(), "index_add");
  if (index.dim() != 1)
    throw std::invalid_argument("index_add: index must be 1-D, got shape " + shape_str(index.shape));
  Shape expect = a.shape();
  expect[d] = index.numel();
  if (src.shape() != expect) {
    throw std::invalid_argument("index_add: src has shape " + shape_str(src.shape()) + ", expected " +
                                shape_str(expect) + " (the input " + shape_str(a.shape()) + " with dimension " +
                                std::to_string(d) + " the index's length)");
  }
  check_index_range(index, a.shape()[d], "index_add", a.shape(), d);
  Tensor out = make_tensor(a.shape());
  kernels::copy_to_contiguous(a, out.data());
  const Tensor sc = src.contiguous();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= a.shape()[i];
  for (int64_t i = d + 1; i < a.dim(); ++i) inner *= a.shape()[i];
  const int64_t n = a.shape()[d], m = index.numel();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < m; ++k) {
      float* dst = out.data() + (o * n + index.data[k]) * inner;
      const float* from = sc.data() + (o * m + k) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += from[i];
    }
  }
  if (should_record({a, src})) {
    record("index_add", out, {a, src}, [index, d](const Tensor& g, GradSink& s) {
      s.add(0, g);
      if (s.needs(1)) s.add(1, index_select(g, d, index));
    });
  }
  return out;
}

// a (A), index (I, same rank, I[j] <= A[j] for j != dim), src (I) -> A; out = a, then
// out[..index[..i..]..] += src[..i..] (the transpose of gather; repeats add up in row-major order)
Tensor scatter_add(const Tensor& a, int64_t dim, const IndexTensor& index, const Tensor& src) {
  check_defined(a, "scatter_add");
  check_defined(src, "scatter_add");
  const int64_t d = normalize_dim(dim, a.dim(), "scatter_add");
  if (index.dim() != a.dim() || src.shape() != index.shape) {
    throw std::invalid_argument("scatter_add: index " + shape_str(index.shape) + " and src " + shape_str(src.shape()) +
                                " must have one shape, of the input's rank " + std::to_string(a.dim()) + " (input " +
                                shape_str(a.shape()) + ")");
  }
  for (int64_t i = 0; i < a.dim(); ++i) {
    if (i != d && index.shape[i] > a.shape()[i]) {
      throw std::invalid_argument("scatter_add: index shape " + shape_str(index.shape) + " exceeds input shape " +
                                  shape_str(a.shape()) + " in dimension " + std::to_string(i));
    }
  }
  check_index_range(index, a.shape()[d], "scatter_add", a.shape(), d);
  Tensor out = make_tensor(a.shape());
  kernels::copy_to_contiguous(a, out.data());
  const Tensor sc = src.contiguous();
  const Shape istr = contiguous_strides(index.shape);
  const Shape astr = contiguous_strides(a.shape());
  for (int64_t flat = 0; flat < index.numel(); ++flat) {
    int64_t rem = flat, off = 0;
    for (int64_t i = 0; i < a.dim(); ++i) {
      const int64_t c = rem / istr[i];
      rem %= istr[i];
      off += (i == d ? index.data[flat] : c) * astr[i];
    }
    out.data()[off] += sc.data()[flat];
  }
  if (should_record({a, src})) {
    record("scatter_add", out, {a, src}, [index, d](const Tensor& g, GradSink& s) {
      s.add(0, g);
      if (s.needs(1)) s.add(1, gather(g, d, index));
    });
  }
  return out;
}

// weight [V, D], ids [...] -> [..., D]
Tensor embedding(const Tensor& weight, const IndexTensor& ids) {
  check_defined(weight, "embedding");
  if (weight.dim() != 2)
    throw std::invalid_argument("embedding: weight must be [V, D], got " + shape_str(weight.shape()));
  const int64_t V = weight.size(0), D = weight.size(1);
  for (int64_t v : ids.data) {
    if (v < 0 || v >= V) {
      throw std::invalid_argument("embedding: id " + std::to_string(v) + " is out of range for a vocabulary of " +
                                  std::to_string(V) + " (weight " + shape_str(weight.shape()) + ")");
    }
  }
  const Tensor w = weight.contiguous();
  Shape shape = ids.shape;
  shape.push_back(D);
  Tensor out = make_tensor(shape);
  const int64_t n = ids.numel();
  parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      std::memcpy(out.data() + k * D, w.data() + ids.data[k] * D, static_cast<size_t>(D) * sizeof(float));
    }
  });
  if (should_record({weight})) {
    record("embedding", out, {weight}, [ids, V, D](const Tensor& g, GradSink& s) {
      if (s.create_graph()) {
        s.add(0, index_add(Tensor::zeros({V, D}), 0, IndexTensor(ids.data), g.reshape({ids.numel(), D})));
        return;
      }
      const Tensor gc = g.contiguous();
      GradSink::Accum acc = s.accumulate(0);
      if (acc.beta == 0.0f) kernels::fill(acc.data, V * D, 0.0f);
      // Serial over ids (several may hit the same row), vectorised over D.
      for (int64_t k = 0; k < ids.numel(); ++k) {
        float* dst = acc.data + ids.data[k] * D;
        const float* src = gc.data() + k * D;
        for (int64_t j = 0; j < D; ++j) dst[j] += src[j];
      }
    });
  }
  return out;
}

// a [..., H, W] -> [..., H + 2 pad_h, W + 2 pad_w] with zeros around
Tensor pad2d(const Tensor& a, int64_t pad_h, int64_t pad_w) {
  check_defined(a, "pad2d");
  if (a.dim() < 2) throw std::invalid_argument("pad2d: expected at least 2 dims, got " + shape_str(a.shape()));
  if (pad_h < 0 || pad_w < 0) {
    throw std::invalid_argument("pad2d: padding must be non-negative, got pad_h " + std::to_string(pad_h) +
                                " and pad_w " + std::to_string(pad_w) + " for shape " + shape_str(a.shape()));
  }
  Shape shape = a.shape();
  shape[a.dim() - 2] += 2 * pad_h;
  shape[a.dim() - 1] += 2 * pad_w;
  Tensor out = Tensor::zeros(shape);
  Tensor inner =
      make_view(out, a.shape(), out.strides(), pad_h * out.strides()[a.dim() - 2] + pad_w * out.strides()[a.dim() - 1]);
  kernels::binary_inplace(inner, a, [](float, float y) { return y; });
  if (should_record({a})) {
    record("pad2d", out, {a}, [pad_h, pad_w, in = a.shape()](const Tensor& g, GradSink& s) {
      const int64_t r = static_cast<int64_t>(in.size());
      s.add(0, g.narrow(r - 2, pad_h, in[r - 2]).narrow(r - 1, pad_w, in[r - 1]));
    });
  }
  return out;
}

}  // namespace scalpel
