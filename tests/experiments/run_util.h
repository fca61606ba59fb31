// Helpers of the end-to-end tests: run a binary through the shell and capture its output, fresh
// per-process folders, and summary.json access.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/state_dict.h"
#include "experiments/runner/metrics.h"

namespace scalpel_test {

struct Result {
  int code;
  std::string output;
};

inline Result run(const std::string& cmd) {
  // One log per test process and call: CTest runs tests in parallel.
  static int calls = 0;
  const std::string log =
      ::testing::TempDir() + "/cmd_output_" + std::to_string(::getpid()) + "_" + std::to_string(calls++) + ".txt";
  const std::string full = "OMP_WAIT_POLICY=passive " + cmd + " >" + log + " 2>&1";
  const int status = std::system(full.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.output = scalpel::experiments::read_text(log);
  return r;
}

inline std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/scalpel_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(d);
  return d;
}

inline nlohmann::json summary(const std::string& run_dir) {
  return nlohmann::json::parse(scalpel::experiments::read_text(run_dir + "/summary.json"));
}

// Flags of a command line: "-" marks a flag without value, "" leaves the flag out.
using Flags = std::map<std::string, std::string>;

// `bin` followed by `flags` (each value single-quoted), after `replace` overrode `flags`.
inline std::string command(const std::string& bin, Flags flags, const Flags& replace = {}) {
  for (const auto& [k, v] : replace) flags[k] = v;
  std::string cmd = bin;
  for (const auto& [k, v] : flags) {
    if (v.empty()) continue;
    cmd += " " + k + (v == "-" ? "" : " '" + v + "'");
  }
  return cmd;
}

// Passes when the output of `r` contains `text`; the failure message shows the output.
inline ::testing::AssertionResult has_text(const Result& r, const std::string& text) {
  if (r.output.find(text) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "output lacks \"" << text << "\":\n" << r.output;
}

// Removes `flag` and its value from the argv that `sweep_dir`/config.json recorded, so that
// --resume replays the sweep without it (e.g. the --inject-nan hook that stopped it).
inline void drop_recorded_flag(const std::string& sweep_dir, const std::string& flag) {
  const std::string path = sweep_dir + "/config.json";
  nlohmann::json cfg = nlohmann::json::parse(scalpel::experiments::read_text(path));
  const std::vector<std::string> argv = cfg["argv"];
  std::vector<std::string> kept;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == flag) {
      ++i;
      continue;
    }
    kept.push_back(argv[i]);
  }
  cfg["argv"] = kept;
  scalpel::write_file_atomic(path, cfg.dump(2));
}

}  // namespace scalpel_test
