#include "experiments/runner/report.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "experiments/runner/metrics.h"
#include "experiments/runner/pareto.h"
#include "experiments/runner/runner.h"

namespace fs = std::filesystem;

namespace scalpel {
namespace experiments {

std::string method_color(const std::string& method, size_t index) {
  static const std::map<std::string, std::string> fixed{{"mixed", "#1f77b4"},
                                                        {"pcgrad", "#ff7f0e"},
                                                        {"dynamic-barrier", "#2ca02c"},
                                                        {"db", "#2ca02c"},
                                                        {"bloop", "#d62728"}};
  // Distinct colours for the other methods (a K-task sweep has a dozen), in order of appearance.
  static const char* palette[] = {"#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                  "#000000", "#ff9896", "#98df8a", "#aec7e8", "#c49c94", "#dbdb8d",
                                  "#9edae5", "#f7b6d2", "#393b79", "#637939"};
  constexpr size_t kPalette = sizeof(palette) / sizeof(palette[0]);
  auto it = fixed.find(method);
  return it != fixed.end() ? it->second : palette[index % kPalette];
}

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

bool run_gnuplot(const std::string& script_path, std::string* error) {
  const std::string log = script_path + ".log";
  const std::string cmd = "gnuplot '" + script_path + "' >'" + log + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    if (error) {
      std::string msg;
      try {
        msg = read_text(log);
      } catch (const std::exception& e) {
        msg = std::string("(its log ") + log + " is unreadable: " + e.what() + ")";
      }
      *error = "gnuplot failed on " + script_path + (msg.empty() ? "" : ": " + msg.substr(0, 400));
    }
    return false;
  }
  return true;
}

std::string write_plot(const std::string& out_dir, const std::string& name, const std::string& body) {
  std::filesystem::create_directories(out_dir + "/plots");
  const std::string script = out_dir + "/plots/" + name + ".gp";
  write_text_atomic(script, "set terminal pngcairo size 900,620 enhanced font 'Sans,11'\nset output '" + out_dir + "/" +
                                name + ".png'\nset datafile separator ','\nset grid lc rgb '#dddddd'\n" + body);
  std::string err;
  if (gnuplot_available() && !run_gnuplot(script, &err)) return "warning: " + err;
  return "";
}

namespace {

// A number for JSON output; NaN and infinities (not JSON) become null.
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

double json_number(const nlohmann::json& j, const std::string& key) {
  if (!j.contains(key) || j[key].is_null()) return NAN;
  if (j[key].is_number()) return j[key].get<double>();
  return NAN;
}

std::string fmt(double v, int prec = 5) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream os;
  os << std::setprecision(prec) << v;
  return os.str();
}

// Writes "x y\n" rows.
void write_points(const std::string& path, const std::vector<Point2>& pts) {
  std::ostringstream os;
  os << std::setprecision(9);
  for (const Point2& p : pts) {
    if (std::isfinite(p.x) && std::isfinite(p.y)) os << p.x << ' ' << p.y << '\n';
  }
  write_text_atomic(path, os.str());
}

std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

struct PlotSpec {
  std::string main_label = "main loss", aux_label = "auxiliary loss";
  bool log_axes = false;              // hypervolume normalisation
  bool log_x = false, log_y = false;  // plots
  struct VsLambda {
    std::string name, column, label;
  };
  std::vector<VsLambda> vs_lambda;  // config "plot" "vs_lambda": [{name, column, label}]
};

std::string logscale_commands(bool x, bool y) {
  std::string s = "unset logscale\n";
  if (x) s += "set logscale x\n";
  if (y) s += "set logscale y\n";
  return s;
}

// Emits the plot commands for one split ("train" or "eval").
std::string pareto_script(const std::string& split, const std::vector<RunSummary>& runs,
                          const std::vector<std::string>& methods, const std::string& dir, const PlotSpec& spec,
                          std::vector<std::string>& warnings) {
  const std::string pdir = dir + "/plots";
  std::vector<std::string> plots;
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    const std::string& m = methods[mi];
    const std::string color = method_color(m, mi);
    const std::string faint = "#B0" + color.substr(1);  // alpha: mostly transparent
    std::vector<Point2> finals;
    std::vector<double> lambdas;
    for (const RunSummary& r : runs) {
      if (r.method != m || !r.on_fronts) continue;
      const Point2 p = split == "train" ? Point2{r.train_main, r.train_aux} : Point2{r.eval_main, r.eval_aux};
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      finals.push_back(p);
      lambdas.push_back(r.lambda);
      // Trajectory from metrics.csv.
      try {
        const MetricsLog log = MetricsLog::read_csv(r.dir + "/metrics.csv");
        std::vector<Point2> traj;
        const auto xs = log.column(split + "_main"), ys = log.column(split + "_aux");
        for (size_t i = 0; i < xs.size(); ++i) traj.push_back({xs[i], ys[i]});
        const std::string tf = pdir + "/traj_" + split + "_" + m + "_" + std::to_string(finals.size()) + ".dat";
        write_points(tf, traj);
        plots.push_back(gp_quote(tf) + " using 1:2 with lines lw 1 lc rgb '" + faint + "' notitle");
      } catch (const std::exception& e) {
        warnings.push_back(std::string("no trajectory for ") + r.dir + ": " + e.what());
      }
    }
    if (finals.empty()) continue;
    const std::string ff = pdir + "/final_" + split + "_" + m + ".dat";
    {
      std::ostringstream os;
      os << std::setprecision(9);
      for (size_t i = 0; i < finals.size(); ++i) os << finals[i].x << ' ' << finals[i].y << ' ' << lambdas[i] << '\n';
      write_text_atomic(ff, os.str());
    }
    std::vector<Point2> front;
    for (size_t i : pareto_front(finals)) front.push_back(finals[i]);
    const std::string fr = pdir + "/front_" + split + "_" + m + ".dat";
    write_points(fr, front);
    plots.push_back(gp_quote(fr) + " using 1:2 with lines lw 2 dt 2 lc rgb '" + color + "' notitle");
    plots.push_back(gp_quote(ff) + " using 1:2 with points pt 7 ps 1.8 lc rgb '" + color + "' title " + gp_quote(m));
    plots.push_back(gp_quote(ff) + " using 1:2:(sprintf('%.2g', $3)) with labels offset 1.2,0.6 font ',8' tc rgb '" +
                    color + "' notitle");
  }
  if (plots.empty()) return "";
  std::ostringstream gp;
  gp << "set xlabel " << gp_quote(spec.main_label + " (" + split + ")") << "\n";
  gp << "set ylabel " << gp_quote(spec.aux_label + " (" + split + ")") << "\n";
  gp << "set title " << gp_quote("Pareto fronts (" + split + "): final points labelled with lambda") << "\n";
  gp << "set grid lc rgb '#dddddd'\nset key outside right top\n";
  gp << logscale_commands(spec.log_x, spec.log_y);
  gp << "plot ";
  for (size_t i = 0; i < plots.size(); ++i) gp << (i ? ", \\\n     " : "") << plots[i];
  gp << "\n";
  return gp.str();
}

std::string curves_script(const std::vector<RunSummary>& runs, const std::vector<std::string>& methods,
                          const PlotSpec& spec) {
  std::ostringstream gp;
  auto panel = [&](const std::string& col, const std::string& label) {
    std::vector<std::string> plots;
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      bool titled = false;
      for (const RunSummary& r : runs) {
        if (r.method != methods[mi] || !r.on_fronts) continue;
        const std::string csv = r.dir + "/metrics.csv";
        std::string title = titled ? "notitle" : "title " + gp_quote(methods[mi]);
        titled = true;
        plots.push_back(gp_quote(csv) + " using 'step':'" + col + "' with lines lw 1 lc rgb '" +
                        method_color(methods[mi], mi) + "' " + title);
      }
    }
    gp << "set xlabel 'step'\nset ylabel " << gp_quote(label) << "\n";
    if (plots.empty()) {
      gp << "plot 0 notitle\n";
      return;
    }
    gp << "plot ";
    for (size_t i = 0; i < plots.size(); ++i) gp << (i ? ", \\\n     " : "") << plots[i];
    gp << "\n";
  };
  gp << "set datafile separator ','\nset key autotitle columnhead\nset grid lc rgb '#dddddd'\n";
  gp << "set multiplot layout 1,2\n";
  gp << logscale_commands(false, spec.log_x);
  panel("eval_main", spec.main_label + " (eval)");
  gp << logscale_commands(false, spec.log_y);
  panel("eval_aux", spec.aux_label + " (eval)");
  gp << "unset multiplot\n";
  return gp.str();
}

// One final metric of every finished run against λ, one line per method (plots/<name>.csv holds
// the points). λ is on a log axis when every λ of the sweep is positive.
std::string vs_lambda_script(const PlotSpec::VsLambda& v, const std::vector<RunSummary>& runs,
                             const std::vector<std::string>& methods, const std::string& dir) {
  std::ostringstream csv;
  csv << std::setprecision(9) << "method,lambda," << v.column << "\n";
  std::vector<size_t> plotted;
  bool all_positive = true;
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    std::vector<std::pair<double, double>> pts;
    for (const RunSummary& r : runs) {
      if (r.method != methods[mi] || !r.on_fronts) continue;
      const auto it = r.finals.find(v.column);
      if (it == r.finals.end() || !std::isfinite(it->second)) continue;
      pts.push_back({r.lambda, it->second});
    }
    std::sort(pts.begin(), pts.end());
    for (const auto& [l, y] : pts) {
      csv << methods[mi] << ',' << l << ',' << y << '\n';
      all_positive = all_positive && l > 0;
    }
    if (!pts.empty()) plotted.push_back(mi);
  }
  const std::string data = dir + "/plots/" + v.name + ".csv";
  write_text_atomic(data, csv.str());
  if (plotted.empty()) return "";
  std::ostringstream gp;
  gp << "set datafile separator ','\n" << logscale_commands(all_positive, false);
  gp << "set grid lc rgb '#dddddd'\nset key outside right top\nset xlabel 'lambda'\nset ylabel " << gp_quote(v.label)
     << "\nset title " << gp_quote(v.label + " of the final models against lambda") << "\n";
  gp << "plot ";
  for (size_t i = 0; i < plotted.size(); ++i) {
    const std::string& m = methods[plotted[i]];
    gp << (i ? ", \\\n     " : "") << gp_quote(data) << " using (strcol(1) eq " << gp_quote(m)
       << " ? $2 : 1/0):3 with linespoints lw 2 pt 7 lc rgb '" << method_color(m, plotted[i]) << "' title "
       << gp_quote(m);
  }
  gp << "\n";
  return gp.str();
}

// The capped hypervolume's cap: the given value, else the final main loss of a done λ = 0 run of a
// main/auxiliary method (mixed preferred: at λ = 0 every such method trains on the main loss only),
// else that of the done stl run of task 0.
MainCap find_main_cap(const std::vector<RunSummary>& runs, double given) {
  if (std::isfinite(given)) return {given, given, "--hv-main-cap"};
  const RunSummary* best = nullptr;
  for (const RunSummary& r : runs) {
    if (r.status != "done" || r.lambda != 0.0 || !method_takes_lambda(r.surgeon)) continue;
    if (!best || (r.surgeon == "mixed" && best->surgeon != "mixed")) best = &r;
  }
  if (best) return {best->train_main, best->eval_main, best->method + " lambda=0"};
  for (const RunSummary& r : runs) {
    if (r.status == "done" && r.surgeon == "stl" && r.task == 0) return {r.train_main, r.eval_main, "stl task 0"};
  }
  MainCap none;
  none.source = "none";
  return none;
}

struct TaskMetric {
  int task;
  std::string column;
  bool higher_is_better;
};

// Δm% of every non-stl run against the done stl runs (report.h), and each method's best.
void fill_delta_m(SweepReport& rep, const std::vector<TaskMetric>& metrics) {
  if (metrics.empty()) return;
  std::map<int, const RunSummary*> baseline;
  for (const RunSummary& r : rep.runs) {
    if (r.surgeon == "stl" && r.status == "done" && r.task >= 0) baseline[r.task] = &r;
  }
  std::vector<std::string> missing;
  for (const TaskMetric& m : metrics) {
    if (!baseline.count(m.task)) missing.push_back(std::to_string(m.task));
  }
  if (!missing.empty()) {
    std::string tasks;
    for (const std::string& t : missing) tasks += (tasks.empty() ? "" : ", ") + t;
    rep.warnings.push_back("Δm% is n/a: no finished stl run for task " + tasks +
                           " (add stl to --methods to get the single-task baselines)");
    return;
  }
  for (RunSummary& r : rep.runs) {
    if (r.surgeon == "stl" || !r.on_fronts) continue;
    double sum = 0.0;
    for (const TaskMetric& m : metrics) {
      const auto& bf = baseline[m.task]->finals;
      const auto bi = bf.find(m.column);
      const auto ri = r.finals.find(m.column);
      const double b = bi == bf.end() ? NAN : bi->second;
      const double v = ri == r.finals.end() ? NAN : ri->second;
      sum += (m.higher_is_better ? -1.0 : 1.0) * (v - b) / b;  // NaN (and so n/a) when b is 0 or missing
    }
    r.delta_m = std::isfinite(sum) ? 100.0 * sum / static_cast<double>(metrics.size()) : NAN;
    if (!std::isfinite(r.delta_m)) continue;
    auto it = rep.best_delta_m.find(r.method);
    if (it == rep.best_delta_m.end() || r.delta_m < it->second) rep.best_delta_m[r.method] = r.delta_m;
  }
}

}  // namespace

SweepReport build_sweep_report(const std::string& dir, double hv_main_cap) {
  const std::string cfg_path = dir + "/config.json";
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(read_text(cfg_path));
  } catch (const std::exception& e) {
    throw std::runtime_error("scalpel-report: cannot read " + cfg_path + " (" + e.what() +
                             "); expected the folder of a sweep written by a scalpel experiment");
  }
  SweepReport rep;
  std::vector<std::string> methods = cfg.value("methods", std::vector<std::string>{});
  std::vector<double> lambdas = cfg.value("lambdas", std::vector<double>{});
  PlotSpec spec;
  if (cfg.contains("plot")) {
    spec.main_label = cfg["plot"].value("main_label", spec.main_label);
    spec.aux_label = cfg["plot"].value("aux_label", spec.aux_label);
    spec.log_axes = cfg["plot"].value("log_axes", false);
    spec.log_x = cfg["plot"].value("log_x", spec.log_axes);
    spec.log_y = cfg["plot"].value("log_y", spec.log_axes);
    for (const auto& jv : cfg["plot"].value("vs_lambda", nlohmann::json::array())) {
      PlotSpec::VsLambda v{jv.value("name", std::string()), jv.value("column", std::string()),
                           jv.value("label", std::string())};
      if (v.name.empty() || v.column.empty())
        throw std::runtime_error("scalpel-report: " + cfg_path +
                                 ": plot.vs_lambda entries need \"name\" and \"column\", found " + jv.dump());
      if (v.label.empty()) v.label = v.column;
      spec.vs_lambda.push_back(v);
    }
  }
  const bool keep_diverged = cfg.value("keep_diverged", false);
  std::map<std::string, std::vector<Point2>> train_pts, eval_pts;
  // The run list is config.json "runs" (method, lambda, dir); older folders fall back to the grid.
  if (cfg.contains("runs")) {
    for (const auto& jr : cfg["runs"]) {
      RunSummary r;
      r.method = jr.value("method", "");
      r.lambda = jr.value("lambda", 0.0);
      r.dir = dir + "/" + jr.value("dir", "");
      r.task = jr.value("task", -1);
      rep.runs.push_back(r);
    }
  } else {
    for (const std::string& m : methods) {
      for (double l : lambdas) {
        RunSummary r;
        r.method = m;
        r.lambda = l;
        r.dir = dir + "/" + m + "/" + lambda_dirname(l);
        rep.runs.push_back(r);
      }
    }
  }
  for (RunSummary& r : rep.runs) {
    const std::string sp = r.dir + "/summary.json";
    if (!fs::exists(sp)) {
      r.status = "missing";
      continue;
    }
    try {
      const nlohmann::json s = nlohmann::json::parse(read_text(sp));
      r.status = s.value("status", "unknown");
      r.error = s.value("error", "");
      r.seconds = s.value("seconds", 0.0);
      const nlohmann::json f = s.value("final", nlohmann::json::object());
      r.train_main = json_number(f, "train_main");
      r.train_aux = json_number(f, "train_aux");
      r.eval_main = json_number(f, "eval_main");
      r.eval_aux = json_number(f, "eval_aux");
      r.surgeon = s.value("surgeon", r.method);
      if (s.contains("task") && s["task"].is_number_integer()) r.task = s["task"].get<int>();
      for (const auto& item : f.items()) {
        if (item.value().is_number()) r.finals[item.key()] = item.value().get<double>();
      }
    } catch (const std::exception& e) {
      r.status = "unreadable";
      r.error = e.what();
      rep.warnings.push_back(sp + ": " + e.what());
      continue;
    }
    r.on_fronts = r.status == "done" || (r.status == "diverged" && keep_diverged);
    if (r.on_fronts) {
      train_pts[r.method].push_back({r.train_main, r.train_aux});
      eval_pts[r.method].push_back({r.eval_main, r.eval_aux});
    }
  }
  for (const std::string& m : methods) {
    train_pts[m];
    eval_pts[m];
  }
  rep.hv_train = hypervolumes(train_pts, spec.log_axes);
  rep.hv_eval = hypervolumes(eval_pts, spec.log_axes);
  rep.cap = find_main_cap(rep.runs, std::isfinite(hv_main_cap) ? hv_main_cap : json_number(cfg, "hv_main_cap"));
  rep.hv_train_capped = capped_hypervolumes(train_pts, rep.cap.train, spec.log_axes);
  rep.hv_eval_capped = capped_hypervolumes(eval_pts, rep.cap.eval, spec.log_axes);
  if (cfg.contains("task_metrics")) {
    std::vector<TaskMetric> metrics;
    for (const auto& jm : cfg["task_metrics"]) {
      metrics.push_back({jm.value("task", -1), jm.value("column", std::string()), jm.value("higher_is_better", true)});
    }
    fill_delta_m(rep, metrics);
  }

  // front.csv
  {
    std::map<std::string, std::vector<size_t>> idx;  // run indices per method (done only)
    for (size_t i = 0; i < rep.runs.size(); ++i) {
      if (rep.runs[i].on_fronts) idx[rep.runs[i].method].push_back(i);
    }
    std::vector<char> on_train(rep.runs.size(), 0), on_eval(rep.runs.size(), 0);
    for (auto& [m, ids] : idx) {
      std::vector<Point2> t, e;
      for (size_t i : ids) {
        t.push_back({rep.runs[i].train_main, rep.runs[i].train_aux});
        e.push_back({rep.runs[i].eval_main, rep.runs[i].eval_aux});
      }
      for (size_t k : pareto_front(t)) on_train[ids[k]] = 1;
      for (size_t k : pareto_front(e)) on_eval[ids[k]] = 1;
    }
    std::ostringstream os;
    os << std::setprecision(9);
    os << "method,lambda,status,train_main,train_aux,eval_main,eval_aux,on_front_train,on_front_eval,delta_m_pct,"
          "seconds\n";
    for (size_t i = 0; i < rep.runs.size(); ++i) {
      const RunSummary& r = rep.runs[i];
      os << r.method << ',' << r.lambda << ',' << r.status << ',' << r.train_main << ',' << r.train_aux << ','
         << r.eval_main << ',' << r.eval_aux << ',' << int(on_train[i]) << ',' << int(on_eval[i]) << ','
         << (std::isfinite(r.delta_m) ? fmt(r.delta_m, 6) : std::string()) << ',' << r.seconds << '\n';
    }
    write_text_atomic(dir + "/front.csv", os.str());
    rep.files.push_back(dir + "/front.csv");
  }
  // hypervolume.json
  {
    nlohmann::json hv;
    hv["train"] = rep.hv_train;
    hv["eval"] = rep.hv_eval;
    hv["log_scale"] = spec.log_axes;
    hv["reference_point"] = {1.1, 1.1};
    hv["normalisation"] = "min/max over all methods' final points of this sweep";
    for (const auto& [key, values] :
         {std::pair{"train_capped", &rep.hv_train_capped}, {"eval_capped", &rep.hv_eval_capped}}) {
      nlohmann::json& j = hv[key] = nlohmann::json::object();
      for (const auto& [m, v] : *values) j[m] = finite_or_null(v);
    }
    hv["main_cap"] = {
        {"train", finite_or_null(rep.cap.train)}, {"eval", finite_or_null(rep.cap.eval)}, {"source", rep.cap.source}};
    hv["capped_normalisation"] =
        "points with main loss >= the cap dropped; main loss over [smallest kept, cap], reference (1, 1.1)";
    if (!rep.best_delta_m.empty()) hv["delta_m_pct_best"] = rep.best_delta_m;
    write_text_atomic(dir + "/hypervolume.json", hv.dump(2) + "\n");
    rep.files.push_back(dir + "/hypervolume.json");
  }
  // plots
  fs::create_directories(dir + "/plots");
  const bool have_gnuplot = gnuplot_available();
  if (!have_gnuplot) rep.warnings.push_back("gnuplot not found: plots skipped (run scripts/bootstrap.sh)");
  auto render = [&](const std::string& name, const std::string& body, bool svg_too, const std::string& size) {
    if (body.empty()) {
      rep.warnings.push_back("no finished runs to plot in " + name);
      return;
    }
    std::string script = "set terminal pngcairo size " + size + " enhanced font 'Sans,11'\nset output " +
                         gp_quote(dir + "/" + name + ".png") + "\n" + body;
    if (svg_too)
      script += "set terminal svg size " + size + " dynamic enhanced font 'Sans,11'\nset output " +
                gp_quote(dir + "/" + name + ".svg") + "\nreplot\n";
    const std::string sp = dir + "/plots/" + name + ".gp";
    write_text_atomic(sp, script);
    if (!have_gnuplot) return;
    std::string err;
    if (run_gnuplot(sp, &err)) {
      rep.files.push_back(dir + "/" + name + ".png");
      if (svg_too) rep.files.push_back(dir + "/" + name + ".svg");
    } else {
      rep.warnings.push_back(err);
    }
  };
  render("pareto_train", pareto_script("train", rep.runs, methods, dir, spec, rep.warnings), true, "1000,720");
  render("pareto_eval", pareto_script("eval", rep.runs, methods, dir, spec, rep.warnings), true, "1000,720");
  render("curves", curves_script(rep.runs, methods, spec), false, "1400,560");
  for (const PlotSpec::VsLambda& v : spec.vs_lambda)
    render(v.name, vs_lambda_script(v, rep.runs, methods, dir), false, "900,600");

  // report.md
  {
    std::ostringstream md;
    md << "# " << cfg.value("experiment", std::string("sweep")) << "\n\n";
    md << "Preset `" << cfg.value("preset", std::string("?")) << "`, seed " << cfg.value("seed", 0) << ", revision `"
       << cfg.value("git_revision", std::string("unknown")) << "`.\n\n";
    const bool with_dm = !rep.best_delta_m.empty();
    md << "## Hypervolume (bigger is better)\n\n| method | train | eval | train, capped | eval, capped |"
       << (with_dm ? " best Δm% |" : "") << "\n|---|---|---|---|---|" << (with_dm ? "---|" : "") << "\n";
    for (const std::string& m : methods) {
      const auto dm = rep.best_delta_m.find(m);
      md << "| " << m << " | " << fmt(rep.hv_train[m], 4) << " | " << fmt(rep.hv_eval[m], 4) << " | "
         << fmt(rep.hv_train_capped[m], 4) << " | " << fmt(rep.hv_eval_capped[m], 4) << " |"
         << (with_dm ? " " + (dm == rep.best_delta_m.end() ? std::string("n/a") : fmt(dm->second, 4)) + " |" : "")
         << "\n";
    }
    md << "\nNormalised with the min/max over all methods' final points, reference point (1.1, 1.1)"
       << (spec.log_axes ? ", log10 axes" : "") << ". Capped: only points whose main loss is below the cap ("
       << fmt(rep.cap.train) << " train, " << fmt(rep.cap.eval) << " eval, from " << rep.cap.source
       << ") count, the main-loss axis running from the best kept point to the cap (reference 1)."
       << (with_dm ? " Δm%: mean relative change of the task metrics against the stl single-task runs, sign "
                     "flipped for higher-is-better metrics; lower is better, negative beats single-task."
                   : "")
       << "\n\n";
    md << "## Runs\n\n| method | lambda | status | train main | train aux | eval main | eval aux | seconds |"
       << (with_dm ? " Δm% |" : "") << "\n|---|---|---|---|---|---|---|---|" << (with_dm ? "---|" : "") << "\n";
    for (const RunSummary& r : rep.runs) {
      md << "| " << r.method << " | " << fmt(r.lambda, 4) << " | " << r.status
         << (r.error.empty() ? "" : " (" + r.error.substr(0, 80) + ")") << " | " << fmt(r.train_main) << " | "
         << fmt(r.train_aux) << " | " << fmt(r.eval_main) << " | " << fmt(r.eval_aux) << " | " << fmt(r.seconds, 3)
         << " |" << (with_dm ? " " + fmt(r.delta_m, 4) + " |" : "") << "\n";
    }
    md << "\n## Plots\n\n![Pareto fronts, eval](pareto_eval.png)\n\n![Pareto fronts, train](pareto_train.png)\n\n"
          "![Loss curves](curves.png)\n\n";
    for (const PlotSpec::VsLambda& v : spec.vs_lambda)
      md << "![" << v.label << " against lambda](" << v.name << ".png)\n\n";
    md << "SVG versions: [pareto_eval.svg](pareto_eval.svg), "
          "[pareto_train.svg](pareto_train.svg). Data: [front.csv](front.csv), "
          "[hypervolume.json](hypervolume.json).\n";
    write_text_atomic(dir + "/report.md", md.str());
    rep.files.push_back(dir + "/report.md");
  }
  return rep;
}

std::string format_report_summary(const SweepReport& r, const std::string& dir) {
  std::ostringstream os;
  std::vector<std::string> methods;
  for (const auto& [m, v] : r.hv_train) methods.push_back(m);
  auto get = [](const std::map<std::string, double>& m, const std::string& k) {
    const auto it = m.find(k);
    return it == m.end() ? NAN : it->second;
  };
  const bool with_dm = !r.best_delta_m.empty();
  if (r.cap.source == "none") {
    os << "\nHypervolume (bigger is better; capped: n/a, the sweep has no main-only run: add a lambda 0 run or stl, "
          "or give --hv-main-cap)\n";
  } else {
    os << "\nHypervolume (bigger is better; capped: only points with main loss below " << fmt(r.cap.eval)
       << " (eval), from " << r.cap.source << ")\n";
  }
  os << "  " << std::left << std::setw(18) << "method" << std::setw(12) << "train" << std::setw(12) << "eval"
     << std::setw(14) << "train capped" << (with_dm ? std::setw(14) : std::setw(0)) << "eval capped"
     << (with_dm ? "best dm%" : "") << "\n";
  for (const std::string& m : methods) {
    os << "  " << std::left << std::setw(18) << m << std::setw(12) << fmt(get(r.hv_train, m), 4) << std::setw(12)
       << fmt(get(r.hv_eval, m), 4) << std::setw(14) << fmt(get(r.hv_train_capped, m), 4)
       << (with_dm ? std::setw(14) : std::setw(0)) << fmt(get(r.hv_eval_capped, m), 4)
       << (with_dm ? fmt(get(r.best_delta_m, m), 4) : "") << "\n";
  }
  int done = 0, diverged = 0, failed = 0;
  for (const RunSummary& s : r.runs) (s.status == "done" ? done : s.status == "diverged" ? diverged : failed) += 1;
  os << "\nRuns: " << done << " done, " << diverged << " diverged, " << failed << " not done\n";
  for (const RunSummary& s : r.runs) {
    if (s.status != "done")
      os << "  " << s.method << " lambda=" << s.lambda << ": " << s.status << (s.error.empty() ? "" : ": " + s.error)
         << "\n";
  }
  os << "Outputs in " << dir << ":\n";
  for (const std::string& f : r.files) os << "  " << f << "\n";
  for (const std::string& w : r.warnings) os << "warning: " << w << "\n";
  return os.str();
}

}  // namespace experiments
}  // namespace scalpel
