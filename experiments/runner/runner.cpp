#include "experiments/runner/runner.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/dist.h"
#include "core/parallel.h"
#include "experiments/runner/report.h"
#include "experiments/runner/sweep_dir.h"
#include "optim/surgery/surgeon.h"
#include "optim/weighting/weighting.h"

namespace fs = std::filesystem;

namespace scalpel {
namespace experiments {

// ---- Config --------------------------------------------------------------------------------------

nlohmann::json Config::to_json() const {
  nlohmann::json j;
  j["experiment"] = experiment;
  j["preset"] = preset;
  j["methods"] = methods;
  j["lambdas"] = lambdas;
  j["rhos"] = rhos;
  j["surgeon"] = surgeon;
  j["method_options"] = method_options;
  j["weighting"] = weighting;
  j["weighting_options"] = weighting_options;
  j["steps"] = steps;
  j["epochs"] = epochs;
  j["batch_size"] = batch_size;
  j["lr"] = lr;
  j["schedule"] = schedule;
  j["optimizer"] = optimizer;
  j["seed"] = seed;
  j["threads"] = threads;
  j["data_dir"] = data_dir;
  j["out"] = out;
  j["eval_every"] = eval_every;
  j["checkpoint_every"] = checkpoint_every;
  j["clip_grad_norm"] = clip_grad_norm;
  j["fused_mixed"] = fused_mixed;
  j["world_size"] = world_size;
  j["sweep_parallel"] = sweep_parallel;
  j["dist_check_every"] = dist_check_every;
  j["keep_diverged"] = keep_diverged;
  if (std::isfinite(hv_main_cap)) j["hv_main_cap"] = hv_main_cap;
  j["data_dir_given"] = data_dir_given;
  j["options"] = extra;
  return j;
}

namespace {
// Strict integer parsing for a flag: the whole text, no overflow, within [lo, hi].
int64_t parse_int_flag(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != '\0') {
    throw UsageError(flag + ": '" + text + "' is not an integer");
  }
  if (errno == ERANGE || v < lo || v > hi) {
    throw UsageError(flag + ": " + text + " is out of range (expected " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ")");
  }
  return v;
}

// Strict real parsing for a flag: finite, within [lo, hi].
double parse_real_flag(const std::string& flag, const std::string& text, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || *end != '\0') throw UsageError(flag + ": '" + text + "' is not a number");
  if (!std::isfinite(v) || errno == ERANGE) {
    throw UsageError(flag + ": '" + text + "' is not a finite number");
  }
  if (v < lo || v > hi) {
    std::ostringstream os;
    os << flag << ": " << text << " is out of range (expected " << lo << " to " << hi << ")";
    throw UsageError(os.str());
  }
  return v;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
  return out;
}

const std::string* find_extra(const Config& c, const std::string& key) {
  auto it = c.extra.find(key);
  return it == c.extra.end() || it->second.empty() ? nullptr : &it->second;
}
}  // namespace

double Config::extra_double(const std::string& key, double fallback) const {
  const std::string* v = find_extra(*this, key);
  return v ? parse_real_flag("--" + key, *v, -HUGE_VAL, HUGE_VAL) : fallback;
}

int64_t Config::extra_int(const std::string& key, int64_t fallback) const {
  const std::string* v = find_extra(*this, key);
  return v ? parse_int_flag("--" + key, *v, INT64_MIN, INT64_MAX) : fallback;
}

bool Config::extra_bool(const std::string& key, bool fallback) const {
  const std::string* v = find_extra(*this, key);
  if (!v) return fallback;
  if (*v == "1" || *v == "true" || *v == "yes" || *v == "on") return true;
  if (*v == "0" || *v == "false" || *v == "no" || *v == "off") return false;
  throw std::invalid_argument("--" + key + ": '" + *v + "' is not a boolean (expected true/false/1/0)");
}

std::string Config::extra_string(const std::string& key, const std::string& fallback) const {
  const std::string* v = find_extra(*this, key);
  return v ? *v : fallback;
}

OptionSpec int_option(std::string name, std::string help, int64_t lo, int64_t hi) {
  OptionSpec o(std::move(name), std::move(help));
  o.kind = OptionSpec::Kind::Integer;
  o.lo = static_cast<double>(lo);
  o.hi = static_cast<double>(hi);
  return o;
}

OptionSpec real_option(std::string name, std::string help, double lo, double hi) {
  OptionSpec o(std::move(name), std::move(help));
  o.kind = OptionSpec::Kind::Real;
  o.lo = lo;
  o.hi = hi;
  return o;
}

OptionSpec bool_option(std::string name, std::string help) {
  OptionSpec o(std::move(name), std::move(help));
  o.kind = OptionSpec::Kind::Boolean;
  return o;
}

bool diverged(const MetricsLog& m) {
  const std::vector<double> v = m.column("eval_main");
  double first = NAN, last = NAN;
  for (double x : v) {
    if (std::isnan(x)) continue;
    if (std::isnan(first) && std::isfinite(x)) first = x;
    last = x;
  }
  if (std::isnan(last)) return false;  // nothing evaluated
  if (!std::isfinite(last)) return true;
  return std::isfinite(first) && last > 10.0 * std::fabs(first) && last - first > 1.0;
}

// ---- RunContext ---------------------------------------------------------------------------------

RunContext::RunContext(const Config& config, RunSpec spec, MetricsLog& metrics, Progress& progress)
    : config_(config), spec_(std::move(spec)), metrics_(metrics), progress_(progress) {}

void RunContext::log(const std::vector<std::pair<std::string, double>>& row) { metrics_.append(row); }

bool RunContext::checkpoint_due(int64_t step) const {
  return config_.checkpoint_every > 0 && step > 0 && step % config_.checkpoint_every == 0;
}

void RunContext::save_checkpoint(const StateDict& state) {
  metrics_.flush();
  if (dist::rank() != 0) return;  // data parallel: rank 0 writes, every rank holds the same state
  // The last good checkpoint is kept as checkpoint.prev.ckpt (a rename: atomic), then the new one
  // is written atomically; at every instant at least one complete checkpoint exists.
  const std::string path = spec_.dir + "/checkpoint.ckpt", prev = spec_.dir + "/checkpoint.prev.ckpt";
  std::error_code ec;
  if (fs::exists(path)) fs::rename(path, prev, ec);
  state.save(path);
}

std::optional<StateDict> RunContext::resume_checkpoint() const {
  if (config_.resume.empty()) return std::nullopt;
  const std::string path = spec_.dir + "/checkpoint.ckpt", prev = spec_.dir + "/checkpoint.prev.ckpt";
  std::string first_error;
  if (fs::exists(path)) {
    try {
      return StateDict::load(path);
    } catch (const std::exception& err) {
      first_error = err.what();
    }
  }
  if (!fs::exists(prev)) {
    if (first_error.empty()) return std::nullopt;
    throw std::runtime_error(first_error + "; no previous checkpoint " + prev + " to fall back to");
  }
  try {
    StateDict s = StateDict::load(prev);
    // A warning even under --quiet: the run continues from an older state than the user may think.
    std::cerr << "[" << spec_.label << "] " << (first_error.empty() ? path + " is missing" : first_error)
              << ": resuming from the previous checkpoint " << prev << "\n";
    return s;
  } catch (const std::exception& err) {
    throw std::runtime_error((first_error.empty() ? path + " is missing" : first_error) +
                             "; the previous checkpoint is unreadable too: " + err.what());
  }
}

void RunContext::truncate_metrics_after(int64_t step) { metrics_.truncate_after(step); }

void RunContext::inject_rank_error(int64_t step) const {
  if (config_.inject_error_step == step && config_.inject_error_rank == dist::job_rank()) {
    throw std::runtime_error("step " + std::to_string(step) + ": injected failure on this rank alone (test hook)");
  }
}

bool RunContext::inject_nan(int64_t step, int k) const {
  return config_.inject_nan_step >= 0 && step == config_.inject_nan_step && k == config_.inject_nan_loss;
}

bool method_takes_lambda(const std::string& method) {
  const std::vector<std::string> main_aux = surgery::main_aux_surgeon_names();
  return std::find(main_aux.begin(), main_aux.end(), method) != main_aux.end();
}

double recorded_lambda(const std::string& method, double lambda) { return method_takes_lambda(method) ? lambda : 1.0; }

bool method_takes_option(const std::string& method, const std::string& key, const std::string& value,
                         std::string* error) {
  // The main/auxiliary methods read only the core options (their own flags), never method options.
  if (method_takes_lambda(method)) {
    if (error) *error = method + ": option '" + key + "' does not apply to " + method + " (a main/auxiliary method)";
    return false;
  }
  surgery::SurgeonOptions so;
  so.set(key, value);
  try {
    surgery::make_surgeon(method, so);  // a bad value throws std::invalid_argument through
  } catch (const surgery::OptionNotTaken& err) {
    if (error) *error = err.what();
    return false;
  }
  return true;
}

surgery::SurgeonOptions surgeon_options(const RunContext& ctx, const std::map<std::string, std::string>& defaults) {
  const Config& c = ctx.config();
  surgery::SurgeonOptions so;
  so.lambda(ctx.spec().lambda).seed(c.seed);
  for (const auto& [k, v] : defaults) {
    if (!c.surgeon.count(k)) so.set(k, v);
  }
  for (const auto& [k, v] : c.surgeon) so.set(k, v);
  // A study's Bloop-only EMA rate (option "bloop-rho", e.g. the multi-task recipe's 0.001): the
  // baselines keep their own default (rho 1, the paper's setting), an explicit --rho wins.
  if (ctx.spec().method == "bloop" && !c.surgeon.count("rho") && !c.extra_string("bloop-rho", "").empty()) {
    so.rho(c.extra_double("bloop-rho", 0.01));
  }
  if (ctx.spec().rho) so.rho(*ctx.spec().rho);
  if (ctx.spec().task) so.set("task", std::to_string(*ctx.spec().task));
  for (const auto& [k, v] : c.method_options) {
    if (method_takes_option(ctx.spec().method, k, v, nullptr)) so.set(k, v);
  }
  return so;
}

// ---- helpers ------------------------------------------------------------------------------------

std::vector<double> parse_lambdas(const std::string& text, const std::string& flag) {
  auto number = [&](const std::string& s) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end == s.c_str() || *end != '\0' || !std::isfinite(v)) {
      throw std::invalid_argument(flag + ": '" + s + "' is not a number (in '" + text + "')");
    }
    return v;
  };
  std::vector<double> out;
  if (text.rfind("logspace:", 0) == 0) {
    std::vector<std::string> parts;
    std::stringstream ss(text.substr(9));
    std::string p;
    while (std::getline(ss, p, ':')) parts.push_back(p);
    if (parts.size() != 3) {
      throw std::invalid_argument(flag + ": '" + text + "' should be logspace:A:B:N (N values from 10^A to 10^B)");
    }
    const double a = number(parts[0]), b = number(parts[1]);
    const double n = number(parts[2]);
    if (n < 1 || n != std::floor(n) || n > 10000)
      throw std::invalid_argument(flag + ": N in '" + text + "' must be an integer from 1 to 10000");
    for (int i = 0; i < static_cast<int>(n); ++i) {
      const double e = n == 1 ? a : a + (b - a) * i / (n - 1);
      out.push_back(std::pow(10.0, e));
    }
    return out;
  }
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(number(item));
  if (out.empty()) throw std::invalid_argument(flag + ": expected at least one value");
  for (double v : out) {
    if (v < 0) throw std::invalid_argument(flag + ": lambda must be non-negative, got " + std::to_string(v));
  }
  return out;
}

std::string lambda_dirname(double lambda) {
  std::ostringstream os;
  os << std::setprecision(6) << lambda;
  std::string s = os.str();
  for (char& c : s) {
    if (c == '+') c = 'p';
  }
  return "lambda_" + s;
}

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

const std::vector<std::string> kOptimizers{"sgd", "sgd-nesterov", "adam", "adamw"};
const std::vector<std::string> kSchedules{"constant", "cosine", "warmup-cosine", "step", "warmup-rsqrt"};
constexpr int64_t kMaxSteps = 1000000000000LL;  // 1e12: beyond any run this code can finish
constexpr int64_t kMaxThreads = 64;             // OpenBLAS's thread limit in the Debian build
constexpr size_t kMaxGrid = 100000;             // runs in one sweep

struct Parsed {
  Config cfg;
  std::vector<std::string> args;  // the original arguments (for config.json and resume)
};

// Parses the flags into a Config. Throws UsageError (exit 2) or returns an exit code via `code`
// for --help.
bool parse(const Experiment& e, const std::vector<std::string>& args, Parsed& out, int& code) {
  CLI::App app{e.summary, e.name};
  app.footer("Example:\n  " + e.example +
             "\n\nOutputs go to --out (config.json, one folder per run with metrics.csv and "
             "summary.json, front.csv, hypervolume.json, pareto_*.png/svg, curves.png, report.md).");
  app.get_formatter()->column_width(34);
  Config& c = out.cfg;
  std::string method, methods, lambda, lambdas, inject_nan, inject_rank_error;
  std::string rho, eps, ema_order, ema_init, rescale, ratio_only;
  app.add_option("--method", method,
                 "surgery method: " + join(surgery::surgeon_names()) +
                     " (the main/auxiliary ones take lambda; the others are K-task aggregators; docs/mtl.md)");
  app.add_option("--methods", methods, "comma-separated methods to sweep");
  app.add_option("--lambda", lambda, "trade-off lambda");
  app.add_option("--lambdas", lambdas, "lambdas to sweep: 0.01,0.1,1 or logspace:A:B:N");
  app.add_option("--rho", rho, "EMA rate of the main gradient (bloop default 0.01; baselines 1)");
  std::string weighting;
  std::vector<std::string> weighting_sets;
  app.add_option("--weighting", weighting,
                 "loss weighting applied before the method: " + join(weighting::weighting_names()) + " (default none)");
  app.add_option("--weighting-set", weighting_sets, "weighting option KEY=VALUE (repeatable), e.g. tau=2");
  std::vector<std::string> method_sets;
  app.add_option("--method-set", method_sets,
                 "surgery-method option KEY=VALUE (repeatable), e.g. c=0.4 for cagrad, max_norm=1 for nash-mtl; "
                 "see docs/mtl.md");
  std::string rhos;
  app.add_option("--rhos", rhos, "EMA rates to sweep (each (method, rho) becomes a variant), e.g. 0.001,0.01,0.1,0.9");
  app.add_option("--eps", eps, "added to squared norms in projections (default 1e-7)");
  app.add_option("--ema-order", ema_order, "update_then_project | project_then_update");
  app.add_option("--ema-init", ema_init, "first_grad | zeros | random");
  app.add_option("--rescale", rescale, "true: multiply d by 1/(1+lambda)");
  app.add_option("--ratio-only", ratio_only, "bloop: d = (1 - lambda r) g0 + lambda g1");
  // Numbers are taken as text and checked strictly below (no silent clamping or wrapping).
  std::map<std::string, std::string> num;
  app.add_option("--steps", num["steps"], "training steps per run");
  app.add_option("--epochs", num["epochs"], "training epochs per run (when --steps is not given)");
  app.add_option("--batch-size", num["batch-size"], "batch size");
  app.add_option("--lr", num["lr"], "learning rate");
  app.add_option("--schedule", c.schedule, "learning-rate schedule: " + join(kSchedules));
  app.add_option("--optimizer", c.optimizer, join(kOptimizers));
  app.add_option("--seed", num["seed"], "random seed");
  app.add_option("--threads", num["threads"], "threads for BLAS and Scalpel's loops (0: default)");
  app.add_option("--data-dir", c.data_dir,
                 "read the data set from here (DIR or DIR/<dataset>; never replaced by synthetic data)");
  bool out_given = false;
  app.add_option("--out", c.out, "output folder")->each([&](const std::string&) { out_given = true; });
  app.add_flag("--overwrite", c.overwrite, "replace the earlier sweep in --out");
  app.add_flag("--keep-diverged", c.keep_diverged, "keep diverged runs on the fronts");
  app.add_option("--hv-main-cap", num["hv-main-cap"],
                 "capped hypervolume: count only points with main loss below this (default: the main loss of the "
                 "lambda=0 run, else of the stl task-0 run)");
  app.add_option("--preset", c.preset, "cpu (default) or paper")->check(CLI::IsMember({"cpu", "paper"}));
  app.add_option("--eval-every", num["eval-every"], "evaluate every N steps");
  app.add_option("--checkpoint-every", num["checkpoint-every"], "write a checkpoint every N steps (0: never)");
  app.add_option("--resume", c.resume, "continue the sweep in this folder from its checkpoints");
  app.add_option("--clip-grad-norm", num["clip-grad-norm"], "clip the global norm of d (0: off)");
  app.add_flag("--fused-mixed", c.fused_mixed, "mixed: one backward of L0 + lambda L1 (faster; no cosine diagnostics)");
  app.add_flag("--quiet", c.quiet, "no progress output");
  app.add_flag("--sweep-parallel", c.sweep_parallel,
               "under mpirun: spread the runs over the ranks, each run on one rank alone (no data parallelism)");
  app.add_flag("--batch-per-rank", c.batch_per_rank,
               "under mpirun: --batch-size is per rank (global batch = N x batch size); default: global");
  app.add_option("--dist-check-every", num["dist-check-every"],
                 "under mpirun: compare the ranks' parameter checksums every N steps (0: never; default 100)");
  app.add_option("--inject-nan", inject_nan, "test hook: STEP[:LOSS]")->group("");
  app.add_option("--inject-rank-error", inject_rank_error, "test hook: RANK:STEP")->group("");
  std::map<std::string, std::string> extra_values;
  for (const OptionSpec& o : e.options) app.add_option("--" + o.name, extra_values[o.name], o.help);

  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp& h) {
    code = app.exit(h);
    return false;
  } catch (const CLI::ParseError& err) {
    throw UsageError(err.what());
  }
  auto given = [&](const std::string& flag) { return app.count("--" + flag) > 0; };

  // Preset values for everything not given explicitly.
  auto preset_it = e.presets.find(c.preset);
  if (preset_it == e.presets.end() && !e.presets.empty()) {
    throw UsageError("--preset: '" + c.preset + "' is not defined for " + e.name);
  }
  if (preset_it != e.presets.end()) {
    // Flags that replace a preset key: --method for methods, --lambda for lambdas, and --steps and
    // --epochs for each other (a run length given on the command line wins).
    const std::map<std::string, std::vector<std::string>> overrides{
        {"methods", {"method"}}, {"lambdas", {"lambda"}}, {"steps", {"epochs"}}, {"epochs", {"steps"}}};
    for (const auto& [key, value] : preset_it->second) {
      if (given(key)) continue;
      auto ov = overrides.find(key);
      bool replaced = false;
      if (ov != overrides.end()) {
        for (const std::string& f : ov->second) replaced = replaced || given(f);
      }
      if (replaced) continue;
      if (num.count(key)) {
        num[key] = value;
      } else if (key == "schedule") {
        c.schedule = value;
      } else if (key == "optimizer") {
        c.optimizer = value;
      } else if (key == "methods") {
        methods = value;
      } else if (key == "lambdas") {
        lambdas = value;
      } else if (key == "rho") {
        if (!given("rhos")) rho = value;
      } else {
        extra_values[key] = value;
      }
    }
  }
  // Numbers (given or from the preset), strictly: a run length or count given as 0 means nothing.
  auto num_int = [&](const std::string& k, int64_t lo, int64_t hi, int64_t& dst) {
    if (!num[k].empty()) dst = parse_int_flag("--" + k, num[k], lo, hi);
  };
  num_int("steps", 1, kMaxSteps, c.steps);
  num_int("epochs", 1, 1000000, c.epochs);
  num_int("batch-size", 1, 1 << 24, c.batch_size);
  num_int("eval-every", 1, kMaxSteps, c.eval_every);
  num_int("checkpoint-every", 0, kMaxSteps, c.checkpoint_every);
  num_int("dist-check-every", 0, kMaxSteps, c.dist_check_every);
  if (!e.shards_data && dist::world_size() > 1) c.sweep_parallel = true;  // nothing to shard: spread the runs
  c.world_size = c.sweep_parallel ? 1 : dist::world_size();               // ranks per run
  if (c.batch_per_rank && c.batch_size > 0) c.batch_size *= c.world_size;
  if (c.world_size > 1 && c.batch_size > 0 && c.batch_size < c.world_size) {
    throw UsageError("--batch-size: the global batch of " + std::to_string(c.batch_size) + " cannot be split over " +
                     std::to_string(c.world_size) + " ranks; use at least one example per rank (or --batch-per-rank)");
  }
  int64_t threads = 0;
  num_int("threads", 0, kMaxThreads, threads);
  c.threads = static_cast<int>(threads);
  if (!num["seed"].empty()) {
    const std::string& t = num["seed"];
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
    if (t.empty() || t[0] == '-' || t[0] == '+' || end == t.c_str() || *end != '\0' || errno == ERANGE) {
      throw UsageError("--seed: '" + t + "' is not a non-negative integer below 2^64");
    }
    c.seed = v;
  }
  if (!num["lr"].empty()) c.lr = parse_real_flag("--lr", num["lr"], 0.0, 1e30);
  if (!num["hv-main-cap"].empty()) {
    c.hv_main_cap = parse_real_flag("--hv-main-cap", num["hv-main-cap"], -1e30, 1e30);
  }
  if (!num["clip-grad-norm"].empty()) {
    c.clip_grad_norm = parse_real_flag("--clip-grad-norm", num["clip-grad-norm"], 0.0, 1e30);
  }
  if (std::find(kOptimizers.begin(), kOptimizers.end(), c.optimizer) == kOptimizers.end()) {
    throw UsageError("--optimizer: unknown optimizer '" + c.optimizer + "' (expected " + join(kOptimizers) + ")");
  }
  if (std::find(kSchedules.begin(), kSchedules.end(), c.schedule) == kSchedules.end()) {
    throw UsageError("--schedule: unknown schedule '" + c.schedule + "' (expected " + join(kSchedules) + ")");
  }
  for (const OptionSpec& o : e.options) {
    auto it = extra_values.find(o.name);
    if (it != extra_values.end() && !it->second.empty()) check_option_value(o, it->second);
  }
  c.data_dir_given = given("data-dir");
  if (c.data_dir_given && c.data_dir.empty()) throw UsageError("--data-dir: expected a folder, got an empty path");
  if (out_given && c.out.empty()) throw UsageError("--out: expected a folder, got an empty path");
  if (c.overwrite && !c.resume.empty()) throw UsageError("--overwrite and --resume cannot be combined");
  for (const auto& [k, v] : extra_values) {
    if (!v.empty()) c.extra[k] = v;
  }
  // Methods.
  if (!method.empty() && !methods.empty()) throw UsageError("--method and --methods cannot be combined");
  if (!method.empty()) c.methods = {method};
  if (!methods.empty()) c.methods = split_list(methods);
  if (c.methods.empty()) throw UsageError("--methods: expected at least one method");
  if (std::find(c.methods.begin(), c.methods.end(), "stl") != c.methods.end() && !e.num_tasks) {
    throw UsageError("--method stl: " + e.name +
                     " has no task list, so it cannot run single-task baselines (scalpel-multitask can)");
  }
  const std::vector<std::string> known = surgery::surgeon_names();
  for (std::string& m : c.methods) {
    if (m == "db") m = "dynamic-barrier";
    if (std::find(known.begin(), known.end(), m) == known.end()) {
      throw UsageError("--method: unknown method '" + m + "' (known: " + join(known) + ")");
    }
  }
  // Lambdas.
  if (!lambda.empty() && !lambdas.empty()) throw UsageError("--lambda and --lambdas cannot be combined");
  try {
    if (!lambda.empty()) c.lambdas = parse_lambdas(lambda, "--lambda");
    if (!lambdas.empty()) c.lambdas = parse_lambdas(lambdas, "--lambdas");
  } catch (const std::invalid_argument& err) {
    throw UsageError(err.what());
  }
  if (!rhos.empty()) {
    try {
      c.rhos = parse_lambdas(rhos, "--rhos");
    } catch (const std::invalid_argument& err) {
      throw UsageError(err.what());
    }
    for (double r : c.rhos) {
      if (!(r > 0.0 && r <= 1.0)) throw UsageError("--rhos: each rate must be in (0, 1], got " + std::to_string(r));
    }
    if (!rho.empty()) throw UsageError("--rho and --rhos cannot be combined");
  }
  // Surgeon options, validated by the surgery module itself.
  const std::vector<std::pair<std::string, std::string>> sopts{
      {"rho", rho},           {"eps", eps},         {"ema_order", ema_order},
      {"ema_init", ema_init}, {"rescale", rescale}, {"ratio_only", ratio_only}};
  for (const auto& [k, v] : sopts) {
    if (v.empty()) continue;
    try {
      surgery::SurgeonOptions().set(k, v);
    } catch (const std::invalid_argument& err) {
      std::string flag = k;
      std::replace(flag.begin(), flag.end(), '_', '-');
      throw UsageError("--" + flag + ": " + err.what());
    }
    c.surgeon[k] = v;
  }
  // Method options (--method-set): each applies to the methods of the sweep that take it, and at
  // least one must; a bad value is refused by the method that reads it.
  for (const std::string& kv : method_sets) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--method-set: expected KEY=VALUE, got '" + kv + "'");
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    try {
      surgery::SurgeonOptions().set(k, v);
    } catch (const std::invalid_argument& err) {
      throw UsageError(std::string("--method-set: ") + err.what());
    }
    for (const char* core : {"lambda", "rho", "eps", "ema_order", "ema_init", "rescale", "ratio_only", "seed"}) {
      if (k == core) {
        std::string flag = k;
        std::replace(flag.begin(), flag.end(), '_', '-');
        throw UsageError("--method-set: '" + k + "' has its own flag (--" + flag + ")");
      }
    }
    std::string last_error;
    bool taken = false;
    for (const std::string& m : c.methods) {
      try {
        if (method_takes_option(m, k, v, &last_error)) taken = true;
      } catch (const std::invalid_argument& err) {
        throw UsageError(std::string("--method-set: ") + err.what());  // the method takes it, the value is bad
      }
    }
    if (!taken) throw UsageError("--method-set: no method of the sweep takes option '" + k + "' (" + last_error + ")");
    c.method_options[k] = v;
  }
  // Loss weighting, validated by the weighting module itself (made once here and dropped).
  if (!weighting.empty()) c.weighting = weighting;
  for (const std::string& kv : weighting_sets) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--weighting-set: expected KEY=VALUE, got '" + kv + "'");
    }
    c.weighting_options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (c.weighting != "none" && !e.weighting) {
    throw UsageError("--weighting: " + e.name +
                     " does not train through the shared training step, so it takes no "
                     "loss weighting (only --weighting none)");
  }
  try {
    weighting::WeightingOptions wo;
    for (const auto& [k, v] : c.weighting_options) wo.set(k, v);
    weighting::make_weighting(c.weighting, wo);
  } catch (const std::invalid_argument& err) {
    const std::string what = err.what();
    throw UsageError((what.rfind("unknown weighting", 0) == 0 ? "--weighting: " : "--weighting-set: ") + what);
  }
  if (c.weighting == "imtl") {
    for (const std::string& m : c.methods) {
      if (m != "imtl-g") {
        throw UsageError(
            "--weighting imtl is the IMTL hybrid (imtl-l loss scales with the imtl-g aggregator): use "
            "--method imtl-g, or --weighting imtl-l with method '" +
            m + "'");
      }
    }
  }
  if (given("steps") && given("epochs")) throw UsageError("--steps and --epochs cannot be combined");
  if (c.methods.size() * c.lambdas.size() * std::max<size_t>(c.rhos.size(), 1) > kMaxGrid) {
    throw UsageError("--lambdas: the grid has more than " + std::to_string(kMaxGrid) + " runs");
  }
  if (!inject_nan.empty()) {
    const size_t colon = inject_nan.find(':');
    try {
      c.inject_nan_step = std::stoll(inject_nan.substr(0, colon));
      c.inject_nan_loss = colon == std::string::npos ? 0 : std::stoi(inject_nan.substr(colon + 1));
    } catch (const std::exception&) {
      throw UsageError("--inject-nan: expected STEP[:LOSS], got '" + inject_nan + "'");
    }
  }
  if (!inject_rank_error.empty()) {
    const size_t colon = inject_rank_error.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no colon");
      c.inject_error_rank = std::stoi(inject_rank_error.substr(0, colon));
      c.inject_error_step = std::stoll(inject_rank_error.substr(colon + 1));
    } catch (const std::exception&) {
      throw UsageError("--inject-rank-error: expected RANK:STEP, got '" + inject_rank_error + "'");
    }
  }
  c.experiment = e.name;
  if (c.out.empty()) {
    std::string short_name = e.name.rfind("scalpel-", 0) == 0 ? e.name.substr(8) : e.name;
    c.out = "runs/" + short_name;
  }
  return true;
}

void write_summary(const RunSpec& spec, const std::string& status, const std::string& error, double seconds,
                   const RunContext* ctx, const nlohmann::json& data) {
  nlohmann::json s;
  s["method"] = spec.variant;
  s["surgeon"] = spec.method;
  s["lambda"] = spec.lambda;
  if (spec.rho) s["rho"] = *spec.rho;
  if (spec.task) s["task"] = *spec.task;
  s["status"] = status;
  if (!error.empty()) s["error"] = error;
  s["seconds"] = seconds;
  nlohmann::json fin = nlohmann::json::object();
  if (ctx) {
    const MetricsLog& m = ctx->metrics();
    for (const std::string& col : m.columns()) {
      const double v = m.last(col);
      fin[col] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    }
    for (const auto& [k, v] : ctx->finals()) fin[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    for (const auto& [k, v] : ctx->final_texts()) fin[k] = v;
  }
  s["final"] = fin;
  if (!data.is_null()) s["data"] = data;
  write_text_atomic(spec.dir + "/summary.json", s.dump(2) + "\n");
}

}  // namespace

void check_option_value(const OptionSpec& o, const std::string& value) {
  const std::string flag = "--" + o.name;
  switch (o.kind) {
    case OptionSpec::Kind::Text:
      if (o.check) o.check(value);
      return;
    case OptionSpec::Kind::Integer:
      parse_int_flag(flag, value, static_cast<int64_t>(o.lo), static_cast<int64_t>(o.hi));
      return;
    case OptionSpec::Kind::Real:
      parse_real_flag(flag, value, o.lo, o.hi);
      return;
    case OptionSpec::Kind::Boolean:
      if (value == "1" || value == "true" || value == "yes" || value == "on" || value == "0" || value == "false" ||
          value == "no" || value == "off")
        return;
      throw UsageError(flag + ": '" + value + "' is not a boolean (expected true/false/1/0)");
  }
}

std::optional<Config> parse_config(const Experiment& e, const std::vector<std::string>& args) {
  Parsed p;
  int code = 0;
  if (!parse(e, args, p, code)) return std::nullopt;
  return p.cfg;
}

namespace {

// Data parallel: the rank-independent outcome of a sweep-level step, decided on rank 0 and shared
// (a folder claim, a run's "already done"), so every rank takes the same path.
int64_t decided_by_rank0(int64_t value) { return dist::broadcast(value); }

// An exception of a run that not every rank may have seen (anything but a non-finite loss or a
// replica mismatch, which are computed from reduced values): under mpirun the other ranks would
// wait in the next collective for ever, so the whole job ends here, naming this rank.
void end_job_if_alone(const Experiment& e, const RunSpec& spec, const std::string& error) {
  if (!dist::active()) return;
  std::cerr << e.name << ": [" << spec.label << "] FAILED on " << dist::rank_label() << ": " << error << "\n"
            << e.name << ": ending every rank of the job (MPI_Abort)\n";
  std::cerr.flush();
  dist::abort_job(1);
}

int run_sweep(int argc, char** argv, const Experiment& e) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool lead = dist::rank() == 0;  // rank 0 prints and writes; every rank computes
  Parsed p;
  int code = 0;
  try {
    if (!parse(e, args, p, code)) return code;
    // --resume: the sweep's own config.json decides every option except --threads and --quiet.
    if (!p.cfg.resume.empty()) {
      const std::string cfg_path = p.cfg.resume + "/config.json";
      nlohmann::json old;
      try {
        old = nlohmann::json::parse(read_text(cfg_path));
      } catch (const std::exception& err) {
        throw UsageError("--resume: cannot read " + cfg_path + " (" + err.what() + ")");
      }
      if (old.value("experiment", std::string()) != e.name) {
        throw UsageError("--resume: " + cfg_path + " belongs to '" + old.value("experiment", std::string("?")) +
                         "', not " + e.name);
      }
      if (old.contains("merged_from")) {
        throw UsageError("--resume: " + p.cfg.resume +
                         " was joined by scalpel-report --merge from several sweeps; resume each source folder "
                         "listed under \"merged_from\" in its config.json, then merge again");
      }
      std::vector<std::string> again = old.value("argv", std::vector<std::string>{});
      const std::string resume = p.cfg.resume;
      const int threads = p.cfg.threads;
      const bool quiet = p.cfg.quiet;
      Parsed q;
      if (!parse(e, again, q, code)) return code;
      q.cfg.resume = resume;
      q.cfg.out = resume;
      if (threads) q.cfg.threads = threads;
      q.cfg.quiet = q.cfg.quiet || quiet;
      q.args = again;
      p = q;
    } else {
      p.args = args;
    }
  } catch (const UsageError& err) {
    if (lead) std::cerr << e.name << ": " << err.what() << "\nRun '" << e.name << " --help' for the options.\n";
    return 2;
  } catch (const std::exception& err) {
    if (lead) std::cerr << e.name << ": " << err.what() << "\n";
    return 2;
  }
  Config& cfg = p.cfg;
  // --sweep-parallel: each rank runs its share of the runs alone (index mod N) and writes them.
  const bool spread = cfg.sweep_parallel && dist::job_size() > 1;
  const bool rank_quiet = cfg.quiet || !lead;  // sweep-level messages: rank 0 only
  SweepLock lock;
  nlohmann::json data_used;
  try {
    if (cfg.data_dir_given && !e.prepare_data) {
      throw UsageError("--data-dir: " + e.name + " reads no data set, so --data-dir would have no effect");
    }
    int claim = 0;
    std::string claim_error;
    if (lead) {
      try {
        lock = claim_sweep_dir(cfg.out, !cfg.resume.empty(), cfg.overwrite);
      } catch (const UsageError& err) {
        claim = 2;
        claim_error = err.what();
      } catch (const std::exception& err) {
        claim = 1;
        claim_error = err.what();
      }
    }
    claim = static_cast<int>(decided_by_rank0(claim));
    if (claim != 0) {
      if (lead) std::cerr << e.name << ": " << claim_error << "\n";
      return claim;
    }
  } catch (const UsageError& err) {
    if (lead) std::cerr << e.name << ": " << err.what() << "\n";
    return 2;
  }
  try {
    if (cfg.threads > 0) set_num_threads(cfg.threads);
    // The data every run uses, loaded and checked once before the first run.
    if (e.prepare_data) {
      Progress data_progress(!lead);  // where the data comes from is said even with --quiet
      try {
        data_used = e.prepare_data(cfg, data_progress);
      } catch (const UsageError& err) {
        if (lead) std::cerr << e.name << ": " << err.what() << "\n";
        return 2;
      } catch (const std::bad_alloc&) {
        if (lead)
          std::cerr << e.name
                    << ": out of memory while loading the data set; use a smaller --train-size / --test-size\n";
        return 2;
      }
    }
    std::vector<RunSpec> specs;
    std::vector<std::string> variants;
    for (const std::string& m : cfg.methods) {
      if (m == "stl") {  // one single-task baseline per task
        variants.push_back(m);
        for (int k = 0; k < e.num_tasks(cfg); ++k) {
          RunSpec s;
          s.method = s.variant = m;
          s.lambda = 0.0;
          s.task = k;
          s.dir = cfg.out + "/stl/task_" + std::to_string(k);
          s.label = "stl task=" + std::to_string(k);
          s.index = static_cast<int>(specs.size());
          specs.push_back(s);
        }
        continue;
      }
      // The symmetric methods ignore λ: one run each (recorded with λ = 1), not one per λ.
      const bool one_run = !method_takes_lambda(m);
      const std::vector<double> method_lambdas = one_run ? std::vector<double>{recorded_lambda(m, 0.0)} : cfg.lambdas;
      std::vector<std::optional<double>> rhos;
      if (cfg.rhos.empty()) rhos.push_back(std::nullopt);
      for (double r : cfg.rhos) rhos.push_back(r);
      for (const auto& r : rhos) {
        std::ostringstream vn;
        vn << m;
        if (r) vn << "-rho" << *r;
        variants.push_back(vn.str());
        for (double l : method_lambdas) {
          RunSpec s;
          s.method = m;
          s.variant = vn.str();
          s.rho = r;
          s.lambda = l;
          s.dir = cfg.out + "/" + s.variant + "/" + lambda_dirname(l);
          std::ostringstream label;
          label << s.variant;
          if (!one_run) label << " lambda=" << l;
          s.label = label.str();
          s.index = static_cast<int>(specs.size());
          specs.push_back(s);
        }
      }
    }
    // config.json: every effective option.
    nlohmann::json cj = cfg.to_json();
    cj["methods"] = variants;  // the groups of fronts and plots
    cj["surgeon_methods"] = cfg.methods;
    cj["argv"] = p.args;
    cj["git_revision"] = git_revision();
    cj["threading"] = threading_summary();
    cj["started"] = now_iso();
    cj["plot"] = {{"main_label", e.main_label},
                  {"aux_label", e.aux_label},
                  {"log_axes", e.log_axes},
                  {"log_x", e.log_axes || e.plot_log_x},
                  {"log_y", e.log_axes || e.plot_log_y}};
    for (const Experiment::VsLambdaPlot& v : e.vs_lambda_plots)
      cj["plot"]["vs_lambda"].push_back({{"name", v.name}, {"column", v.column}, {"label", v.label}});
    nlohmann::json runs = nlohmann::json::array();
    for (const RunSpec& s : specs) {
      nlohmann::json jr = {{"method", s.variant},
                           {"surgeon", s.method},
                           {"lambda", s.lambda},
                           {"dir", s.dir.substr(cfg.out.size() + 1)}};
      if (s.rho) jr["rho"] = *s.rho;
      if (s.task) jr["task"] = *s.task;
      runs.push_back(jr);
    }
    cj["runs"] = runs;
    if (e.task_metrics) cj["task_metrics"] = e.task_metrics(cfg);
    cj.erase("resume");
    cj.erase("overwrite");
    if (!data_used.is_null()) cj["data"] = data_used;
    if (lead) write_text_atomic(cfg.out + "/config.json", cj.dump(2) + "\n");
    if (!rank_quiet) {
      std::string ranks;
      if (spread)
        ranks = ", runs spread over " + std::to_string(dist::job_size()) + " MPI ranks";
      else if (dist::active())
        ranks = ", data parallel over " + std::to_string(dist::world_size()) + " MPI ranks";
      std::cerr << e.name << ": " << specs.size() << " run(s) -> " << cfg.out << " (" << threading_summary() << ranks
                << ")\n";
    }

    Progress progress(spread ? cfg.quiet : rank_quiet);
    int n_failed = 0, n_diverged = 0;
    std::optional<dist::Solo> solo;
    if (spread) solo.emplace();
    for (const RunSpec& spec : specs) {
      if (spread && spec.index % dist::job_size() != dist::job_rank()) continue;
      const bool writer = dist::rank() == 0;  // rank 0, or (--sweep-parallel) the rank of this run
      if (writer) fs::create_directories(spec.dir);
      int64_t kept = 0;  // 1: done, 2: diverged (rank 0 decides: it writes summary.json below)
      if (writer && !cfg.resume.empty() && fs::exists(spec.dir + "/summary.json")) {
        try {
          const auto s = nlohmann::json::parse(read_text(spec.dir + "/summary.json"));
          const std::string st = s.value("status", std::string());
          if (st == "done" || st == "diverged") {
            progress.message("[" + spec.label + "] already " + st + ", kept");
            kept = st == "done" ? 1 : 2;
          }
        } catch (const std::exception& err) {
          std::cerr << e.name << ": " << spec.dir << "/summary.json is unreadable (" << err.what() << "): running "
                    << spec.label << " again\n";
        }
      }
      kept = decided_by_rank0(kept);
      if (kept != 0) {
        if (kept == 2) ++n_diverged;
        continue;
      }
      MetricsLog metrics(writer ? spec.dir + "/metrics.csv" : std::string());
      if (!cfg.resume.empty() && fs::exists(spec.dir + "/metrics.csv") &&
          (fs::exists(spec.dir + "/checkpoint.ckpt") || fs::exists(spec.dir + "/checkpoint.prev.ckpt"))) {
        metrics.append_rows(MetricsLog::read_csv(spec.dir + "/metrics.csv"));
      } else {
        metrics.flush();
      }
      RunContext ctx(cfg, spec, metrics, progress);
      if (writer) write_summary(spec, "running", "", 0.0, nullptr, data_used);
      const auto t0 = std::chrono::steady_clock::now();
      std::string status = "done", error;
      try {
        e.run(ctx);
      } catch (const std::bad_alloc&) {
        status = "failed";
        error = "out of memory (std::bad_alloc); use a smaller --batch-size, --train-size or model";
        end_job_if_alone(e, spec, error);
        progress.message("[" + spec.label + "] FAILED: " + error);
      } catch (const std::exception& err) {
        status = "failed";
        error = err.what();
        // A non-finite loss (from reduced values) or a replica mismatch (from gathered ones) is
        // thrown by every rank alike and fails only this run; anything else may be this rank's alone.
        if (!dynamic_cast<const NonFiniteLoss*>(&err) && !dynamic_cast<const dist::DistError*>(&err)) {
          end_job_if_alone(e, spec, error);
        }
        progress.message("[" + spec.label + "] FAILED: " + error);
      }
      if (status == "done" && diverged(metrics)) {
        status = "diverged";
        error = "eval_main grew from " + std::to_string(metrics.column("eval_main").front()) + " to " +
                std::to_string(metrics.last("eval_main")) +
                (cfg.keep_diverged ? " (kept on the fronts: --keep-diverged)" : " (left off the fronts)");
        progress.message("[" + spec.label + "] DIVERGED: " + error);
      }
      n_failed += status == "failed";
      n_diverged += status == "diverged";
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      metrics.flush();
      if (writer) write_summary(spec, status, error, secs, &ctx, data_used);
    }
    if (spread) {  // every rank's runs are written before rank 0 reports on them
      solo.reset();
      double counts[2] = {static_cast<double>(n_failed), static_cast<double>(n_diverged)};
      dist::allreduce_sum(counts, 2);
      n_failed = static_cast<int>(counts[0]);
      n_diverged = static_cast<int>(counts[1]);
    }
    if (!lead) return n_failed > 0 ? 1 : 0;  // rank 0 writes the sweep's plots and report
    if (e.after_sweep) e.after_sweep(cfg, cfg.out);
    if (e.pareto) {
      const SweepReport rep = build_sweep_report(cfg.out);
      std::cout << format_report_summary(rep, cfg.out);
    }
    if (n_diverged > 0) {
      std::cerr << e.name << ": " << n_diverged << " of " << specs.size() << " runs diverged"
                << (cfg.keep_diverged ? " (kept on the fronts)" : " (left off the fronts; --keep-diverged keeps them)")
                << "\n";
    }
    if (n_failed > 0) {
      std::cerr << e.name << ": " << n_failed << " of " << specs.size()
                << " runs failed (see their summary.json); the others are kept\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& err) {
    std::cerr << e.name << (dist::active() ? " (" + dist::rank_label() + ")" : std::string()) << ": " << err.what()
              << "\n";
    if (dist::active()) {
      std::cerr.flush();
      dist::abort_job(1);
    }
    return 1;
  }
}

}  // namespace

int run_main(int argc, char** argv, const Experiment& e) {
  try {
    dist::init(&argc, &argv);
  } catch (const std::exception& err) {
    std::cerr << e.name << ": " << err.what() << "\n";
    return 2;
  }
  const int code = run_sweep(argc, argv, e);
  dist::finalize();
  return code;
}

}  // namespace experiments
}  // namespace scalpel
