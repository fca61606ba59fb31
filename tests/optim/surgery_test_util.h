// Shared helpers for the surgery tests: building GradVectors, EMA states, and double-precision
// reference algebra.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/grad_vector.h"
#include "core/random.h"
#include "core/state_dict.h"
#include "optim/surgery/surgeon.h"

namespace scalpel {
namespace testing {

inline GradVector gv(const std::vector<float>& v) { return GradVector::from_vector(v); }

inline GradVector random_gv(int64_t n, Generator& gen, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = scale * gen.normal();
  return GradVector::from_vector(v);
}

inline double dot_d(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

inline double norm_d(const std::vector<float>& a) { return std::sqrt(dot_d(a, a)); }

inline std::vector<float> sub(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] - b[i];
  return out;
}

// A surgeon state holding the given EMAs (as if earlier steps had produced them).
inline StateDict ema_state(const std::string& method, const std::vector<std::vector<float>>& emas, int64_t step = 1) {
  StateDict sd;
  sd.set_string("method", method);
  sd.set_int("step", step);
  sd.set_int("ema.count", static_cast<int64_t>(emas.size()));
  sd.set_int("ema.size", emas.empty() ? 0 : static_cast<int64_t>(emas[0].size()));
  sd.set_int("ema.initialized", 1);
  sd.set_int("ema.aliased", 0);
  for (size_t j = 0; j < emas.size(); ++j) sd.set_tensor("ema." + std::to_string(j), Tensor::from_vector(emas[j]));
  return sd;
}

inline std::vector<float> ema_of(const surgery::Surgeon& s, int j) {
  return s.state_dict().tensor("ema." + std::to_string(j)).to_vector();
}

inline ::testing::AssertionResult vec_near(const std::vector<float>& actual, const std::vector<double>& expected,
                                           double tol, const std::string& what) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << ", expected " << expected.size();
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!(std::abs(actual[i] - expected[i]) <= tol)) {
      return ::testing::AssertionFailure() << what << ": element " << i << " is " << actual[i] << ", expected "
                                           << expected[i] << " (tol " << tol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// d from a fresh `method` (with `options`) on the gradient rows; its diagnostics into `diag`.
inline std::vector<float> combine_rows(const std::string& method, const std::vector<std::vector<float>>& rows,
                                       const surgery::SurgeonOptions& options = surgery::SurgeonOptions(),
                                       surgery::SurgeryDiagnostics* diag = nullptr) {
  auto s = surgery::make_surgeon(method, options);
  std::vector<GradVector> g;
  for (const auto& r : rows) g.push_back(GradVector::from_vector(r));
  GradVector d;
  surgery::SurgeryDiagnostics local;
  s->combine(g, d, diag ? diag : &local);
  return d.to_vector();
}

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

}  // namespace testing
}  // namespace scalpel
