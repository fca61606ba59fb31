#include "experiments/runner/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace scalpel {
namespace experiments {

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60)
    std::snprintf(buf, sizeof(buf), "%.1fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s / 3600), (static_cast<int>(s) / 60) % 60);
  return buf;
}

Progress::Progress(bool quiet, double interval_seconds)
    : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1), interval_(interval_seconds) {}

void Progress::start(const std::string& label, int64_t total_steps, int64_t first_step) {
  label_ = label;
  total_ = total_steps;
  first_ = first_step;
  t0_ = last_print_ = std::chrono::steady_clock::now();
  line_open_ = false;
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

std::string Progress::line(int64_t step, const std::vector<std::pair<std::string, double>>& values) const {
  const double el = elapsed_seconds();
  const double rate = el > 0 ? static_cast<double>(step - first_) / el : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - step) / rate : NAN;
  std::ostringstream os;
  os << "[" << label_ << "] step " << step << "/" << total_;
  char buf[64];
  std::snprintf(buf, sizeof(buf), " %.1f steps/s ETA %s", rate, format_duration(eta).c_str());
  os << buf;
  for (const auto& [k, v] : values) {
    std::snprintf(buf, sizeof(buf), " %s %.4g", k.c_str(), v);
    os << buf;
  }
  return os.str();
}

void Progress::update(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_) {
    if (since < 0.2 && step < total_) return;
    std::cerr << "\r\033[K" << line(step, values) << std::flush;
    line_open_ = true;
  } else {
    if (since < interval_ && step < total_) return;
    std::cerr << line(step, values) << "\n";
  }
  last_print_ = now;
}

void Progress::message(const std::string& text) {
  if (quiet_) return;
  if (tty_ && line_open_) std::cerr << "\r\033[K";
  std::cerr << text << "\n";
  line_open_ = false;
}

void Progress::finish(const std::string& status) {
  if (quiet_) return;
  if (tty_ && line_open_) std::cerr << "\r\033[K";
  std::cerr << "[" << label_ << "] " << status << " in " << format_duration(elapsed_seconds()) << "\n";
  line_open_ = false;
}

}  // namespace experiments
}  // namespace scalpel
