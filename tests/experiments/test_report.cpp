// scalpel-report's multi-task outputs on a hand-made sweep folder: Δm% against the stl single-task
// baselines and the capped hypervolume, with every number computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "experiments/runner/metrics.h"
#include "experiments/runner/report.h"
#include "run_util.h"

using namespace scalpel::experiments;
using scalpel_test::fresh_dir;

namespace {

// One run folder with summary.json (status done) and a two-row metrics.csv.
void write_run(const std::string& sweep, const std::string& sub, const std::string& surgeon, double lambda, int task,
               double main, double aux, double acc0, double acc1) {
  const std::string dir = sweep + "/" + sub;
  std::filesystem::create_directories(dir);
  nlohmann::json fin{{"train_main", main}, {"train_aux", aux},       {"eval_main", main},
                     {"eval_aux", aux},    {"eval_acc_task0", acc0}, {"eval_acc_task1", acc1}};
  nlohmann::json s{{"method", surgeon}, {"surgeon", surgeon}, {"lambda", lambda},
                   {"status", "done"},  {"seconds", 1.0},     {"final", fin}};
  if (task >= 0) s["task"] = task;
  write_text_atomic(dir + "/summary.json", s.dump());
  write_text_atomic(dir + "/metrics.csv", "step,train_main,train_aux,eval_main,eval_aux\n0,9,9,9,9\n1," +
                                              std::to_string(main) + "," + std::to_string(aux) + "," +
                                              std::to_string(main) + "," + std::to_string(aux) + "\n");
}

// A two-task sweep: mixed at λ = 0 and 1, cagrad once, stl per task.
std::string make_sweep(const std::string& name, bool with_stl, bool with_lambda0) {
  const std::string dir = fresh_dir(name);
  std::filesystem::create_directories(dir);
  nlohmann::json runs = nlohmann::json::array();
  auto add = [&](const std::string& m, double l, int task, double main, double aux, double a0, double a1) {
    const std::string sub = task >= 0 ? m + "/task_" + std::to_string(task) : m + "/lambda_" + std::to_string(l);
    write_run(dir, sub, m, l, task, main, aux, a0, a1);
    nlohmann::json jr{{"method", m}, {"lambda", l}, {"dir", sub}};
    if (task >= 0) jr["task"] = task;
    runs.push_back(jr);
  };
  if (with_lambda0) add("mixed", 0.0, -1, 2.0, 3.0, 0.50, 0.20);
  add("mixed", 1.0, -1, 1.5, 1.0, 0.55, 0.60);
  add("cagrad", 1.0, -1, 2.5, 0.5, 0.45, 0.90);
  if (with_stl) {
    add("stl", 1.0, 0, 1.8, 2.5, 0.50, 0.10);
    add("stl", 1.0, 1, 4.0, 0.8, 0.10, 0.80);
  }
  nlohmann::json cfg{
      {"experiment", "test"},
      {"methods", with_stl ? nlohmann::json{"mixed", "cagrad", "stl"} : nlohmann::json{"mixed", "cagrad"}},
      {"lambdas", {0.0, 1.0}},
      {"runs", runs},
      {"task_metrics",
       {{{"task", 0}, {"column", "eval_acc_task0"}, {"higher_is_better", true}},
        {{"task", 1}, {"column", "eval_acc_task1"}, {"higher_is_better", true}}}}};
  write_text_atomic(dir + "/config.json", cfg.dump());
  return dir;
}

const RunSummary& find(const SweepReport& r, const std::string& method, double lambda) {
  for (const RunSummary& s : r.runs)
    if (s.method == method && s.lambda == lambda) return s;
  throw std::runtime_error("no run " + method);
}

}  // namespace

TEST(Report, DeltaMAgainstSingleTaskBaselines) {
  const std::string dir = make_sweep("report_dm", true, true);
  const SweepReport rep = build_sweep_report(dir);
  // Δm = 100/2 [ -(0.55-0.5)/0.5 - (0.6-0.8)/0.8 ] = 50 (-0.1 + 0.25) = 7.5 for mixed λ=1;
  // mixed λ=0: 50 (0 - (0.2-0.8)/0.8) = 37.5; cagrad: 50 (0.1 - 0.125) = -1.25 (better than stl).
  EXPECT_NEAR(find(rep, "mixed", 1.0).delta_m, 7.5, 1e-9);
  EXPECT_NEAR(find(rep, "mixed", 0.0).delta_m, 37.5, 1e-9);
  EXPECT_NEAR(find(rep, "cagrad", 1.0).delta_m, -1.25, 1e-9);
  EXPECT_TRUE(std::isnan(find(rep, "stl", 1.0).delta_m));  // the baselines themselves
  EXPECT_NEAR(rep.best_delta_m.at("mixed"), 7.5, 1e-9);
  EXPECT_NEAR(rep.best_delta_m.at("cagrad"), -1.25, 1e-9);
  EXPECT_EQ(rep.best_delta_m.count("stl"), 0u);
  // The outputs carry it: a front.csv column, hypervolume.json, report.md.
  const std::string csv = read_text(dir + "/front.csv");
  EXPECT_NE(csv.find(",delta_m_pct,seconds\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",-1.25,1\n"), std::string::npos) << csv;
  const auto hv = nlohmann::json::parse(read_text(dir + "/hypervolume.json"));
  EXPECT_NEAR(hv["delta_m_pct_best"]["cagrad"].get<double>(), -1.25, 1e-9);
  EXPECT_NE(read_text(dir + "/report.md").find("best Δm%"), std::string::npos);
}

TEST(Report, DeltaMIsNotAvailableWithoutBaselines) {
  const std::string dir = make_sweep("report_nodm", false, true);
  const SweepReport rep = build_sweep_report(dir);
  EXPECT_TRUE(rep.best_delta_m.empty());
  EXPECT_TRUE(std::isnan(find(rep, "mixed", 1.0).delta_m));
  bool warned = false;
  for (const std::string& w : rep.warnings) warned |= w.find("no finished stl run for task 0, 1") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(Report, CappedHypervolumeTakesItsCapFromTheMainOnlyRun) {
  // With a λ = 0 run the cap is its main loss (2.0): cagrad (2.5) and stl task 1 (4.0) earn nothing.
  const SweepReport a = build_sweep_report(make_sweep("report_cap0", true, true));
  EXPECT_EQ(a.cap.source, "mixed lambda=0");
  EXPECT_DOUBLE_EQ(a.cap.eval, 2.0);
  EXPECT_DOUBLE_EQ(a.hv_eval_capped.at("cagrad"), 0.0);
  EXPECT_GT(a.hv_eval.at("cagrad"), 0.0);
  // Kept points: mixed (1.5,1.0) and stl task 0 (1.8,2.5); x over [1.5, 2] -> 0 and 0.6; y over
  // [1, 2.5] -> 0 and 1. mixed's λ = 0 point sits at the cap and adds nothing.
  EXPECT_NEAR(a.hv_eval_capped.at("mixed"), 1.0 * 1.1, 1e-12);
  EXPECT_NEAR(a.hv_eval_capped.at("stl"), 0.4 * 0.1, 1e-12);
  // Without it, the stl task-0 run gives the cap (1.8); an explicit cap overrides both.
  const SweepReport b = build_sweep_report(make_sweep("report_cap1", true, false));
  EXPECT_EQ(b.cap.source, "stl task 0");
  EXPECT_DOUBLE_EQ(b.cap.train, 1.8);
  const SweepReport c = build_sweep_report(make_sweep("report_cap2", true, false), 3.0);
  EXPECT_EQ(c.cap.source, "--hv-main-cap");
  EXPECT_GT(c.hv_eval_capped.at("cagrad"), 0.0);
  // Neither: n/a, stated in hypervolume.json.
  const std::string none = make_sweep("report_cap3", false, false);
  const SweepReport d = build_sweep_report(none);
  EXPECT_EQ(d.cap.source, "none");
  EXPECT_TRUE(std::isnan(d.hv_eval_capped.at("mixed")));
  const auto hv = nlohmann::json::parse(read_text(none + "/hypervolume.json"));
  EXPECT_TRUE(hv["eval_capped"]["mixed"].is_null());
}

TEST(Report, CommandLineCapOverridesAndBadValuesAreUsageErrors) {
  const std::string dir = make_sweep("report_cli", true, true);
  const std::string bin = SCALPEL_REPORT_BIN;
  const scalpel_test::Result ok = scalpel_test::run(bin + " " + dir + " --hv-main-cap 3");
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_TRUE(scalpel_test::has_text(ok, "from --hv-main-cap"));
  const auto hv = nlohmann::json::parse(read_text(dir + "/hypervolume.json"));
  EXPECT_EQ(hv["main_cap"]["source"], "--hv-main-cap");
  EXPECT_DOUBLE_EQ(hv["main_cap"]["eval"].get<double>(), 3.0);
  for (const char* bad : {" --hv-main-cap", " --hv-main-cap 1x", " --hv-main-cap nan"}) {
    const scalpel_test::Result r = scalpel_test::run(bin + " " + dir + bad);
    EXPECT_EQ(r.code, 2) << bad << ": " << r.output;
    EXPECT_TRUE(scalpel_test::has_text(r, "--hv-main-cap expects a finite number")) << bad;
  }
  const scalpel_test::Result merge = scalpel_test::run(bin + " --merge /tmp/x " + dir + " " + dir + " --hv-main-cap 3");
  EXPECT_EQ(merge.code, 2);
  EXPECT_TRUE(scalpel_test::has_text(merge, "not --merge"));
}

// config "plot" "vs_lambda": one final metric against λ per method, λ sorted, runs without the
// column left out; a malformed entry is refused naming config.json.
TEST(Report, MetricAgainstLambdaPlotData) {
  const std::string dir = make_sweep("report_vsl", false, true);
  nlohmann::json cfg = nlohmann::json::parse(read_text(dir + "/config.json"));
  cfg["plot"] = {{"vs_lambda",
                  {{{"name", "acc_vs_lambda"}, {"column", "eval_acc_task1"}, {"label", "acc"}},
                   {{"name", "none_vs_lambda"}, {"column", "no_such_column"}}}}};
  write_text_atomic(dir + "/config.json", cfg.dump());
  const SweepReport rep = build_sweep_report(dir);
  // Written in run order (mixed λ=0, mixed λ=1, cagrad λ=1), grouped by method, λ ascending.
  EXPECT_EQ(read_text(dir + "/plots/acc_vs_lambda.csv"),
            "method,lambda,eval_acc_task1\nmixed,0,0.2\nmixed,1,0.6\ncagrad,1,0.9\n");
  EXPECT_EQ(read_text(dir + "/plots/none_vs_lambda.csv"), "method,lambda,no_such_column\n");
  bool warned = false;
  for (const std::string& w : rep.warnings) warned = warned || w.find("none_vs_lambda") != std::string::npos;
  EXPECT_TRUE(warned) << "a plot without data is reported";
  const std::string script = read_text(dir + "/plots/acc_vs_lambda.gp");
  EXPECT_NE(script.find("unset logscale\n"), std::string::npos);
  EXPECT_EQ(script.find("set logscale x"), std::string::npos) << "λ = 0 is in the sweep: linear axis";

  cfg["plot"]["vs_lambda"] = {{{"column", "eval_acc_task1"}}};
  write_text_atomic(dir + "/config.json", cfg.dump());
  try {
    build_sweep_report(dir);
    FAIL() << "an entry without a name is accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: plot.vs_lambda"), std::string::npos) << e.what();
  }
}
