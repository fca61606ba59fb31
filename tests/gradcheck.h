// The one shared finite-difference gradient checker, used by every op and layer test.
//
// For a function f(inputs) -> y it draws a fixed random cotangent r (seeded) and compares the
// analytic gradient of <f(x), r> (from scalpel::grad) with central differences of the same scalar,
// evaluated in float and accumulated in double, using a 4-point stencil:
//   (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h.
// It also checks that backward ADDS into .grad (two backward passes give twice the gradient) and,
// optionally, repeats everything with non-contiguous (transposed-storage) copies of the inputs.
// A failure names the op, the input, the element index, both values, the tolerances and the seed.
//
// Kinks (ReLU, max, abs at 0): with `skip_kinks`, an element where a second difference of the five
// samples f(x-2h..x+2h), divided by h, exceeds the tolerance is a point where a change of slope
// within 2h could by itself explain a mismatch; it is skipped, and the check fails if more than
// `max_kink_fraction` of the checked elements had to be skipped.
//
// Second order (on by default in gradcheck()): with the cotangent r itself a variable and a fixed
// random direction u_i per input, G(x, r) = sum_i <d<f(x), r>/dx_i, u_i> is differentiated twice
// over, analytically (grad with create_graph, then grad of G with respect to every x_i and r) and
// by the same central differences of G evaluated with first-order gradients. That checks every
// op's create_graph branch against its first-order backward, including its linearity in r.
//
// gradcheck_tensors() does the same for tensors the function closes over (e.g. a module's
// parameters), perturbing them in place.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.h"

namespace scalpel {
namespace testing {

struct GradcheckOptions {
  double eps = 1e-3;   // finite-difference step
  double atol = 1e-3;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-2;
  uint64_t seed = 1234;       // for the cotangent r
  int64_t max_checks = 2000;  // per input; elements are strided evenly beyond this
  bool check_accumulation = true;
  bool skip_kinks = false;
  double max_kink_fraction = 0.25;
  bool second_order = true;  // also check the gradient's own gradient (create_graph)
  GradcheckOptions& set_eps(double v) {
    eps = v;
    return *this;
  }
  GradcheckOptions& set_atol(double v) {
    atol = v;
    return *this;
  }
  GradcheckOptions& set_rtol(double v) {
    rtol = v;
    return *this;
  }
  GradcheckOptions& set_seed(uint64_t v) {
    seed = v;
    return *this;
  }
  GradcheckOptions& set_max_checks(int64_t v) {
    max_checks = v;
    return *this;
  }
  GradcheckOptions& set_skip_kinks(bool v) {
    skip_kinks = v;
    return *this;
  }
  GradcheckOptions& set_second_order(bool v) {
    second_order = v;
    return *this;
  }
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

// Compares `analytic[i]` with central differences of <fwd(), r> with respect to tensors[i],
// perturbing each tensor in place (under no-grad) and restoring it.
inline ::testing::AssertionResult compare_numeric(const std::string& op, const char* variant,
                                                  const std::function<Tensor()>& fwd, std::vector<Tensor> tensors,
                                                  const std::vector<std::string>& names,
                                                  const std::vector<Tensor>& analytic, const Tensor& r,
                                                  const GradcheckOptions& o) {
  NoGradGuard no_grad;
  int64_t checked = 0, kinks = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    Tensor& x = tensors[i];
    const std::vector<float> an = analytic[i].to_vector();
    const int64_t n = x.numel();
    const int64_t step = std::max<int64_t>(1, n / std::max<int64_t>(o.max_checks, 1));
    for (int64_t flat = 0; flat < n; flat += step) {
      std::vector<int64_t> idx(x.dim());
      int64_t rem = flat;
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        idx[d] = rem % x.shape()[d];
        rem /= x.shape()[d];
      }
      const float orig = x.at(idx);
      auto eval = [&](double delta) {
        x.set(idx, static_cast<float>(orig + delta));
        return weighted_sum(fwd(), r);
      };
      const double h = o.eps;
      const double fp1 = eval(h), fm1 = eval(-h), fp2 = eval(2 * h), fm2 = eval(-2 * h);
      const double f0 = o.skip_kinks ? eval(0.0) : 0.0;
      x.set(idx, orig);
      const double d1 = (fp1 - fm1) / (2 * h), d2 = (fp2 - fm2) / (4 * h);
      const double numeric = (4 * d1 - d2) / 3;  // = (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h
      ++checked;
      if (o.skip_kinks) {
        const double bend =
            std::max({std::fabs(fp2 - 2 * fp1 + f0), std::fabs(fp1 - 2 * f0 + fm1), std::fabs(f0 - 2 * fm1 + fm2)}) / h;
        if (bend > o.atol + o.rtol * std::fabs(numeric)) {
          ++kinks;
          continue;
        }
      }
      const double a = an[flat];
      if (!(std::fabs(a - numeric) <= o.atol + o.rtol * std::fabs(numeric))) {
        return ::testing::AssertionFailure()
               << "gradcheck(" << op << ", " << variant << "): " << names[i] << " " << shape_str(x.shape())
               << ", element " << index_str(x.shape(), flat) << ": analytic " << a << " vs numeric " << numeric
               << " (atol " << o.atol << ", rtol " << o.rtol << ", eps " << o.eps << ", seed " << o.seed << ")";
      }
    }
  }
  if (kinks > o.max_kink_fraction * static_cast<double>(checked)) {
    return ::testing::AssertionFailure() << "gradcheck(" << op << ", " << variant << "): " << kinks << " of " << checked
                                         << " checked elements sit on a kink; choose inputs away from kinks";
  }
  return ::testing::AssertionSuccess();
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
                 << " element " << index_str(inputs[i].shape(), static_cast<int64_t>(j)) << ": two passes gave " << b[j]
                 << ", expected 2 x " << a[j] << " (seed " << o.seed << ")";
        }
      }
      inputs[i].zero_grad();
    }
  }

  std::vector<std::string> names;
  for (size_t i = 0; i < inputs.size(); ++i) names.push_back("input " + std::to_string(i));
  return compare_numeric(
      op, variant, [&] { return f(inputs); }, inputs, names, analytic, r, o);
}

// sum_i <gs_i, u_i> as a scalar tensor (zero when nothing is defined).
inline Tensor directional(const std::vector<Tensor>& gs, const std::vector<Tensor>& u) {
  Tensor total = Tensor::zeros({});
  for (size_t i = 0; i < gs.size(); ++i) total = add(total, dot(gs[i], u[i]));
  return total;
}

// The tensors flattened and concatenated into one vector (no history).
inline Tensor flat_concat(const std::vector<Tensor>& ts) {
  std::vector<float> all;
  for (const Tensor& t : ts) {
    const std::vector<float> v = t.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  const int64_t n = static_cast<int64_t>(all.size());
  return Tensor::from_vector(all, {n});
}

// The second-order check described at the top, for inputs used as given.
inline ::testing::AssertionResult gradgradcheck_once(const std::string& op, const GradFn& f, std::vector<Tensor> inputs,
                                                     const GradcheckOptions& o, const char* variant) {
  for (Tensor& x : inputs) x.set_requires_grad(true);
  Generator gen(o.seed + 1);
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = f(inputs);
  }
  Tensor r = Tensor::normal(y0.shape(), gen);
  r.set_requires_grad(true);
  std::vector<Tensor> u;
  for (const Tensor& x : inputs) u.push_back(Tensor::normal(x.shape(), gen));
  std::vector<Tensor> wrt = inputs;
  wrt.push_back(r);
  std::vector<Tensor> analytic;
  {
    EnableGradGuard eg;
    const Tensor y = f(inputs);
    const std::vector<Tensor> gs =
        grad({y}, inputs, GradOptions().set_seeds({r}).set_allow_unused(true).set_create_graph(true));
    const Tensor G = directional(gs, u);
    if (!G.requires_grad()) {
      return ::testing::AssertionFailure() << "gradgradcheck(" << op << ", " << variant
                                           << "): the gradient carries no history (create_graph recorded nothing)";
    }
    analytic = grad({G}, wrt, GradOptions().set_allow_unused(true));
  }
  // G evaluated with first-order gradients only, for the central differences: the gradients
  // flattened into one vector, weighted by the u_i in double by compare_numeric (a float sum of a
  // whole gradient would bury a step's effect in rounding).
  auto fwd = [&] {
    EnableGradGuard eg;
    const Tensor y = f(inputs);
    const std::vector<Tensor> gs = grad({y}, inputs, GradOptions().set_seeds({r}).set_allow_unused(true));
    NoGradGuard ng;
    return flat_concat(gs);
  };
  const Tensor weights = flat_concat(u);
  std::vector<std::string> names;
  for (size_t i = 0; i < inputs.size(); ++i) names.push_back("second order, input " + std::to_string(i));
  names.push_back("second order, cotangent");
  return compare_numeric(op, variant, fwd, wrt, names, analytic, weights, o);
}

// Checks f's gradients at `inputs` (used as given) and again with non-contiguous copies of them,
// each to second order too unless `second_order` is off.
inline ::testing::AssertionResult gradcheck(const std::string& op, const GradFn& f, const std::vector<Tensor>& inputs,
                                            const GradcheckOptions& o = GradcheckOptions()) {
  std::vector<Tensor> fresh;
  for (const Tensor& x : inputs) fresh.push_back(x.detach().clone());
  auto res = gradcheck_once(op, f, fresh, o, "contiguous");
  if (!res) return res;
  std::vector<Tensor> strided;
  for (const Tensor& x : inputs) strided.push_back(noncontiguous_copy(x));
  res = gradcheck_once(op, f, strided, o, "non-contiguous");
  if (!res || !o.second_order) return res;
  std::vector<Tensor> fresh2;
  for (const Tensor& x : inputs) fresh2.push_back(x.detach().clone());
  res = gradgradcheck_once(op, f, fresh2, o, "contiguous");
  if (!res) return res;
  std::vector<Tensor> strided2;
  for (const Tensor& x : inputs) strided2.push_back(noncontiguous_copy(x));
  return gradgradcheck_once(op, f, strided2, o, "non-contiguous");
}

}  // namespace testing
}  // namespace scalpel

namespace scalpel {
namespace testing {

// Gradcheck with respect to tensors that `fwd` closes over (e.g. a module's parameters, given with
// their names), perturbed in place.
inline ::testing::AssertionResult gradcheck_tensors(const std::string& op, const std::function<Tensor()>& fwd,
                                                    const std::vector<std::pair<std::string, Tensor>>& named,
                                                    GradcheckOptions o = GradcheckOptions()) {
  std::vector<Tensor> tensors;
  std::vector<std::string> names;
  for (const auto& [n, t] : named) {
    tensors.push_back(t);
    names.push_back(n);
  }
  Tensor y = fwd();
  Generator gen(o.seed);
  const Tensor r = Tensor::normal(y.shape(), gen);
  std::vector<Tensor> analytic = grad({y}, tensors, GradOptions().set_seeds({r}).set_allow_unused(true));
  return compare_numeric(op, "closure", fwd, tensors, names, analytic, r, o);
}

}  // namespace testing
}  // namespace scalpel
