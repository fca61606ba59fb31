// GradVector: the gradients of an ordered parameter list flattened into one contiguous buffer.
//
// Gradient surgery works on whole-model vectors: <g0, g1> and ||g0|| over ALL parameters (see
// ALGORITHMS.md). A GradVector gathers p.grad() of each parameter, in list order, into one float
// buffer, offers BLAS level-1 algebra on it (dot and norm accumulate in double through
// cblas_dsdot), and scatters a direction back into the parameters' .grad. `views()` returns
// tensors shaped like the parameters that alias the buffer, so grad_into() can write gradients
// straight into it without a gather copy.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace scalpel {

class GradVector {
 public:
  GradVector() = default;
  explicit GradVector(int64_t size);  // zeros

  // Zeros sized for `params` (sum of numel).
  static GradVector zeros_for(const std::vector<Tensor>& params);
  // Gathers each p.grad() in order; an undefined grad contributes zeros.
  static GradVector from_grads(const std::vector<Tensor>& params);
  static GradVector from_vector(const std::vector<float>& values);

  // Writes slice k into params[k].grad() (allocating it when undefined); throws on a size mismatch.
  void scatter_to_grads(const std::vector<Tensor>& params) const;
  // Tensors shaped like `params` that alias this buffer (no copy).
  std::vector<Tensor> views(const std::vector<Tensor>& params) const;

  int64_t size() const { return buf_.defined() ? buf_.numel() : 0; }
  float* data() { return buf_.data(); }
  const float* data() const { return buf_.data(); }
  const Tensor& tensor() const { return buf_; }
  float operator[](int64_t i) const { return buf_.data()[i]; }
  std::vector<float> to_vector() const;

  double dot(const GradVector& other) const;  // double accumulation
  double squared_norm() const;
  double norm() const;
  GradVector& axpy(float alpha, const GradVector& x);  // this += alpha * x
  GradVector& scale(float alpha);                      // this *= alpha
  GradVector& copy_from(const GradVector& x);
  GradVector& fill(float value);
  GradVector clone() const;
  bool all_finite() const;

 private:
  void check_size(const GradVector& other, const char* op) const;
  Tensor buf_;
};

}  // namespace scalpel
