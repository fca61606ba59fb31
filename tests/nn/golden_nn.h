// Shared by the nn golden tests (test_nn_golden.cpp, test_seq2seq_golden.cpp): loads a golden
// case's state into a module with a STRICT load_state_dict and checks that the module's parameter
// names are exactly the torch reference's (meta "state" and "params" of the case).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "golden.h"
#include "nn/module.h"

namespace scalpel {
namespace testing {

inline ::testing::AssertionResult load_golden_state(nn::Module& m, const GoldenFile& fx, const std::string& c) {
  StateDict sd;
  for (const std::string& n : fx.meta(c).at("state").get<std::vector<std::string>>()) {
    sd.set_tensor(n, fx.tensor(c, "state." + n));
  }
  m.load_state_dict(sd, /*strict=*/true);
  std::set<std::string> ours, theirs;
  for (const auto& [n, p] : m.named_parameters()) ours.insert(n);
  for (const std::string& n : fx.meta(c).at("params").get<std::vector<std::string>>()) theirs.insert(n);
  if (ours != theirs) {
    return ::testing::AssertionFailure() << c << ": " << ours.size() << " parameters here, " << theirs.size()
                                         << " in the torch reference, and the names differ";
  }
  // The load copied values in place: check one parameter to make sure it did.
  const auto params = m.named_parameters();
  return tensors_close(params.front().second, fx.tensor(c, "state." + params.front().first), 0, 0,
                       c + " loaded " + params.front().first);
}

}  // namespace testing
}  // namespace scalpel
