// Tensor: Scalpel's float32, row-major, batch-first n-d array with reverse-mode autodiff.
//
// A Tensor is a cheap handle (a shared_ptr) to a TensorImpl, which holds a view (shape, strides in
// elements, offset) over shared, 64-byte-aligned Storage. Copying a Tensor copies the handle, not
// the data; `clone()` copies the data. Views (reshape, transpose, permute, narrow, ...) share the
// storage and are explicit; `contiguous()` returns a row-major copy when the view is not one.
//
// Autodiff: a tensor may require grad. Ops on such tensors, with grad mode on (see NoGradGuard in
// core/autograd.h), record a node on the tape; `backward()` accumulates into the leaves' `grad()`.
// The storage carries a version counter that every in-place op bumps; backward checks it so that
// a tensor changed in place after an op saved it raises an error naming that op.
//
// The ops themselves are free functions declared in core/ops.h; the member functions below are
// thin conveniences over them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/shape.h"

namespace scalpel {

class Node;
class Tensor;
struct Recompute;

// Shared, 64-byte-aligned float buffer plus the version counter shared by all of its views.
class Storage {
 public:
  explicit Storage(int64_t size);  // uninitialised
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return size_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
  size_t bytes_ = 0;  // the block's size (a reused block may be larger than size_ floats)
  uint64_t version_ = 0;
};

// The state behind a Tensor handle. Users normally never touch it directly.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;

  // Autograd metadata.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;      // accumulated gradient of a leaf (same shape, contiguous)
  std::shared_ptr<Node> grad_fn;         // the node that produced this tensor (null for leaves)
  std::weak_ptr<Node> grad_accumulator;  // leaf only: the node that accumulates into `grad`
  // Set by an op whose output is cheap to rebuild from what its own node keeps (batch_norm_relu):
  // a later op that saves this tensor for backward keeps the recipe, not the storage (see
  // set_recompute in core/autograd.h).
  std::shared_ptr<const Recompute> recompute;
};

// Integer index tensor (int64, contiguous, row-major) for labels, token ids and gather indices.
struct IndexTensor {
  Shape shape;
  std::vector<int64_t> data;

  IndexTensor() = default;
  IndexTensor(std::vector<int64_t> values, Shape s);
  explicit IndexTensor(std::vector<int64_t> values);  // 1-D
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t dim() const { return static_cast<int64_t>(shape.size()); }
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ----------------------------------------------------------------------------
  static Tensor empty(const Shape& shape);  // uninitialised
  static Tensor zeros(const Shape& shape);
  static Tensor ones(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor scalar(float value);  // rank-0 tensor
  static Tensor arange(int64_t n);    // [0, 1, ..., n-1]
  static Tensor arange(float start, float end, float step = 1.0f);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<float>& values);  // 1-D
  static Tensor uniform(const Shape& shape, Generator& gen, float low = 0.0f, float high = 1.0f);
  static Tensor normal(const Shape& shape, Generator& gen, float mean = 0.0f, float stddev = 1.0f);
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape()); }
  static Tensor ones_like(const Tensor& t) { return ones(t.shape()); }

  // ---- metadata -----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  bool is_contiguous() const;
  // Pointer to the first element of the view (offset applied). Element (i0,i1,..) lives at
  // data()[i0*strides[0] + i1*strides[1] + ...].
  float* data();
  const float* data() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  const std::shared_ptr<Storage>& storage() const;
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // ---- element access -----------------------------------------------------------------------
  float item() const;  // single-element tensors only
  float at(const std::vector<int64_t>& index) const;
  void set(const std::vector<int64_t>& index, float value);  // in-place write; bumps the version
  std::vector<float> to_vector() const;                      // values in row-major order
  std::string to_string() const;

  // ---- views and copies (autograd-aware; see core/ops.h) -------------------------------------
  Tensor reshape(const Shape& shape) const;  // view when possible, copy otherwise; one -1 allowed
  Tensor view(const Shape& shape) const;     // view only; throws when strides do not allow it
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;  // 2-D transpose
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;  // [start, end), negative allowed
  Tensor select(int64_t dim, int64_t index) const;              // removes `dim`
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0); read-only in practice
  Tensor contiguous() const;                // self if already contiguous, else a row-major copy
  Tensor clone() const;                     // always a fresh contiguous copy, differentiable
  Tensor detach() const;                    // shares storage, no autograd history, requires_grad false

  // ---- autograd -----------------------------------------------------------------------------
  bool requires_grad() const;
  // Marks a leaf as requiring grad. Throws for a non-leaf (use detach() first).
  Tensor& set_requires_grad(bool requires = true);
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;
  // Accumulated gradient (undefined until a backward reaches this leaf).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (sets it undefined)
  // Reverse-mode sweep from this tensor. A non-scalar output needs `seed` of the same shape.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;

  // ---- in-place ops (bump the version; refused on leaves requiring grad under grad mode) -----
  uint64_t version() const;
  Tensor& fill_(float value);
  Tensor& zero_() { return fill_(0.0f); }
  Tensor& copy_(const Tensor& src);                       // src broadcast to this shape
  Tensor& add_(const Tensor& other, float alpha = 1.0f);  // this += alpha * other (broadcast)
  Tensor& mul_(float value);
  Tensor& clamp_(float low, float high);

  // ---- reductions (conveniences over core/ops.h) --------------------------------------------
  Tensor sum() const;
  Tensor sum(int64_t dim, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(int64_t dim, bool keepdim = false) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Arithmetic operators (autograd-aware); see core/ops.h for the named forms.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, float b);
Tensor operator+(float a, const Tensor& b);
Tensor operator-(const Tensor& a, float b);
Tensor operator-(float a, const Tensor& b);
Tensor operator*(const Tensor& a, float b);
Tensor operator*(float a, const Tensor& b);
Tensor operator/(const Tensor& a, float b);

// Low-level constructor used by ops: a fresh tensor over new storage, uninitialised.
Tensor make_tensor(const Shape& shape);
// A view over existing storage (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace scalpel
