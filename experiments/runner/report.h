// Sweep outputs, rebuilt from the run folders alone (so `scalpel-report DIR` can redo them):
//
//   front.csv            one row per run: method, λ, status, final train/eval main and aux losses,
//                        whether the run is on its method's train / eval Pareto front
//   hypervolume.json     per method, for train and eval (ALGORITHMS.md §6 normalisation), the
//                        capped hypervolume (only points whose main loss beats the main-only
//                        baseline count; pareto.h) and, for K-task sweeps with stl baselines,
//                        each method's best Δm% (below)
//   pareto_train.png/.svg, pareto_eval.png/.svg
//                        gnuplot: one colour per method, trajectories faint, final points large
//                        (labelled with λ), each method's front drawn as a line
//   curves.png           main and auxiliary eval losses against steps, one line per run
//   <name>.png           for each config "plot" "vs_lambda" entry {name, column, label}: that final
//                        metric of every finished run against λ, one line per method (data in
//                        plots/<name>.csv), e.g. scalpel-translation's bleu_vs_lambda.png
//   report.md            a short table of the results with the plots linked
//
// A run folder holds summary.json ({"method", "lambda", "status", "final": {...}}) and
// metrics.csv (columns step, train_main, train_aux, eval_main, eval_aux, ...). The sweep folder
// holds config.json with "methods", "lambdas" and "plot" ({main_label, aux_label, log_axes, log_x,
// log_y, vs_lambda}), optionally "runs" (method, lambda, dir, task), "hv_main_cap" and
// "task_metrics".
//
// Δm% (the multi-task literature's average relative drop, as in the Nash-MTL and CAGrad papers;
// lower is better, negative means better than the single-task baselines):
//   Δm% = 100/K Σ_k (−1)^{δ_k} (M_k − B_k) / B_k
// over config "task_metrics" [{task, column, higher_is_better}], where M_k is the run's final value
// of column k, B_k that of the done stl run of task k, and δ_k = 1 when higher is better. LibMTL's
// Δp is −Δm%. It is n/a when a baseline is missing or zero, and for the stl runs themselves.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace scalpel {
namespace experiments {

struct RunSummary {
  std::string method;   // the variant's name (method, or method@rho=...)
  std::string surgeon;  // the surgery method (summary.json "surgeon")
  double lambda = 0.0;
  std::string status;      // "done", "diverged", "failed", "running", "missing", "unreadable"
  bool on_fronts = false;  // done, or diverged with --keep-diverged
  std::string error;
  std::string dir;
  int task = -1;  // the stl run's task, else -1
  double train_main = 0, train_aux = 0, eval_main = 0, eval_aux = 0;
  double seconds = 0;
  std::map<std::string, double> finals;  // every number of summary.json "final"
  double delta_m = NAN;                  // Δm% against the stl baselines (NaN: n/a)
};

// Where the capped hypervolume's main-loss cap came from.
struct MainCap {
  double train = NAN, eval = NAN;
  std::string source;  // "--hv-main-cap", "<method> lambda=0", "stl task 0", or "none"
};

struct SweepReport {
  std::vector<RunSummary> runs;
  std::map<std::string, double> hv_train, hv_eval;
  std::map<std::string, double> hv_train_capped, hv_eval_capped;
  MainCap cap;
  std::map<std::string, double> best_delta_m;  // per method, the lowest Δm% of its runs (when known)
  std::vector<std::string> files;              // outputs written
  std::vector<std::string> warnings;
};

// Reads every run of the sweep in `dir` and writes the outputs listed above. Throws
// std::runtime_error naming the file when config.json is missing or malformed; a run folder
// without summary.json is reported as "missing". A finite `hv_main_cap` overrides the config's.
SweepReport build_sweep_report(const std::string& dir, double hv_main_cap = NAN);

// The hypervolume table and output paths, as printed at the end of a sweep.
std::string format_report_summary(const SweepReport& r, const std::string& dir);

// Colour of a method in plots ("#rrggbb"); fixed for the four paper methods.
std::string method_color(const std::string& method, size_t index);

// True if `gnuplot` can be run.
bool gnuplot_available();
// Runs gnuplot on a script file; returns false (and fills `error`) when it fails.
bool run_gnuplot(const std::string& script_path, std::string* error);
// A study's own plot: writes <out_dir>/plots/<name>.gp (a 900x620 PNG terminal writing
// <out_dir>/<name>.png, comma-separated data, a light grid, then `body`) and runs it when gnuplot
// is installed. Returns "" on success or without gnuplot, else the warning to show.
std::string write_plot(const std::string& out_dir, const std::string& name, const std::string& body);

}  // namespace experiments
}  // namespace scalpel
