// scalpel-noise: paper Fig. 2 — why projecting on noisy batch gradients degrades to Mixed.
//
// p = 100, fixed g0, g1 ~ N(0, I) (seeded), λ = 1. For each noise level σ on a log grid, a
// Monte-Carlo estimate of E[d] for the naive projection d = g̃0 + λ π(g1; g̃0) with
// g̃0 = g0 + σ ε, compared with the noise-free Bloop direction d* = g0 + λ π(g1; g0) and with the
// Mixed direction g0 + λ g1 (distances relative to ‖d*‖). The second curve projects instead on an
// EMA of the noisy gradients with rate ρ: in its stationary regime the EMA is g0 plus Gaussian
// noise of standard deviation σ·sqrt(ρ/(2−ρ)), which is what is sampled, so E[d] returns to d*.
// Outputs: noise.csv, noise.png (and the usual config.json / metrics.csv of the one run).
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/random.h"
#include "experiments/noise_model.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "experiments/runner/runner.h"

using namespace scalpel;
using namespace scalpel::experiments;

using Vec = std::vector<double>;

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-noise";
  e.summary =
      "Paper Fig. 2: E[d] of the projection on noisy batch gradients drifts from Bloop to Mixed; an EMA restores it.";
  e.example = "scalpel-noise --lambda 1 --samples 20000 --ema-rho 0.0001 --out runs/noise";
  e.presets["cpu"] = {{"methods", "bloop"}, {"lambdas", "1"},     {"samples", "4000"},   {"dim", "100"},
                      {"sigma-min", "0.3"}, {"sigma-max", "100"}, {"sigma-count", "13"}, {"ema-rho", "0.0001"}};
  e.presets["paper"] = e.presets["cpu"];
  e.presets["paper"]["samples"] = "50000";
  e.options = {int_option("samples", "Monte-Carlo samples per sigma", 1, 100000000),
               int_option("dim", "parameter dimension p", 1, 100000000),
               real_option("sigma-min", "smallest noise level", 1e-30, 1e30),
               real_option("sigma-max", "largest noise level", 1e-30, 1e30),
               int_option("sigma-count", "noise levels on the log grid", 1, 10000),
               real_option("ema-rho", "EMA rate for the second curve", 1e-12, 1.0)};
  e.pareto = false;
  e.run = [](RunContext& ctx) {
    const Config& c = ctx.config();
    const int64_t n = c.extra_int("sigma-count", 13);
    const double lo = std::log10(c.extra_double("sigma-min", 0.3)), hi = std::log10(c.extra_double("sigma-max", 100));
    Vec sigmas;
    for (int64_t i = 0; i < n; ++i) sigmas.push_back(std::pow(10.0, n == 1 ? lo : lo + (hi - lo) * i / (n - 1)));
    const auto rows = noise_curves(c.extra_int("dim", 100), ctx.spec().lambda, sigmas, c.extra_double("ema-rho", 1e-4),
                                   c.extra_int("samples", 4000), c.seed);
    std::ostringstream csv;
    csv << "sigma,naive_to_bloop,naive_to_mixed,ema_to_bloop,ema_to_mixed\n";
    int64_t step = 0;
    for (const auto& r : rows) {
      csv << r[0] << ',' << r[1] << ',' << r[2] << ',' << r[3] << ',' << r[4] << '\n';
      ctx.log({{"step", static_cast<double>(step++)},
               {"sigma", r[0]},
               {"naive_to_bloop", r[1]},
               {"naive_to_mixed", r[2]},
               {"ema_to_bloop", r[3]},
               {"ema_to_mixed", r[4]}});
    }
    write_text_atomic(c.out + "/noise.csv", csv.str());
    std::ostringstream gp;
    gp << "set terminal pngcairo size 900,620 enhanced font 'Sans,11'\nset output '" << c.out << "/noise.png'\n"
       << "set datafile separator ','\nset logscale x\nset grid lc rgb '#dddddd'\nset key top left\n"
       << "set xlabel 'gradient noise {/Symbol s}'\nset ylabel 'distance of E[d] (relative to ||d_{Bloop}||)'\n"
       << "set title 'Projection on noisy gradients (p = " << c.extra_int("dim", 100)
       << ", {/Symbol l} = " << ctx.spec().lambda << ")'\n"
       << "f='" << c.out << "/noise.csv'\n"
       << "plot f using 1:2 with linespoints lw 2 lc rgb '#d62728' title 'naive projection: to Bloop', \\\n"
       << "     f using 1:3 with linespoints lw 2 lc rgb '#1f77b4' title 'naive projection: to Mixed', \\\n"
       << "     f using 1:4 with linespoints lw 2 dt 2 lc rgb '#d62728' title 'EMA (rho="
       << c.extra_double("ema-rho", 1e-4) << "): to Bloop', \\\n"
       << "     f using 1:5 with linespoints lw 2 dt 2 lc rgb '#1f77b4' title 'EMA: to Mixed'\n";
    std::filesystem::create_directories(c.out + "/plots");
    write_text_atomic(c.out + "/plots/noise.gp", gp.str());
    std::string err;
    if (gnuplot_available() && !run_gnuplot(c.out + "/plots/noise.gp", &err)) ctx.progress().message("warning: " + err);
    ctx.progress().message("noise: wrote " + c.out + "/noise.csv and " + c.out + "/noise.png");
  };
  return run_main(argc, argv, e);
}
