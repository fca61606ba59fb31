// MetricsLog: the rows of a run's metrics.csv (one per evaluation), kept in memory and rewritten
// atomically (temp file + fsync + rename), so the file on disk is always complete and never
// half-written. To keep fsyncs off the training loop, append() rewrites the file at most every
// `flush_interval` seconds; flush() (called at checkpoints and at the end of a run) always does.
//
// Columns are added in first-seen order; a row missing a column writes an empty cell (read back
// as NaN). Numbers are written with 9 significant digits (enough to round-trip a float).
// read_csv() parses the same format back, for `scalpel-report` and for resuming a run.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace scalpel {
namespace experiments {

class MetricsLog {
 public:
  MetricsLog() = default;
  // path empty: in memory only.
  explicit MetricsLog(std::string path, double flush_interval = 2.0)
      : path_(std::move(path)), flush_interval_(flush_interval) {}

  void append(const std::vector<std::pair<std::string, double>>& row);
  // Appends every row of `other` without touching the file (a resumed run restores its rows this
  // way: rewriting the file after the first restored row would lose the rest on a kill -9).
  void append_rows(const MetricsLog& other);
  // Drops rows whose "step" is greater than `step`, and rewrites the file.
  void truncate_after(int64_t step);
  void flush() const;

  const std::vector<std::string>& columns() const { return columns_; }
  size_t rows() const { return rows_.size(); }
  // Value of `column` in row i (NaN when absent).
  double at(size_t i, const std::string& column) const;
  // The last row's value of `column` that is finite, or NaN.
  double last(const std::string& column) const;
  std::vector<double> column(const std::string& name) const;

  std::string to_csv() const;
  // Parses a metrics.csv; throws std::runtime_error naming the path on a malformed file.
  static MetricsLog read_csv(const std::string& path);

 private:
  std::string path_;
  double flush_interval_ = 2.0;
  mutable double last_flush_ = -1e300;
  std::vector<std::string> columns_;
  std::vector<std::map<std::string, double>> rows_;
};

// Writes `text` to `path` atomically (temp file, fsync, rename).
void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace experiments
}  // namespace scalpel
