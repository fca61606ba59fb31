// Helpers of the end-to-end tests: run a binary through the shell and capture its output, fresh
// per-process folders, and summary.json access.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace scalpel_test
