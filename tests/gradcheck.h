// The one shared finite-difference gradient checker, used by every op and layer test.
//
// For a function f(inputs) -> y it draws a fixed random cotangent r (seeded) and compares the
// analytic gradient of <f(x), r> (from scalpel::grad) with central differences of the same scalar,
// evaluated in float and accumulated in double, using a 4-point stencil:
//   (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h.
// It also checks that backward ADDS into .grad (two backward passes give twice the gradient) and,
// optionally, repeats everything with non-contiguous (transposed-storage) copies of the inputs.
// A failure names the op, the input, the element index, both values, the tolerances and the seed.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.h"

namespace scalpel {
namespace testing {

struct GradcheckOptions {
  double eps = 1e-3;     // finite-difference step
  double atol = 1e-3;    // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-2;
  uint64_t seed = 1234;  // for the cotangent r
  int64_t max_checks = 2000;  // per input; elements are strided evenly beyond this
  bool check_accumulation = true;
  GradcheckOptions& set_eps(double v) { eps = v; return *this; }
  GradcheckOptions& set_atol(double v) { atol = v; return *this; }
  GradcheckOptions& set_rtol(double v) { rtol = v; return *this; }
  GradcheckOptions& set_seed(uint64_t v) { seed = v; return *this; }
  GradcheckOptions& set_max_checks(int64_t v) { max_checks = v; return *this; }
};

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

inline std::string index_str(const Shape& shape, int64_t flat) {
  Shape idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}

// Same values, but stored with the last two dims swapped (so strides are not row-major), as a leaf.
inline Tensor noncontiguous_copy(const Tensor& t) {
  if (t.dim() < 2) {
    // Every other element of a buffer twice as long.
    Tensor big = Tensor::zeros({t.numel() * 2});
    Tensor v = make_view(big, t.shape(), {2}, 0);
    NoGradGuard ng;
    v.copy_(t);
    return make_view(big, t.shape(), {2}, 0);
  }
  const int64_t r = t.dim();
  Tensor storage = t.detach().transpose(r - 2, r - 1).contiguous();  // [.., W, H] row-major
  return make_view(storage, t.shape(), storage.transpose(r - 2, r - 1).strides(), 0);
}

inline double weighted_sum(const Tensor& y, const Tensor& r) {
  const std::vector<float> a = y.to_vector(), b = r.to_vector();
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

inline ::testing::AssertionResult gradcheck_once(const std::string& op, const GradFn& f, std::vector<Tensor> inputs,
                                                 const GradcheckOptions& o, const char* variant) {
  for (Tensor& x : inputs) {
    x.zero_grad();
    x.set_requires_grad(true);
  }
  Tensor y = f(inputs);
  Generator gen(o.seed);
  const Tensor r = Tensor::normal(y.shape(), gen);
  // Analytic gradients of <y, r>.
  std::vector<Tensor> analytic = grad({y}, inputs, GradOptions().set_seeds({r}).set_allow_unused(true));

  if (o.check_accumulation) {
    // backward must ADD into .grad: two passes give twice the gradient.
    for (int pass = 0; pass < 2; ++pass) {
      Tensor y2 = f(inputs);
      y2.backward(r);
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor g = inputs[i].grad();
      if (!g.defined()) continue;
      const std::vector<float> a = analytic[i].to_vector(), b = g.to_vector();
      for (size_t j = 0; j < a.size(); ++j) {
        if (!(std::fabs(2.0 * a[j] - b[j]) <= 1e-5 + 1e-4 * std::fabs(2.0 * a[j]))) {
          return ::testing::AssertionFailure()
                 << "gradcheck(" << op << ", " << variant << "): backward does not accumulate for input " << i
                 << " element " << index_str(inputs[i].shape(), static_cast<int64_t>(j)) << ": two passes gave "
                 << b[j] << ", expected 2 x " << a[j] << " (seed " << o.seed << ")";
        }
      }
      inputs[i].zero_grad();
    }
  }

  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    const std::vector<float> an = analytic[i].to_vector();
    const int64_t n = x.numel();
    const int64_t step = std::max<int64_t>(1, n / std::max<int64_t>(o.max_checks, 1));
    for (int64_t flat = 0; flat < n; flat += step) {
      // Coordinates of element `flat` in row-major order.
      std::vector<int64_t> idx(x.dim());
      int64_t rem = flat;
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        idx[d] = rem % x.shape()[d];
        rem /= x.shape()[d];
      }
      const float orig = x.at(idx);
      auto eval = [&](double delta) {
        x.set(idx, static_cast<float>(orig + delta));
        return weighted_sum(f(inputs), r);
      };
      const double h = o.eps;
      const double numeric = (-eval(2 * h) + 8 * eval(h) - 8 * eval(-h) + eval(-2 * h)) / (12 * h);
      x.set(idx, orig);
      const double a = an[flat];
      if (!(std::fabs(a - numeric) <= o.atol + o.rtol * std::fabs(numeric))) {
        return ::testing::AssertionFailure()
               << "gradcheck(" << op << ", " << variant << "): input " << i << " " << shape_str(x.shape())
               << ", element " << index_str(x.shape(), flat) << ": analytic " << a << " vs numeric " << numeric
               << " (atol " << o.atol << ", rtol " << o.rtol << ", eps " << o.eps << ", seed " << o.seed << ")";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// Checks f's gradients at `inputs` (used as given) and again with non-contiguous copies of them.
inline ::testing::AssertionResult gradcheck(const std::string& op, const GradFn& f, const std::vector<Tensor>& inputs,
                                            const GradcheckOptions& o = GradcheckOptions()) {
  std::vector<Tensor> fresh;
  for (const Tensor& x : inputs) fresh.push_back(x.detach().clone());
  auto res = gradcheck_once(op, f, fresh, o, "contiguous");
  if (!res) return res;
  std::vector<Tensor> strided;
  for (const Tensor& x : inputs) strided.push_back(noncontiguous_copy(x));
  return gradcheck_once(op, f, strided, o, "non-contiguous");
}

}  // namespace testing
}  // namespace scalpel
