#include "experiments/runner/runner.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/parallel.h"
#include "experiments/runner/report.h"
#include "optim/surgery/surgeon.h"

namespace fs = std::filesystem;

#ifndef SCALPEL_GIT_REVISION
#define SCALPEL_GIT_REVISION "unknown"
#endif

namespace scalpel {
namespace experiments {

std::string git_revision() { return SCALPEL_GIT_REVISION; }

// ---- Config --------------------------------------------------------------------------------------

nlohmann::json Config::to_json() const {
  nlohmann::json j;
  j["experiment"] = experiment;
  j["preset"] = preset;
  j["methods"] = methods;
  j["lambdas"] = lambdas;
  j["rhos"] = rhos;
  j["surgeon"] = surgeon;
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
  j["options"] = extra;
  return j;
}

namespace {
const std::string* find_extra(const Config& c, const std::string& key) {
  auto it = c.extra.find(key);
  return it == c.extra.end() || it->second.empty() ? nullptr : &it->second;
}
}  // namespace

double Config::extra_double(const std::string& key, double fallback) const {
  const std::string* v = find_extra(*this, key);
  if (!v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || *end != '\0') {
    throw std::invalid_argument("--" + key + ": '" + *v + "' is not a number");
  }
  return d;
}

int64_t Config::extra_int(const std::string& key, int64_t fallback) const {
  const std::string* v = find_extra(*this, key);
  if (!v) return fallback;
  char* end = nullptr;
  const long long d = std::strtoll(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0') {
    throw std::invalid_argument("--" + key + ": '" + *v + "' is not an integer");
  }
  return d;
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

// ---- RunContext ---------------------------------------------------------------------------------

RunContext::RunContext(const Config& config, RunSpec spec, MetricsLog& metrics, Progress& progress)
    : config_(config), spec_(std::move(spec)), metrics_(metrics), progress_(progress) {}

void RunContext::log(const std::vector<std::pair<std::string, double>>& row) { metrics_.append(row); }

bool RunContext::checkpoint_due(int64_t step) const {
  return config_.checkpoint_every > 0 && step > 0 && step % config_.checkpoint_every == 0;
}

void RunContext::save_checkpoint(const StateDict& state) {
  metrics_.flush();
  state.save(spec_.dir + "/checkpoint.ckpt");
}

std::optional<StateDict> RunContext::resume_checkpoint() const {
  if (config_.resume.empty()) return std::nullopt;
  const std::string path = spec_.dir + "/checkpoint.ckpt";
  if (!fs::exists(path)) return std::nullopt;
  return StateDict::load(path);
}

void RunContext::truncate_metrics_after(int64_t step) { metrics_.truncate_after(step); }

bool RunContext::inject_nan(int64_t step, int k) const {
  return config_.inject_nan_step >= 0 && step == config_.inject_nan_step && k == config_.inject_nan_loss;
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
    if (n < 1 || n != std::floor(n))
      throw std::invalid_argument(flag + ": N in '" + text + "' must be a positive integer");
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

class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

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
  std::string method, methods, lambda, lambdas, inject_nan;
  std::string rho, eps, ema_order, ema_init, rescale, ratio_only;
  app.add_option("--method", method, "surgery method: mixed, bloop, dynamic-barrier (db), pcgrad");
  app.add_option("--methods", methods, "comma-separated methods to sweep");
  app.add_option("--lambda", lambda, "trade-off lambda");
  app.add_option("--lambdas", lambdas, "lambdas to sweep: 0.01,0.1,1 or logspace:A:B:N");
  app.add_option("--rho", rho, "EMA rate of the main gradient (bloop default 0.01; baselines 1)");
  std::string rhos;
  app.add_option("--rhos", rhos, "EMA rates to sweep (each (method, rho) becomes a variant), e.g. 0.001,0.01,0.1,0.9");
  app.add_option("--eps", eps, "added to squared norms in projections (default 1e-7)");
  app.add_option("--ema-order", ema_order, "update_then_project | project_then_update");
  app.add_option("--ema-init", ema_init, "first_grad | zeros | random");
  app.add_option("--rescale", rescale, "true: multiply d by 1/(1+lambda)");
  app.add_option("--ratio-only", ratio_only, "bloop: d = (1 - lambda r) g0 + lambda g1");
  app.add_option("--steps", c.steps, "training steps per run");
  app.add_option("--epochs", c.epochs, "training epochs per run (when --steps is 0)");
  app.add_option("--batch-size", c.batch_size, "batch size");
  app.add_option("--lr", c.lr, "learning rate");
  app.add_option("--schedule", c.schedule,
                 "learning-rate schedule: constant, cosine, warmup-cosine, step, warmup-rsqrt");
  app.add_option("--optimizer", c.optimizer, "sgd, sgd-nesterov, adam, adamw");
  app.add_option("--seed", c.seed, "random seed");
  app.add_option("--threads", c.threads, "threads for BLAS and Scalpel's loops (0: default)");
  app.add_option("--data-dir", c.data_dir, "where real data sets are looked for");
  app.add_option("--out", c.out, "output folder");
  app.add_option("--preset", c.preset, "cpu (default) or paper")->check(CLI::IsMember({"cpu", "paper"}));
  app.add_option("--eval-every", c.eval_every, "evaluate every N steps");
  app.add_option("--checkpoint-every", c.checkpoint_every, "write a checkpoint every N steps (0: never)");
  app.add_option("--resume", c.resume, "continue the sweep in this folder from its checkpoints");
  app.add_option("--clip-grad-norm", c.clip_grad_norm, "clip the global norm of d (0: off)");
  app.add_flag("--fused-mixed", c.fused_mixed, "mixed: one backward of L0 + lambda L1 (faster; no cosine diagnostics)");
  app.add_flag("--quiet", c.quiet, "no progress output");
  app.add_option("--inject-nan", inject_nan, "test hook: STEP[:LOSS]")->group("");
  std::map<std::string, std::string> extra_values;
  for (const auto& [name, help] : e.options) app.add_option("--" + name, extra_values[name], help);

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
      try {
        if (key == "steps")
          c.steps = std::stoll(value);
        else if (key == "epochs")
          c.epochs = std::stoll(value);
        else if (key == "batch-size")
          c.batch_size = std::stoll(value);
        else if (key == "lr")
          c.lr = std::stod(value);
        else if (key == "schedule")
          c.schedule = value;
        else if (key == "optimizer")
          c.optimizer = value;
        else if (key == "eval-every")
          c.eval_every = std::stoll(value);
        else if (key == "checkpoint-every")
          c.checkpoint_every = std::stoll(value);
        else if (key == "clip-grad-norm")
          c.clip_grad_norm = std::stod(value);
        else if (key == "methods")
          methods = value;
        else if (key == "lambdas")
          lambdas = value;
        else if (key == "rho") {
          if (!given("rhos")) rho = value;
        } else
          extra_values[key] = value;
      } catch (const std::exception&) {
        throw std::logic_error(e.name + ": preset '" + c.preset + "' has a bad value for " + key + ": '" + value + "'");
      }
    }
  }
  for (const auto& [k, v] : extra_values) {
    if (!v.empty()) c.extra[k] = v;
  }
  // Methods.
  if (!method.empty() && !methods.empty()) throw UsageError("--method and --methods cannot be combined");
  if (!method.empty()) c.methods = {method};
  if (!methods.empty()) c.methods = split_list(methods);
  if (c.methods.empty()) throw UsageError("--methods: expected at least one method");
  const std::vector<std::string> known = surgery::surgeon_names();
  for (std::string& m : c.methods) {
    if (m == "db") m = "dynamic-barrier";
    if (std::find(known.begin(), known.end(), m) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw UsageError("--method: unknown method '" + m + "' (known: " + list + ")");
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
  if (c.steps < 0 || c.epochs < 0 || c.batch_size < 0 || c.eval_every < 0 || c.checkpoint_every < 0) {
    throw UsageError("--steps, --epochs, --batch-size, --eval-every and --checkpoint-every must be non-negative");
  }
  if (c.lr < 0) throw UsageError("--lr: must be non-negative, got " + std::to_string(c.lr));
  if (c.threads < 0) throw UsageError("--threads: must be non-negative");
  if (!inject_nan.empty()) {
    const size_t colon = inject_nan.find(':');
    try {
      c.inject_nan_step = std::stoll(inject_nan.substr(0, colon));
      c.inject_nan_loss = colon == std::string::npos ? 0 : std::stoi(inject_nan.substr(colon + 1));
    } catch (const std::exception&) {
      throw UsageError("--inject-nan: expected STEP[:LOSS], got '" + inject_nan + "'");
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
                   const RunContext* ctx) {
  nlohmann::json s;
  s["method"] = spec.variant;
  s["surgeon"] = spec.method;
  s["lambda"] = spec.lambda;
  if (spec.rho) s["rho"] = *spec.rho;
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
  write_text_atomic(spec.dir + "/summary.json", s.dump(2) + "\n");
}

}  // namespace

int run_main(int argc, char** argv, const Experiment& e) {
  std::vector<std::string> args(argv + 1, argv + argc);
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
    std::cerr << e.name << ": " << err.what() << "\nRun '" << e.name << " --help' for the options.\n";
    return 2;
  } catch (const std::exception& err) {
    std::cerr << e.name << ": " << err.what() << "\n";
    return 2;
  }
  Config& cfg = p.cfg;
  try {
    if (cfg.threads > 0) set_num_threads(cfg.threads);
    fs::create_directories(cfg.out);
    std::vector<RunSpec> specs;
    std::vector<std::string> variants;
    for (const std::string& m : cfg.methods) {
      std::vector<std::optional<double>> rhos;
      if (cfg.rhos.empty()) rhos.push_back(std::nullopt);
      for (double r : cfg.rhos) rhos.push_back(r);
      for (const auto& r : rhos) {
        std::ostringstream vn;
        vn << m;
        if (r) vn << "-rho" << *r;
        variants.push_back(vn.str());
        for (double l : cfg.lambdas) {
          RunSpec s;
          s.method = m;
          s.variant = vn.str();
          s.rho = r;
          s.lambda = l;
          s.dir = cfg.out + "/" + s.variant + "/" + lambda_dirname(l);
          std::ostringstream label;
          label << s.variant << " lambda=" << l;
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
    nlohmann::json runs = nlohmann::json::array();
    for (const RunSpec& s : specs) {
      nlohmann::json jr = {{"method", s.variant},
                           {"surgeon", s.method},
                           {"lambda", s.lambda},
                           {"dir", s.variant + "/" + lambda_dirname(s.lambda)}};
      if (s.rho) jr["rho"] = *s.rho;
      runs.push_back(jr);
    }
    cj["runs"] = runs;
    cj.erase("resume");
    write_text_atomic(cfg.out + "/config.json", cj.dump(2) + "\n");
    if (!cfg.quiet) {
      std::cerr << e.name << ": " << specs.size() << " run(s) -> " << cfg.out << " (" << threading_summary() << ")\n";
    }

    Progress progress(cfg.quiet);
    for (const RunSpec& spec : specs) {
      fs::create_directories(spec.dir);
      if (!cfg.resume.empty() && fs::exists(spec.dir + "/summary.json")) {
        try {
          const auto s = nlohmann::json::parse(read_text(spec.dir + "/summary.json"));
          if (s.value("status", std::string()) == "done") {
            progress.message("[" + spec.label + "] already done, kept");
            continue;
          }
        } catch (const std::exception&) {
        }
      }
      MetricsLog metrics(spec.dir + "/metrics.csv");
      if (!cfg.resume.empty() && fs::exists(spec.dir + "/metrics.csv") && fs::exists(spec.dir + "/checkpoint.ckpt")) {
        MetricsLog old = MetricsLog::read_csv(spec.dir + "/metrics.csv");
        for (size_t i = 0; i < old.rows(); ++i) {
          std::vector<std::pair<std::string, double>> row;
          for (const std::string& col : old.columns()) {
            const double v = old.at(i, col);
            row.emplace_back(col, v);
          }
          metrics.append(row);
        }
      } else {
        metrics.flush();
      }
      RunContext ctx(cfg, spec, metrics, progress);
      write_summary(spec, "running", "", 0.0, nullptr);
      const auto t0 = std::chrono::steady_clock::now();
      std::string status = "done", error;
      try {
        e.run(ctx);
      } catch (const std::exception& err) {
        status = "failed";
        error = err.what();
        progress.message("[" + spec.label + "] FAILED: " + error);
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      metrics.flush();
      write_summary(spec, status, error, secs, &ctx);
    }
    if (e.after_sweep) e.after_sweep(cfg, cfg.out);
    if (e.pareto) {
      const SweepReport rep = build_sweep_report(cfg.out);
      std::cout << format_report_summary(rep, cfg.out);
    }
    return 0;
  } catch (const std::exception& err) {
    std::cerr << e.name << ": " << err.what() << "\n";
    return 1;
  }
}

}  // namespace experiments
}  // namespace scalpel
