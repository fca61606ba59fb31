// The shared experiment runner: common command-line flags, λ × method sweeps, per-run folders,
// metrics, checkpoints and resume, and the sweep outputs (fronts, hypervolume, plots, report).
//
// An experiment binary is a thin main that describes itself and provides one function that
// performs a single run:
//
//   int main(int argc, char** argv) {
//     experiments::Experiment e;
//     e.name = "scalpel-toy";
//     e.summary = "the paper's 2-D conditioning example";
//     e.example = "scalpel-toy --methods mixed,bloop --lambdas 0.01,0.1,1 --out runs/toy";
//     e.presets = {{"cpu", {{"steps", "2000"}, {"lr", "0.5"}}}, {"paper", {...}}};
//     e.run = [](experiments::RunContext& ctx) { ... ctx.log({{"step", s}, {"train_main", l0}, ...}); };
//     return experiments::run_main(argc, argv, e);
//   }
//
// run_main parses the flags (CLI11; a bad flag or value prints a message naming the flag and
// returns 2), applies the preset (a flag given on the command line always wins), writes
// `config.json`, runs every (method, λ) of the grid in its own folder `<out>/<method>/lambda_<λ>`
// (a failed run is recorded as failed and the sweep goes on), then builds the sweep outputs (see
// experiments/runner/report.h). Every run logs rows to `metrics.csv` and finishes with
// `summary.json`. Runs that support it write checkpoints every `--checkpoint-every` steps; with
// `--resume DIR` finished runs are kept and interrupted ones continue from their last checkpoint.
// With `--rhos a,b,c` the grid gains an EMA-rate axis: (method, ρ) pairs become variants.
// Experiments build their surgeon with surgeon_options(ctx), which applies λ, --rho/--rhos and
// the other surgeon flags.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/state_dict.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/progress.h"
#include "optim/surgery/surgeon.h"

namespace CLI {
class App;
}

namespace scalpel {
namespace experiments {

// Every effective option of an invocation. Values not set on the command line come from the
// preset, then from these defaults.
struct Config {
  std::string experiment;
  std::string preset = "cpu";
  std::vector<std::string> methods{"bloop"};
  std::vector<double> lambdas{0.1};
  // Optional third grid axis: EMA rates (--rhos). Each (method, rho) pair is then its own variant
  // "<method>-rho<ρ>" in folders, fronts and plots (e.g. the EMA ablation).
  std::vector<double> rhos;
  std::map<std::string, std::string> surgeon;  // rho, eps, ema_order, ema_init, rescale, ratio_only
  // --method-set KEY=VALUE: options of the methods that take them (c for cagrad, ...).
  std::map<std::string, std::string> method_options;
  // The loss weighting (--weighting; "none" = the losses as they are) and its options
  // (--weighting-set KEY=VALUE), checked at parse (optim/weighting/weighting.h).
  std::string weighting = "none";
  std::map<std::string, std::string> weighting_options;
  int64_t steps = 0;  // 0: use epochs
  int64_t epochs = 0;
  int64_t batch_size = 0;
  double lr = 0.0;
  std::string schedule = "constant";
  std::string optimizer = "adam";
  uint64_t seed = 0;
  int threads = 0;  // 0: OpenMP default
  std::string data_dir = "data";
  bool data_dir_given = false;  // --data-dir on the command line: the data must come from there
  std::string out;
  int64_t eval_every = 0;
  int64_t checkpoint_every = 0;  // 0: no checkpoints
  std::string resume;
  bool overwrite = false;      // --overwrite: replace an earlier sweep in --out
  bool keep_diverged = false;  // --keep-diverged: diverged runs stay on the fronts
  double hv_main_cap = NAN;    // --hv-main-cap: the capped hypervolume's main-loss cap (NaN: from the runs)
  double clip_grad_norm = 0.0;
  bool fused_mixed = false;  // Mixed with one backward of the weighted loss sum (no per-loss diagnostics)
  bool quiet = false;
  // Data parallel (mpirun): the number of ranks, whether --batch-size was per rank (it is then
  // multiplied by world_size, so batch_size is always the global batch), and the replica check.
  int world_size = 1;
  bool batch_per_rank = false;
  bool sweep_parallel = false;  // --sweep-parallel: each run on one rank (world_size 1 per run)
  int64_t dist_check_every = 100;
  // Experiment-specific options (--set KEY=VALUE or the experiment's own flags), by name.
  std::map<std::string, std::string> extra;
  // Test hook (hidden flag --inject-rank-error RANK:STEP): rank RANK alone throws at STEP.
  int inject_error_rank = -1;
  int64_t inject_error_step = -1;
  // Test hook (hidden flag --inject-nan STEP[:LOSS]): make loss LOSS non-finite at STEP.
  int64_t inject_nan_step = -1;
  int inject_nan_loss = 0;

  nlohmann::json to_json() const;
  // Typed access to `extra` with a default; throws std::invalid_argument naming the option.
  double extra_double(const std::string& key, double fallback) const;
  int64_t extra_int(const std::string& key, int64_t fallback) const;
  bool extra_bool(const std::string& key, bool fallback) const;
  std::string extra_string(const std::string& key, const std::string& fallback) const;
};

// One point of the grid.
struct RunSpec {
  std::string method;   // the surgeon to build ("bloop")
  std::string variant;  // the group this run belongs to in outputs ("bloop", or "bloop-rho0.01")
  double lambda = 0.0;
  std::optional<double> rho;  // from --rhos (overrides --rho)
  std::optional<int> task;    // the stl baseline's task (method "stl": one run per task)
  std::string dir;            // the run's folder: <out>/<variant>/lambda_<λ>
  std::string label;          // "bloop λ=0.1"
  int index = 0;              // position in the grid
};

// Thrown by a run that hit a non-finite loss or gradient; the message names the step and loss.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a run function gets: its spec, the configuration, and the logging / checkpoint services.
class RunContext {
 public:
  RunContext(const Config& config, RunSpec spec, MetricsLog& metrics, Progress& progress);

  const Config& config() const { return config_; }
  const RunSpec& spec() const { return spec_; }
  Progress& progress() { return progress_; }

  // Appends a metrics row (also kept for summary.json's final values). Keys not in the log's
  // columns are added as new columns.
  void log(const std::vector<std::pair<std::string, double>>& row);
  const MetricsLog& metrics() const { return metrics_; }

  // Checkpoints: `<run dir>/checkpoint.ckpt`, written atomically.
  bool checkpoint_due(int64_t step) const;  // step > 0 && step % checkpoint_every == 0
  void save_checkpoint(const StateDict& state);
  // The checkpoint to resume from, when resuming and one exists.
  std::optional<StateDict> resume_checkpoint() const;
  // Drops metric rows after `step` (a resumed run re-logs from its checkpoint on).
  void truncate_metrics_after(int64_t step);

  // Final values for summary.json (besides the last metrics row).
  void set_final(const std::string& key, double value) { final_[key] = value; }
  void set_final(const std::string& key, const std::string& value) { final_text_[key] = value; }
  const std::map<std::string, double>& finals() const { return final_; }
  const std::map<std::string, std::string>& final_texts() const { return final_text_; }

  // Test hook: true when the configuration asks for loss `k` to be made non-finite at `step`.
  // Throws on the rank and step of --inject-rank-error (a failure the other ranks do not see).
  void inject_rank_error(int64_t step) const;
  bool inject_nan(int64_t step, int k) const;

 private:
  const Config& config_;
  RunSpec spec_;
  MetricsLog& metrics_;
  Progress& progress_;
  std::map<std::string, double> final_;
  std::map<std::string, std::string> final_text_;
};

// Thrown for a bad flag or value; run_main prints it and exits with code 2.
class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// An experiment-specific flag: its name, help, and the values it accepts, checked when the flags
// are parsed (also for preset values). Text options accept anything.
struct OptionSpec {
  enum class Kind { Text, Integer, Real, Boolean };
  std::string name, help;
  Kind kind = Kind::Text;
  double lo = 0.0, hi = 0.0;  // inclusive range of Integer and Real values
  // Optional check of a Text value at parse time; throws UsageError naming the flag.
  std::function<void(const std::string&)> check;
  OptionSpec(std::string n, std::string h) : name(std::move(n)), help(std::move(h)) {}
  OptionSpec(const char* n, const char* h) : name(n), help(h) {}
};
OptionSpec int_option(std::string name, std::string help, int64_t lo, int64_t hi);
OptionSpec real_option(std::string name, std::string help, double lo, double hi);
OptionSpec bool_option(std::string name, std::string help);
// Throws UsageError naming --<name>, what it accepts and what it got.
void check_option_value(const OptionSpec& option, const std::string& value);

struct Experiment {
  std::string name;     // binary name, e.g. "scalpel-smooth-mlp"
  std::string summary;  // one line: what it reproduces
  std::string example;  // an example command line for --help
  // Preset name -> option values (keys as the long flags without "--", e.g. "steps", "lr", or any
  // experiment-specific key). "cpu" is the default preset.
  std::map<std::string, std::map<std::string, std::string>> presets;
  // Experiment-specific flags: (name, help). Values land in Config::extra.
  std::vector<OptionSpec> options;
  // Axis labels for plots and reports.
  std::string main_label = "main loss";
  std::string aux_label = "auxiliary loss";
  bool log_axes = false;  // log-scale plots and hypervolume normalisation
  // Plots only: log scale on one axis (e.g. a loss that spans decades next to one that can be
  // negative). Hypervolume follows log_axes.
  bool plot_log_x = false, plot_log_y = false;
  // Extra plots of one final metric (a column of summary.json "final") against λ, one line per
  // method, written as <name>.png by every report of the sweep (also scalpel-report and --merge).
  struct VsLambdaPlot {
    std::string name;    // file stem, e.g. "bleu_vs_lambda"
    std::string column;  // e.g. "eval_bleu"
    std::string label;   // y axis, e.g. "eval BLEU"
  };
  std::vector<VsLambdaPlot> vs_lambda_plots;
  // false: the experiment is not a trade-off sweep (e.g. scalpel-noise); no fronts/hypervolume.
  bool pareto = true;
  // The study shards its batches over MPI ranks (data parallel under mpirun). A study without
  // data to shard (the analytic ones) spreads its runs over the ranks instead (--sweep-parallel).
  bool shards_data = false;
  // Performs one run. Throws to mark the run as failed (the sweep goes on).
  std::function<void(RunContext&)> run;
  // Optional, for experiments that read a data set: resolves and loads the data every run will use,
  // once, before the first run, and describes it (name, path, synthetic or not, sizes, checksum);
  // the description goes into config.json and every summary.json under "data". Throws UsageError
  // (exit 2) when the data is not where the flags say, anything else (exit 1) for unreadable data.
  // Without it, --data-dir is refused as a flag the experiment does not use.
  std::function<nlohmann::json(const Config&, Progress&)> prepare_data;
  // true: runs train through train() (experiments/runner/trainer.h), which applies --weighting;
  // otherwise a --weighting other than none is refused at parse (use_splits sets it).
  bool weighting = false;
  // Multi-task studies: the number of tasks of a run (method "stl" then expands into one
  // single-task baseline run per task, <out>/stl/task_<k>), and the per-task metrics for Δm%
  // (written to config.json as "task_metrics": [{"task", "column", "higher_is_better"}, ...]).
  std::function<int(const Config&)> num_tasks;
  std::function<nlohmann::json(const Config&)> task_metrics;
  // Optional: called once after the sweep (e.g. extra plots); gets the sweep folder.
  std::function<void(const Config&, const std::string& out_dir)> after_sweep;
};

// Parses argv, runs the sweep and writes every output. Returns the process exit code: 0 when every
// run finished (diverged runs included: they are marked and reported), 1 when some runs failed
// (the count is printed; the others are kept) or on another error, 2 on a usage error.
int run_main(int argc, char** argv, const Experiment& experiment);

// The flags of `args` (argv without the program name) as a Config, every value checked; throws
// UsageError naming the flag. std::nullopt for --help (the help text goes to stdout).
std::optional<Config> parse_config(const Experiment& experiment, const std::vector<std::string>& args);

// A diverged run: its last eval_main is not finite, or it grew to more than 10 times its first
// value and by more than 1 (e.g. a cross-entropy of 5e5 after starting at 2.3).
bool diverged(const MetricsLog& metrics);

// The surgeon options of a run: λ, the EMA rate (--rhos, else --rho), the other surgeon flags,
// and the seed. `defaults` holds experiment defaults that flags override (e.g. the toy's eps).
surgery::SurgeonOptions surgeon_options(const RunContext& ctx, const std::map<std::string, std::string>& defaults = {});

// Parses a λ list: "0.1", "0,0.01,0.1", or "logspace:A:B:N" (N values 10^A .. 10^B).
// Throws std::invalid_argument naming `flag` on a malformed value.
std::vector<double> parse_lambdas(const std::string& text, const std::string& flag);
// "lambda_0.001", stable and filesystem-safe.
std::string lambda_dirname(double lambda);
// True for the main/auxiliary methods (mixed, bloop, ...), which weigh the auxiliary losses by λ;
// the symmetric multi-task methods and stl ignore it.
bool method_takes_lambda(const std::string& method);
// The λ a run of `method` is recorded with when the sweep asks for `lambda`: the methods that
// ignore λ run once, recorded as λ = 1; the others keep `lambda`.
double recorded_lambda(const std::string& method, double lambda);
// True when `method` reads method option `key` (made once with key=value to see); false, filling
// `error` when given, when it does not take the key. A bad value for a key it takes throws
// std::invalid_argument naming the method and the option.
bool method_takes_option(const std::string& method, const std::string& key, const std::string& value,
                         std::string* error);
// Git revision of the build (12 hex digits, "+dirty" with uncommitted changes, "unknown" outside
// a checkout), regenerated at every build.
std::string git_revision();

}  // namespace experiments
}  // namespace scalpel
