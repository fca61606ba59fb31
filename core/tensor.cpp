#include "core/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <new>
#include <sstream>
#include <stdexcept>

#include "core/autograd.h"
#include "core/block_cache.h"
#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {

// ---- Storage ------------------------------------------------------------------------------------

namespace {

size_t storage_bytes(int64_t size) {
  // 64-byte alignment; aligned_alloc needs a size that is a multiple of the alignment.
  return ((static_cast<size_t>(size) * sizeof(float) + 63) / 64) * 64;
}

}  // namespace

Storage::Storage(int64_t size) : size_(size) {
  if (size < 0) throw std::invalid_argument("Storage: negative size " + std::to_string(size));
  bytes_ = storage_bytes(size);
  if (bytes_ > 0) {
    data_ = static_cast<float*>(BlockCache::instance().take(bytes_, &bytes_));
    if (!data_) data_ = static_cast<float*>(std::aligned_alloc(64, bytes_));
    if (!data_) throw std::bad_alloc();
  }
}

Storage::~Storage() {
  if (data_) BlockCache::instance().give(data_, bytes_);
}

// ---- IndexTensor --------------------------------------------------------------------------------

IndexTensor::IndexTensor(std::vector<int64_t> values, Shape s) : shape(std::move(s)), data(std::move(values)) {
  if (shape_numel(shape) != static_cast<int64_t>(data.size())) {
    throw std::invalid_argument("IndexTensor: " + std::to_string(data.size()) + " values do not fill shape " +
                                shape_str(shape));
  }
}

IndexTensor::IndexTensor(std::vector<int64_t> values)
    : shape{static_cast<int64_t>(values.size())}, data(std::move(values)) {}

// ---- construction -------------------------------------------------------------------------------

Tensor make_tensor(const Shape& shape) {
  for (int64_t s : shape) {
    if (s < 0) throw std::invalid_argument("tensor: negative size in shape " + shape_str(shape));
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape) { return make_tensor(shape); }

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }

Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.0f); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = make_tensor(shape);
  kernels::fill(t.data(), t.numel(), value);
  return t;
}

Tensor Tensor::scalar(float value) { return full({}, value); }

Tensor Tensor::arange(int64_t n) {
  Tensor t = make_tensor({n});
  float* p = t.data();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i);
  return t;
}

Tensor Tensor::arange(float start, float end, float step) {
  if (step == 0.0f) throw std::invalid_argument("arange: step must be non-zero");
  const auto n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor t = make_tensor({std::max<int64_t>(n, 0)});
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = start + step * static_cast<float>(i);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  if (shape_numel(shape) != static_cast<int64_t>(values.size())) {
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values do not fill shape " +
                                shape_str(shape) + " (" + std::to_string(shape_numel(shape)) + " elements)");
  }
  Tensor t = make_tensor(shape);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values) {
  return from_vector(values, {static_cast<int64_t>(values.size())});
}

Tensor Tensor::uniform(const Shape& shape, Generator& gen, float low, float high) {
  Tensor t = make_tensor(shape);
  float* p = t.data();
  const float span = high - low;
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = low + span * gen.uniform();
  return t;
}

Tensor Tensor::normal(const Shape& shape, Generator& gen, float mean, float stddev) {
  Tensor t = make_tensor(shape);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = mean + stddev * gen.normal();
  return t;
}

// ---- metadata -----------------------------------------------------------------------------------

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl, const char* what) {
  if (!impl) {
    throw std::invalid_argument(std::string(what) + ": the tensor is undefined (default-constructed)");
  }
  return *impl;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_, "shape").shape; }
const Shape& Tensor::strides() const { return checked(impl_, "strides").strides; }
int64_t Tensor::offset() const { return checked(impl_, "offset").offset; }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked(impl_, "storage").storage; }

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }

int64_t Tensor::numel() const { return shape_numel(shape()); }

bool Tensor::is_contiguous() const {
  const auto& impl = checked(impl_, "is_contiguous");
  int64_t expected = 1;
  for (size_t i = impl.shape.size(); i-- > 0;) {
    if (impl.shape[i] != 1 && impl.strides[i] != expected) return false;
    expected *= impl.shape[i];
  }
  return true;
}

float* Tensor::data() {
  auto& impl = checked(impl_, "data");
  return impl.storage->data() + impl.offset;
}

const float* Tensor::data() const {
  const auto& impl = checked(impl_, "data");
  return impl.storage->data() + impl.offset;
}

// ---- element access -----------------------------------------------------------------------------

namespace {
int64_t element_offset(const Tensor& t, const std::vector<int64_t>& index, const char* op) {
  if (static_cast<int64_t>(index.size()) != t.dim()) {
    throw std::invalid_argument(std::string(op) + ": index has " + std::to_string(index.size()) +
                                " coordinates, tensor of shape " + shape_str(t.shape()) + " needs " +
                                std::to_string(t.dim()));
  }
  int64_t off = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    const int64_t n = t.shape()[i];
    const int64_t k = index[i] < 0 ? index[i] + n : index[i];
    if (k < 0 || k >= n) {
      throw std::invalid_argument(std::string(op) + ": index " + std::to_string(index[i]) +
                                  " is out of range for dimension " + std::to_string(i) + " of size " +
                                  std::to_string(n) + " (shape " + shape_str(t.shape()) + ")");
    }
    off += k * t.strides()[i];
  }
  return off;
}

void check_inplace_allowed(const Tensor& t, const char* op) {
  if (grad_enabled() && t.requires_grad()) {
    throw std::runtime_error(std::string(op) +
                             ": in-place operation on a tensor that requires grad while grad mode is "
                             "on; run it under NoGradGuard, or detach() the tensor first");
  }
}
}  // namespace

float Tensor::item() const {
  if (numel() != 1) {
    throw std::invalid_argument("item: expected a tensor with one element, got shape " + shape_str(shape()));
  }
  return data()[0];
}

float Tensor::at(const std::vector<int64_t>& index) const { return data()[element_offset(*this, index, "at")]; }

void Tensor::set(const std::vector<int64_t>& index, float value) {
  check_inplace_allowed(*this, "set");
  data()[element_offset(*this, index, "set")] = value;
  storage()->bump_version();
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = detach().contiguous();
  return std::vector<float>(c.data(), c.data() + c.numel());
}

// ---- printing -----------------------------------------------------------------------------------

namespace {
void print_rec(std::ostream& os, const Tensor& t, int64_t d, int64_t off, int indent) {
  const int64_t n = t.shape()[d];
  const int64_t stride = t.strides()[d];
  const bool summarize = t.numel() > 1000 && n > 6;
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && i == 3) {
      os << (d + 1 == t.dim() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - 4;
      continue;
    }
    if (d + 1 == t.dim()) {
      os << std::setw(10) << t.data()[off + i * stride];
      if (i + 1 < n) os << ", ";
    } else {
      print_rec(os, t, d + 1, off + i * stride, indent + 1);
      if (i + 1 < n) os << ",\n" << std::string(indent + 1, ' ');
    }
  }
  os << ']';
}
}  // namespace

std::string Tensor::to_string() const {
  std::ostringstream os;
  os << *this;
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::ios state(nullptr);
  state.copyfmt(os);
  os << std::setprecision(4) << std::fixed;
  os << "tensor(";
  if (t.dim() == 0) {
    os << t.data()[0];
  } else if (t.numel() == 0) {
    os << "[]";
  } else {
    print_rec(os, t, 0, 0, 7);
  }
  os.copyfmt(state);
  os << ", shape=" << shape_str(t.shape());
  if (t.requires_grad()) os << (t.grad_fn() ? std::string(", grad_fn=") + t.grad_fn()->name() : ", requires_grad");
  return os << ')';
}

// ---- autograd accessors -------------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked(impl_, "requires_grad").requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires) {
  checked(impl_, "set_requires_grad");
  if (impl_->grad_fn) {
    throw std::invalid_argument("set_requires_grad: only leaf tensors can be marked; this tensor was produced by '" +
                                std::string(impl_->grad_fn->name()) + "' (use detach() to make a new leaf)");
  }
  impl_->requires_grad = requires;
  return *this;
}

bool Tensor::is_leaf() const { return checked(impl_, "is_leaf").grad_fn == nullptr; }

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_, "grad_fn").grad_fn; }

Tensor Tensor::grad() const { return Tensor(checked(impl_, "grad").grad); }

void Tensor::set_grad(const Tensor& g) {
  checked(impl_, "set_grad");
  if (g.defined()) check_same_shape(g.shape(), shape(), "set_grad", "the gradient");
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  checked(impl_, "zero_grad");
  impl_->grad.reset();
}

void Tensor::backward(const Tensor& seed, bool retain_graph) const {
  scalpel::backward({*this}, seed.defined() ? std::vector<Tensor>{seed} : std::vector<Tensor>{}, retain_graph);
}

// ---- in-place ops -------------------------------------------------------------------------------

uint64_t Tensor::version() const { return storage()->version(); }

Tensor& Tensor::fill_(float value) {
  check_inplace_allowed(*this, "fill_");
  kernels::map_inplace(*this, [value](float) { return value; });
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace_allowed(*this, "copy_");
  broadcast_shapes(src.shape(), shape(), "copy_");
  if (broadcast_shapes(src.shape(), shape(), "copy_") != shape()) {
    throw std::invalid_argument("copy_: source of shape " + shape_str(src.shape()) +
                                " does not broadcast to destination shape " + shape_str(shape()));
  }
  kernels::binary_inplace(*this, src, [](float, float s) { return s; });
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, float alpha) {
  check_inplace_allowed(*this, "add_");
  if (broadcast_shapes(other.shape(), shape(), "add_") != shape()) {
    throw std::invalid_argument("add_: operand of shape " + shape_str(other.shape()) +
                                " does not broadcast to destination shape " + shape_str(shape()));
  }
  if (alpha == 1.0f) {
    kernels::binary_inplace(*this, other, [](float d, float s) { return d + s; });
  } else {
    kernels::binary_inplace(*this, other, [alpha](float d, float s) { return d + alpha * s; });
  }
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::mul_(float value) {
  check_inplace_allowed(*this, "mul_");
  kernels::map_inplace(*this, [value](float x) { return x * value; });
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::clamp_(float low, float high) {
  check_inplace_allowed(*this, "clamp_");
  kernels::map_inplace(*this, [low, high](float x) { return x < low ? low : (x > high ? high : x); });
  storage()->bump_version();
  return *this;
}

// ---- member conveniences over core/ops.h --------------------------------------------------------

Tensor Tensor::reshape(const Shape& s) const { return scalpel::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const { return scalpel::view(*this, s); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return scalpel::transpose(*this, d0, d1); }
Tensor Tensor::t() const {
  if (dim() != 2) throw std::invalid_argument("t: expected a 2-D tensor, got shape " + shape_str(shape()));
  return scalpel::transpose(*this, 0, 1);
}
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return scalpel::permute(*this, dims); }
Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  return scalpel::narrow(*this, d, start, length);
}
Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  const int64_t dd = normalize_dim(d, dim(), "slice");
  const int64_t n = shape()[dd];
  int64_t s = start < 0 ? start + n : start;
  int64_t e = end < 0 ? end + n : end;
  s = std::max<int64_t>(0, std::min(s, n));
  e = std::max<int64_t>(s, std::min(e, n));
  return scalpel::narrow(*this, dd, s, e - s);
}
Tensor Tensor::select(int64_t d, int64_t index) const { return scalpel::select(*this, d, index); }
Tensor Tensor::unsqueeze(int64_t d) const { return scalpel::unsqueeze(*this, d); }
Tensor Tensor::squeeze(int64_t d) const { return scalpel::squeeze(*this, d); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t s = normalize_dim(start_dim, dim(), "flatten");
  const int64_t e = normalize_dim(end_dim, dim(), "flatten");
  if (s > e) {
    throw std::invalid_argument("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " +
                                std::to_string(end_dim));
  }
  Shape out(shape().begin(), shape().begin() + s);
  int64_t m = 1;
  for (int64_t i = s; i <= e; ++i) m *= shape()[i];
  out.push_back(m);
  out.insert(out.end(), shape().begin() + e + 1, shape().end());
  return reshape(out);
}
Tensor Tensor::expand(const Shape& s) const { return scalpel::expand(*this, s); }
Tensor Tensor::contiguous() const { return scalpel::contiguous(*this); }
Tensor Tensor::clone() const { return scalpel::clone(*this); }
Tensor Tensor::detach() const {
  checked(impl_, "detach");
  return make_view(*this, shape(), strides(), offset());
}

Tensor Tensor::sum() const { return scalpel::sum(*this); }
Tensor Tensor::sum(int64_t d, bool keepdim) const { return scalpel::sum(*this, {d}, keepdim); }
Tensor Tensor::mean() const { return scalpel::mean(*this); }
Tensor Tensor::mean(int64_t d, bool keepdim) const { return scalpel::mean(*this, {d}, keepdim); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, float b) { return add(a, b); }
Tensor operator+(float a, const Tensor& b) { return add(b, a); }
Tensor operator-(const Tensor& a, float b) { return add(a, -b); }
Tensor operator-(float a, const Tensor& b) { return rsub(a, b); }
Tensor operator*(const Tensor& a, float b) { return mul(a, b); }
Tensor operator*(float a, const Tensor& b) { return mul(b, a); }
Tensor operator/(const Tensor& a, float b) { return mul(a, 1.0f / b); }

}  // namespace scalpel
