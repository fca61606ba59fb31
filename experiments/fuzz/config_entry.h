// The config/flag parser's fuzz entry, shared by the libFuzzer target (fuzz_config.cpp) and the
// corpus-replay test in make test: the input is split into arguments at newlines and parsed by
// parse_config for an experiment with presets and options of every kind. Any input must either
// parse or throw a std::exception (UsageError for bad flags); never crash or hang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "experiments/runner/runner.h"

namespace scalpel {
namespace experiments {

inline const Experiment& fuzz_experiment() {
  static const Experiment e = [] {
    Experiment x;
    x.name = "scalpel-fuzz";
    x.summary = "flag-parser fuzz target";
    x.presets["cpu"] = {{"steps", "10"}, {"lr", "0.1"}, {"width", "4"}, {"lambdas", "0.1,1"}};
    x.presets["paper"] = {{"epochs", "3"}, {"methods", "mixed,bloop"}, {"rho", "0.5"}};
    x.options = {int_option("width", "int", 1, 64), real_option("momentum", "real", 0.0, 1.0),
                 bool_option("augment", "bool"), OptionSpec("name", "text")};
    return x;
  }();
  return e;
}

// Returns true when the arguments parsed into a Config.
inline bool fuzz_parse_config(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::string cur;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == '\n') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  if (!cur.empty()) args.push_back(cur);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return false;  // prints the help text; not worth fuzzing
  }
  try {
    return parse_config(fuzz_experiment(), args).has_value();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace experiments
}  // namespace scalpel
