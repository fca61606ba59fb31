// scalpel-short-horizon: the lecture's short-horizon bias on the noisy quadratic model
// (experiments/nqm_model.h; Wu et al. 2018).
//
// The schedule α_k = α0 / (1 + k/K)^β is meta-optimised (offline SMD: Adam through the unrolled
// expected dynamics, reverse mode on the tape) to minimise the expected loss after a horizon H, for
// each H of --horizons, and every schedule is then run for --steps steps. The greedy schedule
// (horizon one, closed form) and a spherical control (condition 1, where the lecture says greedy is
// optimal) come along. Outputs: short_horizon.csv (per horizon: α0, K, β, loss at H, loss at
// --steps), schedules.csv and losses.csv (per step), lr_schedules.png and loss_curves.png.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "experiments/nqm_model.h"
#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "experiments/runner/runner.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace {

// "10,100,1000" -> the horizons; throws UsageError naming --horizons for anything else. `steps`
// bounds them (0: not known yet, at parse time).
std::vector<int64_t> parse_horizons(const std::string& text, int64_t steps) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 1) {
      throw UsageError("--horizons: expected a comma-separated list of positive step counts, got '" + text + "'");
    }
    if (steps > 0 && v > steps) {
      throw UsageError("--horizons: horizon " + std::to_string(v) + " is longer than the run (--steps " +
                       std::to_string(steps) + "); give horizons up to --steps");
    }
    out.push_back(v);
  }
  if (out.empty()) throw UsageError("--horizons: expected at least one horizon, got '" + text + "'");
  return out;
}

std::string fmt(double v) {
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

void plot(const std::string& out, const std::vector<std::string>& names, bool log_y, const std::string& csv,
          const std::string& png, const std::string& ylabel, const std::string& title, Progress& progress) {
  std::ostringstream gp;
  gp << "set logscale x\nset autoscale xfix\n"
     << (log_y ? "set logscale y\n" : "") << "set key outside right\n"
     << "set xlabel 'step'\nset ylabel '" << ylabel << "'\nset title '" << title << "'\n"
     << "f='" << out << "/" << csv << "'\nplot ";
  for (size_t k = 0; k < names.size(); ++k) {
    gp << (k ? ", \\\n     " : "") << "f using ($1+1):" << k + 2 << " with lines lw 2 title '" << names[k] << "'";
  }
  gp << "\n";
  const std::string warning = write_plot(out, png.substr(0, png.size() - 4), gp.str());
  if (!warning.empty()) progress.message(warning);
}

void run_short_horizon(RunContext& ctx) {
  const Config& c = ctx.config();
  const int64_t T = c.steps;
  const std::vector<int64_t> horizons = parse_horizons(c.extra_string("horizons", "10,100,1000"), T);
  const Nqm q =
      Nqm::log_spaced(c.extra_int("dim", 100), c.extra_double("condition", 1000), c.extra_double("noise", 0.01));
  const int64_t iters = c.extra_int("meta-iterations", 200);
  const double meta_lr = c.extra_double("meta-lr", 0.05);
  // The start of every meta-optimisation: α0 = α_max / 2, K = 100, β = 1.
  const ScheduleParams start{0.0, std::log(100.0), std::log(std::exp(1.0) - 1.0)};

  std::vector<std::string> names;
  std::vector<std::vector<double>> lrs, losses;
  std::ostringstream table;
  table << "schedule,horizon,alpha0,K,beta,loss_at_horizon,loss_at_end\n";
  ctx.progress().start("short-horizon", static_cast<int64_t>(horizons.size()));
  int64_t done = 0;
  for (int64_t H : horizons) {
    const MetaResult r = meta_optimize(q, H, start, iters, meta_lr);
    const auto v = schedule_values(q, r.params);
    const std::vector<double> s = schedule_lrs(q, r.params, T);
    const std::vector<double> l = expected_losses(q, s);
    names.push_back("meta H=" + std::to_string(H));
    lrs.push_back(s);
    losses.push_back(l);
    table << "meta," << H << ',' << fmt(v[0]) << ',' << fmt(v[1]) << ',' << fmt(v[2]) << ',' << fmt(l[H]) << ','
          << fmt(l[T]) << '\n';
    ctx.log({{"step", static_cast<double>(H)},
             {"horizon", static_cast<double>(H)},
             {"alpha0", v[0]},
             {"K", v[1]},
             {"beta", v[2]},
             {"loss_at_horizon", l[H]},
             {"loss_at_end", l[T]},
             {"meta_start", r.meta_losses.front()},
             {"meta_final", r.meta_losses.back()}});
    ctx.progress().update(++done, {{"H", static_cast<double>(H)}, {"loss_at_end", l[T]}});
  }
  const std::vector<double> g = greedy_lrs(q, T);
  const std::vector<double> gl = expected_losses(q, g);
  names.push_back("greedy (online H=1)");
  lrs.push_back(g);
  losses.push_back(gl);
  table << "greedy,1,,,," << fmt(gl[1]) << ',' << fmt(gl[T]) << '\n';
  ctx.set_final("greedy_loss_at_end", gl[T]);
  ctx.set_final("shortest_loss_at_end", losses.front()[T]);
  ctx.set_final("longest_loss_at_end", losses[horizons.size() - 1][T]);

  // Spherical control: one curvature, so greedy is optimal; compare with the longest horizon.
  Nqm sphere = Nqm::log_spaced(static_cast<int64_t>(q.h.size()), 1.0, q.noise);
  const double sphere_greedy = expected_losses(sphere, greedy_lrs(sphere, T))[T];
  const MetaResult sm = meta_optimize(sphere, horizons.back(), start, iters, meta_lr);
  const double sphere_meta = expected_losses(sphere, schedule_lrs(sphere, sm.params, T))[T];
  table << "spherical greedy,1,,,,," << fmt(sphere_greedy) << '\n';
  table << "spherical meta," << horizons.back() << ",,,,," << fmt(sphere_meta) << '\n';
  ctx.set_final("spherical_greedy_loss_at_end", sphere_greedy);
  ctx.set_final("spherical_meta_loss_at_end", sphere_meta);

  write_text_atomic(c.out + "/short_horizon.csv", table.str());
  std::ostringstream sc, lc;
  sc << "step";
  lc << "step";
  for (const std::string& n : names) {
    sc << ',' << n;
    lc << ',' << n;
  }
  sc << '\n';
  lc << '\n';
  for (int64_t t = 0; t < T; ++t) {
    sc << t;
    for (const auto& s : lrs) sc << ',' << fmt(s[t]);
    sc << '\n';
  }
  for (int64_t t = 0; t <= T; ++t) {
    lc << t;
    for (const auto& l : losses) lc << ',' << fmt(l[t]);
    lc << '\n';
  }
  write_text_atomic(c.out + "/schedules.csv", sc.str());
  write_text_atomic(c.out + "/losses.csv", lc.str());
  const std::string cond = fmt(c.extra_double("condition", 1000));
  plot(c.out, names, true, "schedules.csv", "lr_schedules.png", "learning rate",
       "Schedules meta-optimised for each horizon (NQM, condition " + cond + ")", ctx.progress());
  plot(c.out, names, true, "losses.csv", "loss_curves.png", "expected loss",
       "Expected loss of each schedule over the full run", ctx.progress());
  ctx.progress().finish("done");
}

OptionSpec horizons_option() {
  OptionSpec o("horizons", "comma-separated meta-optimisation horizons, in steps (at most --steps)");
  o.check = [](const std::string& v) { parse_horizons(v, 0); };
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-short-horizon";
  e.summary = "Short-horizon bias: learning-rate schedules meta-optimised over short horizons decay too fast (NQM).";
  e.example = "scalpel-short-horizon --horizons 10,100,1000 --steps 1000 --out runs/short-horizon";
  e.presets["cpu"] = {{"methods", "bloop"},  {"lambdas", "1"},  {"steps", "1000"},           {"dim", "100"},
                      {"condition", "1000"}, {"noise", "0.01"}, {"horizons", "10,100,1000"}, {"meta-iterations", "200"},
                      {"meta-lr", "0.05"}};
  e.presets["paper"] = e.presets["cpu"];
  e.presets["paper"]["horizons"] = "10,30,100,300,1000";
  e.presets["paper"]["meta-iterations"] = "500";
  e.options = {int_option("dim", "coordinates of the quadratic", 1, 100000),
               real_option("condition", "largest / smallest curvature (1: spherical)", 1.0, 1e12),
               real_option("noise", "gradient noise variance per unit of curvature", 0.0, 1e6),
               horizons_option(),
               int_option("meta-iterations", "Adam updates of the schedule per horizon", 1, 1000000),
               real_option("meta-lr", "Adam learning rate of the schedule parameters", 1e-9, 10.0)};
  e.pareto = false;
  e.run = run_short_horizon;
  return run_main(argc, argv, e);
}
