// Small helpers shared by the core op tests: seeded normal tensors, the message of an expected
// invalid_argument, and bitwise equality of two tensors' values.
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ops.h"

namespace scalpel {
namespace testing {

// Normal(0, scale^2) values of shape s from a fixed seed.
inline Tensor randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  return mul(Tensor::normal(s, g), scale);
}

// The what() of the std::invalid_argument that f throws, or a text saying what happened instead.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

// Same shape-size and the same bits in every element.
inline bool bit_equal(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace testing
}  // namespace scalpel
