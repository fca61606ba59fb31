// Progress reporting for a run: on a terminal, one self-overwriting line (steps/s, ETA, current
// losses); otherwise (CI, files) a plain log line at most every `interval` seconds and at the end.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace scalpel {
namespace experiments {

class Progress {
 public:
  // quiet: no output at all. interval_seconds: spacing of plain log lines.
  explicit Progress(bool quiet = false, double interval_seconds = 10.0);
  void start(const std::string& label, int64_t total_steps, int64_t first_step = 0);
  // Reports progress at `step` (1-based count of completed steps) with named values.
  void update(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  // Prints a message on its own line (clearing the progress line on a terminal).
  void message(const std::string& text);
  void finish(const std::string& status);
  double elapsed_seconds() const;

 private:
  std::string line(int64_t step, const std::vector<std::pair<std::string, double>>& values) const;
  bool quiet_;
  bool tty_;
  double interval_;
  std::string label_;
  int64_t total_ = 0, first_ = 0;
  std::chrono::steady_clock::time_point t0_, last_print_;
  bool line_open_ = false;
};

// "2m05s", "1h02m", "12.3s".
std::string format_duration(double seconds);

}  // namespace experiments
}  // namespace scalpel
