// Loader for the PyTorch golden fixtures in tests/golden/*.json.
//
// Fixture format (written by the tests/golden/gen_torch*.py scripts, read here):
//   { "generator": "...", "torch_version": "...",
//     "cases": { "<case>": { "meta": {...},                      // free-form scalars/lists
//                             "tensors": { "<name>": {"shape": [..], "data": [..]} } } } }
// Data is float32 values printed exactly (repr of the float32 value) in row-major order; integer
// tensors (labels, ids) are stored the same way and read back with index().
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/tensor.h"

namespace scalpel {
namespace testing {

class GoldenFile {
 public:
  explicit GoldenFile(const std::string& name) {
    const std::string path = std::string(SCALPEL_GOLDEN_DIR) + "/" + name;
    std::ifstream in(path);
    if (!in)
      throw std::runtime_error("golden fixture not found: " + path + " (regenerate with tests/golden/gen_torch.py)");
    in >> json_;
  }
  bool has(const std::string& c) const { return json_["cases"].contains(c); }
  const nlohmann::json& meta(const std::string& c) const { return json_["cases"].at(c).at("meta"); }
  Tensor tensor(const std::string& c, const std::string& t) const {
    const auto& j = json_["cases"].at(c).at("tensors").at(t);
    return Tensor::from_vector(j.at("data").get<std::vector<float>>(), j.at("shape").get<Shape>());
  }
  IndexTensor index(const std::string& c, const std::string& t) const {
    const auto& j = json_["cases"].at(c).at("tensors").at(t);
    std::vector<int64_t> v;
    for (const auto& x : j.at("data")) v.push_back(static_cast<int64_t>(x.get<double>()));
    return IndexTensor(v, j.at("shape").get<Shape>());
  }

 private:
  nlohmann::json json_;
};

// EXPECT that `actual` matches `expected` elementwise within atol + rtol * |expected|.
inline ::testing::AssertionResult tensors_close(const Tensor& actual, const Tensor& expected, double atol, double rtol,
                                                const std::string& what) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(actual.shape()) << ", expected "
                                         << shape_str(expected.shape());
  }
  const std::vector<float> a = actual.to_vector(), e = expected.to_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(std::abs(static_cast<double>(a[i]) - e[i]) <= atol + rtol * std::abs(static_cast<double>(e[i])))) {
      return ::testing::AssertionFailure() << what << ": element " << i << " is " << a[i] << ", expected " << e[i]
                                           << " (atol " << atol << ", rtol " << rtol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace testing
}  // namespace scalpel
