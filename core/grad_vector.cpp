#include "core/grad_vector.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/autograd.h"
#include "core/kernels/loops.h"

namespace scalpel {

namespace {
int64_t total_numel(const std::vector<Tensor>& params) {
  int64_t n = 0;
  for (const Tensor& p : params) n += p.numel();
  return n;
}
}  // namespace

GradVector::GradVector(int64_t size) : buf_(Tensor::zeros({size})) {}

GradVector GradVector::zeros_for(const std::vector<Tensor>& params) { return GradVector(total_numel(params)); }

GradVector GradVector::from_grads(const std::vector<Tensor>& params) {
  GradVector v(total_numel(params));
  float* dst = v.data();
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (g.defined()) kernels::copy_to_contiguous(g, dst);
    dst += p.numel();
  }
  return v;
}

GradVector GradVector::from_vector(const std::vector<float>& values) {
  GradVector v;
  v.buf_ = Tensor::from_vector(values);
  return v;
}

void GradVector::scatter_to_grads(const std::vector<Tensor>& params) const {
  if (total_numel(params) != size()) {
    throw std::invalid_argument("GradVector::scatter_to_grads: vector has " + std::to_string(size()) +
                                " elements, parameters have " + std::to_string(total_numel(params)));
  }
  NoGradGuard no_grad;
  const float* src = data();
  for (const Tensor& p0 : params) {
    Tensor p = p0;
    Tensor g = p.grad();
    if (!g.defined() || !g.is_contiguous()) {
      g = Tensor::empty(p.shape());
      p.set_grad(g);
    }
    std::memcpy(g.data(), src, static_cast<size_t>(p.numel()) * sizeof(float));
    g.storage()->bump_version();
    src += p.numel();
  }
}

std::vector<Tensor> GradVector::views(const std::vector<Tensor>& params) const {
  if (total_numel(params) != size()) {
    throw std::invalid_argument("GradVector::views: vector has " + std::to_string(size()) +
                                " elements, parameters have " + std::to_string(total_numel(params)));
  }
  std::vector<Tensor> out;
  int64_t off = 0;
  for (const Tensor& p : params) {
    out.push_back(make_view(buf_, p.shape(), contiguous_strides(p.shape()), buf_.offset() + off));
    off += p.numel();
  }
  return out;
}

std::vector<float> GradVector::to_vector() const {
  return size() ? std::vector<float>(data(), data() + size()) : std::vector<float>{};
}

void GradVector::check_size(const GradVector& other, const char* op) const {
  if (other.size() != size()) {
    throw std::invalid_argument(std::string("GradVector::") + op + ": sizes differ (" + std::to_string(size()) +
                                " vs " + std::to_string(other.size()) + ")");
  }
}

double GradVector::dot(const GradVector& other) const {
  check_size(other, "dot");
  if (size() == 0) return 0.0;
  return cblas_dsdot(static_cast<int>(size()), data(), 1, other.data(), 1);
}

double GradVector::squared_norm() const {
  return size() ? cblas_dsdot(static_cast<int>(size()), data(), 1, data(), 1) : 0.0;
}

double GradVector::norm() const { return std::sqrt(squared_norm()); }

GradVector& GradVector::axpy(float alpha, const GradVector& x) {
  check_size(x, "axpy");
  if (size()) cblas_saxpy(static_cast<int>(size()), alpha, x.data(), 1, data(), 1);
  return *this;
}

GradVector& GradVector::scale(float alpha) {
  if (size()) cblas_sscal(static_cast<int>(size()), alpha, data(), 1);
  return *this;
}

GradVector& GradVector::copy_from(const GradVector& x) {
  check_size(x, "copy_from");
  if (size()) std::memcpy(data(), x.data(), static_cast<size_t>(size()) * sizeof(float));
  return *this;
}

GradVector& GradVector::fill(float value) {
  if (size()) kernels::fill(data(), size(), value);
  return *this;
}

GradVector GradVector::clone() const {
  GradVector v;
  if (buf_.defined()) v.buf_ = buf_.detach().clone();
  return v;
}

bool GradVector::all_finite() const {
  for (int64_t i = 0; i < size(); ++i) {
    if (!std::isfinite(data()[i])) return false;
  }
  return true;
}

}  // namespace scalpel
