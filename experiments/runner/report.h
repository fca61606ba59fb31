// Sweep outputs, rebuilt from the run folders alone (so `scalpel-report DIR` can redo them):
//
//   front.csv            one row per run: method, λ, status, final train/eval main and aux losses,
//                        whether the run is on its method's train / eval Pareto front
//   hypervolume.json     per method, for train and eval (ALGORITHMS.md §6 normalisation)
//   pareto_train.png/.svg, pareto_eval.png/.svg
//                        gnuplot: one colour per method, trajectories faint, final points large
//                        (labelled with λ), each method's front drawn as a line
//   curves.png           main and auxiliary eval losses against steps, one line per run
//   report.md            a short table of the results with the plots linked
//
// A run folder holds summary.json ({"method", "lambda", "status", "final": {...}}) and
// metrics.csv (columns step, train_main, train_aux, eval_main, eval_aux, ...). The sweep folder
// holds config.json with "methods", "lambdas" and "plot" ({main_label, aux_label, log_axes}).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace scalpel {
namespace experiments {

struct RunSummary {
  std::string method;
  double lambda = 0.0;
  std::string status;      // "done", "diverged", "failed", "running", "missing", "unreadable"
  bool on_fronts = false;  // done, or diverged with --keep-diverged
  std::string error;
  std::string dir;
  double train_main = 0, train_aux = 0, eval_main = 0, eval_aux = 0;
  double seconds = 0;
};

struct SweepReport {
  std::vector<RunSummary> runs;
  std::map<std::string, double> hv_train, hv_eval;
  std::vector<std::string> files;  // outputs written
  std::vector<std::string> warnings;
};

// Reads every run of the sweep in `dir` and writes the outputs listed above. Throws
// std::runtime_error naming the file when config.json is missing or malformed; a run folder
// without summary.json is reported as "missing".
SweepReport build_sweep_report(const std::string& dir);

// The hypervolume table and output paths, as printed at the end of a sweep.
std::string format_report_summary(const SweepReport& r, const std::string& dir);

// Colour of a method in plots ("#rrggbb"); fixed for the four paper methods.
std::string method_color(const std::string& method, size_t index);

// True if `gnuplot` can be run.
bool gnuplot_available();
// Runs gnuplot on a script file; returns false (and fills `error`) when it fails.
bool run_gnuplot(const std::string& script_path, std::string* error);

}  // namespace experiments
}  // namespace scalpel
