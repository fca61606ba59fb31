#include "experiments/runner/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/state_dict.h"

namespace scalpel {
namespace experiments {

void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void MetricsLog::append(const std::vector<std::pair<std::string, double>>& row) {
  std::map<std::string, double> r;
  for (const auto& [k, v] : row) {
    if (std::find(columns_.begin(), columns_.end(), k) == columns_.end()) columns_.push_back(k);
    r[k] = v;
  }
  rows_.push_back(std::move(r));
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now - last_flush_ >= flush_interval_) flush();
}

void MetricsLog::append_rows(const MetricsLog& other) {
  for (const std::string& c : other.columns_) {
    if (std::find(columns_.begin(), columns_.end(), c) == columns_.end()) columns_.push_back(c);
  }
  rows_.insert(rows_.end(), other.rows_.begin(), other.rows_.end());
}

void MetricsLog::truncate_after(int64_t step) {
  std::vector<std::map<std::string, double>> kept;
  for (auto& r : rows_) {
    auto it = r.find("step");
    if (it == r.end() || !(it->second > static_cast<double>(step))) kept.push_back(r);
  }
  rows_ = std::move(kept);
  flush();
}

void MetricsLog::flush() const {
  if (path_.empty()) return;
  write_text_atomic(path_, to_csv());
  last_flush_ = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double MetricsLog::at(size_t i, const std::string& column) const {
  auto it = rows_.at(i).find(column);
  return it == rows_[i].end() ? NAN : it->second;
}

double MetricsLog::last(const std::string& column) const {
  for (size_t i = rows_.size(); i-- > 0;) {
    const double v = at(i, column);
    if (std::isfinite(v)) return v;
  }
  return NAN;
}

std::vector<double> MetricsLog::column(const std::string& name) const {
  std::vector<double> out;
  for (size_t i = 0; i < rows_.size(); ++i) out.push_back(at(i, name));
  return out;
}

std::string MetricsLog::to_csv() const {
  std::ostringstream os;
  for (size_t c = 0; c < columns_.size(); ++c) os << (c ? "," : "") << columns_[c];
  os << '\n';
  char buf[64];
  for (const auto& r : rows_) {
    for (size_t c = 0; c < columns_.size(); ++c) {
      if (c) os << ',';
      auto it = r.find(columns_[c]);
      if (it == r.end()) continue;
      const double v = it->second;
      if (std::isnan(v))
        os << "nan";
      else if (std::isinf(v))
        os << (v > 0 ? "inf" : "-inf");
      else if (v == std::floor(v) && std::fabs(v) < 1e15) {
        std::snprintf(buf, sizeof(buf), "%.0f", v);
        os << buf;
      } else {
        std::snprintf(buf, sizeof(buf), "%.9g", v);
        os << buf;
      }
    }
    os << '\n';
  }
  return os.str();
}

MetricsLog MetricsLog::read_csv(const std::string& path) {
  std::istringstream in(read_text(path));
  MetricsLog log;
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ": empty metrics file (expected a header line)");
  {
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, ',')) log.columns_.push_back(col);
  }
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    std::map<std::string, double> r;
    std::stringstream ss(line);
    std::string cell;
    size_t c = 0;
    while (std::getline(ss, cell, ',')) {
      if (c >= log.columns_.size()) {
        throw std::runtime_error(path + ":" + std::to_string(lineno) + ": more cells than the " +
                                 std::to_string(log.columns_.size()) + " header columns");
      }
      if (!cell.empty()) {
        char* end = nullptr;
        const double v = std::strtod(cell.c_str(), &end);
        if (end == cell.c_str() || *end != '\0') {
          throw std::runtime_error(path + ":" + std::to_string(lineno) + ": cell '" + cell + "' in column '" +
                                   log.columns_[c] + "' is not a number");
        }
        r[log.columns_[c]] = v;
      }
      ++c;
    }
    log.rows_.push_back(std::move(r));
  }
  return log;
}

}  // namespace experiments
}  // namespace scalpel
