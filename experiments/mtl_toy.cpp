// scalpel-mtl-toy: the two-objective toy of the multi-task literature (experiments/mtl_toy_model.h)
// run from every published starting point by every method, drawn over the loss landscape.
//
// Each run is one method: from each start, Adam (--lr, default 1e-3) on x with the direction
// d = surgeon(∇f1, ∇f2) (a fresh surgeon per start). Per run: trajectories.csv (start, step, x1,
// x2, f1, f2, min_norm), metrics.csv (the mean of f1 and f2 over the starts, and how many starts
// are Pareto-stationary so far), summary.json with each start's end point and its Pareto-
// stationarity (min-norm of the segment [∇f1, ∇f2] below --stationary-tol). After the sweep:
// trajectories.png, one panel per method: f1 + f2 as a map with contours, the Pareto-stationary
// set (grid points where the min-norm of [∇f1, ∇f2] is below 1e-3), and every trajectory from its start (circle)
// to its end (star).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "core/grad_vector.h"
#include "experiments/mtl_toy_model.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "experiments/runner/runner.h"
#include "optim/optimizer.h"
#include "optim/surgery/surgeon.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

struct Start {
  double x1, x2;
};

std::vector<Start> parse_starts(const std::string& text) {
  std::vector<Start> out;
  if (text.empty()) {
    for (const auto& s : mtl_toy_starts()) out.push_back({s[0], s[1]});
    return out;
  }
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ';')) {
    const size_t colon = item.find(':');
    char* e1 = nullptr;
    char* e2 = nullptr;
    const std::string a = item.substr(0, colon), b = colon == std::string::npos ? "" : item.substr(colon + 1);
    const double x1 = std::strtod(a.c_str(), &e1), x2 = std::strtod(b.c_str(), &e2);
    if (colon == std::string::npos || a.empty() || b.empty() || *e1 || *e2 || !std::isfinite(x1) ||
        !std::isfinite(x2)) {
      throw UsageError("--starts: '" + item + "' is not x1:x2 (expected e.g. --starts '-8.5:7.5;0:0')");
    }
    out.push_back({x1, x2});
  }
  if (out.empty()) throw UsageError("--starts: no starting point given (expected e.g. --starts '-8.5:7.5;0:0')");
  return out;
}

void run_mtl_toy(RunContext& ctx) {
  const Config& cfg = ctx.config();
  const std::vector<Start> starts = parse_starts(cfg.extra_string("starts", ""));
  const double scale = cfg.extra_double("scale", 1.0);
  const double tol = cfg.extra_double("stationary-tol", 1e-2);
  const int64_t steps = cfg.steps;
  const int64_t log_every = std::max<int64_t>(1, cfg.eval_every);
  const std::vector<std::string> asymmetric = surgery::main_aux_surgeon_names();
  const bool main_aux = std::find(asymmetric.begin(), asymmetric.end(), ctx.spec().method) != asymmetric.end();
  // Exact gradients: the asymmetric methods project on ∇f1 itself (ρ = 1), as in scalpel-toy.
  const auto options = surgeon_options(
      ctx, main_aux ? std::map<std::string, std::string>{{"rho", "1"}} : std::map<std::string, std::string>{});
  std::vector<ToyEval> at(starts.size());
  std::vector<Tensor> x(starts.size());
  std::vector<std::unique_ptr<optim::Optimizer>> opts;
  std::vector<std::unique_ptr<surgery::Surgeon>> surgeons;
  for (size_t k = 0; k < starts.size(); ++k) {
    x[k] = Tensor::from_vector({static_cast<float>(starts[k].x1), static_cast<float>(starts[k].x2)}, {2});
    x[k].set_requires_grad(true);
    opts.push_back(std::make_unique<optim::Adam>(std::vector<Tensor>{x[k]}, optim::AdamOptions(cfg.lr)));
    surgeons.push_back(surgery::make_surgeon(ctx.spec().method, options));
  }
  // trajectories.csv rows, one block per start (start-major, so a plot draws one line per block).
  std::vector<std::ostringstream> traj(starts.size());
  for (auto& t : traj) t << std::setprecision(9);
  GradVector g1(2), g2(2), d(2);
  auto record = [&](int64_t step) {
    double f1 = 0, f2 = 0;
    int stationary = 0;
    for (size_t k = 0; k < starts.size(); ++k) {
      const float* p = x[k].data();
      at[k] = mtl_toy_eval(p[0], p[1], scale);
      const double mn = min_norm_2(at[k].g1, at[k].g2);
      traj[k] << k << "," << step << "," << p[0] << "," << p[1] << "," << at[k].f1 << "," << at[k].f2 << "," << mn
              << "\n";
      f1 += at[k].f1 / starts.size();
      f2 += at[k].f2 / starts.size();
      stationary += mn < tol;
    }
    ctx.log({{"step", static_cast<double>(step)},
             {"train_main", f1},
             {"train_aux", f2},
             {"eval_main", f1},
             {"eval_aux", f2},
             {"stationary_starts", static_cast<double>(stationary)}});
  };
  ctx.progress().start(ctx.spec().label, steps);
  record(0);
  for (int64_t s = 1; s <= steps; ++s) {
    for (size_t k = 0; k < starts.size(); ++k) {
      const float* p = x[k].data();
      const ToyEval e = mtl_toy_eval(p[0], p[1], scale);
      for (int i = 0; i < 2; ++i) {
        g1.data()[i] = static_cast<float>(e.g1[i]);
        g2.data()[i] = static_cast<float>(e.g2[i]);
      }
      surgeons[k]->combine({&g1, &g2}, {e.f1, e.f2}, d);
      if (!std::isfinite(d[0]) || !std::isfinite(d[1])) {
        throw NonFiniteLoss("step " + std::to_string(s) + ", start " + std::to_string(k) +
                            ": the direction is not finite");
      }
      x[k].set_grad(Tensor::from_vector({d[0], d[1]}, {2}));
      opts[k]->step();
    }
    if (s % log_every == 0 || s == steps) record(s);
    ctx.progress().update(s, {});
  }
  int stationary = 0;
  for (size_t k = 0; k < starts.size(); ++k) {
    const std::string key = "start" + std::to_string(k);
    const double mn = min_norm_2(at[k].g1, at[k].g2);
    ctx.set_final(key + "_x1", x[k].data()[0]);
    ctx.set_final(key + "_x2", x[k].data()[1]);
    ctx.set_final(key + "_f1", at[k].f1);
    ctx.set_final(key + "_f2", at[k].f2);
    ctx.set_final(key + "_min_norm", mn);
    stationary += mn < tol;
  }
  ctx.set_final("stationary_starts", static_cast<double>(stationary));
  std::string csv = "start,step,x1,x2,f1,f2,min_norm\n";
  for (const auto& t : traj) csv += t.str();
  write_text_atomic(ctx.spec().dir + "/trajectories.csv", csv);
  ctx.progress().finish(std::to_string(stationary) + " of " + std::to_string(starts.size()) +
                        " starts Pareto-stationary");
}

// Writes the landscape grid (x1 x2 f1+f2 min-norm) for gnuplot, x in [-10, 10]².
void write_landscape(const std::string& path, double scale) {
  std::ostringstream g;
  g << std::setprecision(6);
  const int n = 201;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const double x1 = -10.0 + 20.0 * j / (n - 1), x2 = -10.0 + 20.0 * i / (n - 1);
      const ToyEval e = mtl_toy_eval(x1, x2, scale);
      g << x1 << " " << x2 << " " << e.f1 + e.f2 << " " << min_norm_2(e.g1, e.g2) << "\n";
    }
    g << "\n";
  }
  write_text_atomic(path, g.str());
}

void plot_mtl_toy(const Config& cfg, const std::string& out) {
  const std::string plots = out + "/plots";
  std::filesystem::create_directories(plots);
  write_landscape(plots + "/landscape.dat", cfg.extra_double("scale", 1.0));
  const size_t n = cfg.methods.size();
  const size_t cols = n <= 3 ? n : (n <= 12 ? 4 : 5);
  const size_t rows = (n + cols - 1) / cols;
  std::ostringstream gp;
  gp << "set terminal pngcairo size " << 380 * cols << "," << 360 * rows + 40 << " enhanced font 'Sans,9'\n";
  gp << "set output '" << out << "/trajectories.png'\n";
  // Contour lines of f1 + f2, computed once into a table.
  gp << "set contour base\nunset surface\nset view map\nset cntrparam levels 14\n";
  gp << "set table '" << plots << "/contours.dat'\nsplot '" << plots << "/landscape.dat' using 1:2:3\nunset table\n";
  gp << "unset contour\n";
  gp << "set multiplot layout " << rows << "," << cols
     << " title 'Two-objective toy (CAGrad): trajectories from each start (o) to the end (*); grey: "
        "Pareto-stationary points (min-norm of [∇f1, ∇f2] < 1e-3)'\n";
  gp << "set xrange [-10:10]\nset yrange [-10:10]\nset size ratio -1\nunset key\nunset colorbox\n";
  gp << "set palette defined (0 '#f7fbff', 1 '#c6dbef', 2 '#6baed6', 3 '#2171b5')\n";
  gp << "set xtics 5\nset ytics 5\n";
  size_t mi = 0;
  for (const std::string& m : cfg.methods) {
    const std::string run = out + "/" + m + "/" + lambda_dirname(recorded_lambda(m, cfg.lambdas.front()));
    // gnuplot reads one separator per script and draws a line per block: a whitespace copy of
    // the run's trajectories.csv (start-major) with a blank line between starts.
    std::string csv;
    if (std::filesystem::exists(run + "/trajectories.csv")) {
      std::istringstream in(read_text(run + "/trajectories.csv"));
      std::string line, text = "#", start;
      std::getline(in, line);  // header
      text += line + "\n";
      while (std::getline(in, line)) {
        const std::string s = line.substr(0, line.find(','));
        if (s != start && !start.empty()) text += "\n";
        start = s;
        std::replace(line.begin(), line.end(), ',', ' ');
        text += line + "\n";
      }
      csv = plots + "/" + m + ".trajectories.dat";
      write_text_atomic(csv, text);
    }
    gp << "set title '" << m << "'\n";
    gp << "plot '" << plots << "/landscape.dat' using 1:2:3 with image, \\\n"
       << "     '" << plots << "/contours.dat' using 1:2 with lines lc rgb '#88000000' lw 0.5, \\\n"
       << "     '" << plots
       << "/landscape.dat' using 1:($4 < 1e-3 ? $2 : 1/0) with points pt 7 ps 0.3 lc rgb '#444444'";
    if (!csv.empty()) {
      const std::string color = method_color(m, mi);
      gp << ", \\\n     '" << csv << "' using 3:4 with lines lw 1.6 lc rgb '" << color << "'"
         << ", \\\n     '" << csv << "' using ($2 == 0 ? $3 : 1/0):4 with points pt 6 ps 1.2 lc rgb 'black'";
      gp << ", \\\n     '" << csv << "' using ($2 == " << cfg.steps
         << " ? $3 : 1/0):4 with points pt 3 ps 1.6 lc rgb 'black'";
    }
    gp << "\n";
    ++mi;
  }
  gp << "unset multiplot\n";
  write_text_atomic(plots + "/trajectories.gp", gp.str());
  std::string err;
  if (gnuplot_available() && !run_gnuplot(plots + "/trajectories.gp", &err)) std::cerr << "warning: " << err << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-mtl-toy";
  e.summary = "The two-objective toy of CAGrad / Nash-MTL: each method's Adam trajectories over the loss landscape.";
  e.example = "scalpel-mtl-toy --methods mixed,mgda,cagrad,nash-mtl --out runs/mtl-toy";
  e.presets["cpu"] = {{"steps", "20000"},
                      {"lr", "0.001"},
                      {"eval-every", "100"},
                      {"methods",
                       "mixed,mgda,pcgrad,cagrad,imtl-g,aligned-mtl,upgrad,dualproj,nash-mtl,gradvac,graddrop,moco,"
                       "bloop,dynamic-barrier"},
                      {"lambdas", "1"}};
  e.presets["paper"] = e.presets["cpu"];
  e.presets["paper"]["steps"] = "100000";
  OptionSpec starts("starts", "starting points 'x1:x2;x1:x2;...' (default the five published ones)");
  starts.check = [](const std::string& v) { parse_starts(v); };
  e.options = {
      starts, real_option("scale", "factor on f1 (default 1; scale-invariant methods must not care)", 1e-6, 1e6),
      real_option("stationary-tol", "min-norm below which an end point counts as Pareto-stationary (1e-2)", 0.0, 1e30)};
  e.main_label = "f1 (mean over starts)";
  e.aux_label = "f2 (mean over starts)";
  e.run = run_mtl_toy;
  e.after_sweep = plot_mtl_toy;
  return run_main(argc, argv, e);
}
