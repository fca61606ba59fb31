// The lecture's studies end to end (experiments/short_horizon.cpp, hypergrad.cpp,
// bilevel_view.cpp): each binary at a small setting, its files and the claims the README makes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "run_util.h"

namespace fs = std::filesystem;
using namespace scalpel_test;

namespace {
// Rows of a small CSV with a header, by column name.
std::vector<std::map<std::string, std::string>> read_rows(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(item);
    if (!s.empty() && s.back() == ',') out.push_back("");
    return out;
  };
  if (std::getline(in, line)) header = split(line);
  while (std::getline(in, line)) {
    const auto cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}
double num(const std::map<std::string, std::string>& row, const std::string& key) { return std::stod(row.at(key)); }
}  // namespace

TEST(ShortHorizon, ShortHorizonsDecayTooFastAndLoseOverTheFullRun) {
  const std::string out = fresh_dir("short_horizon");
  const Result r = run(std::string(SCALPEL_SHORT_HORIZON_BIN) +
                       " --quiet --steps 300 --horizons 10,300 --meta-iterations 60 --dim 40 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_rows(out + "/short_horizon.csv");
  ASSERT_GE(rows.size(), 5u);
  const auto& shortest = rows[0];
  const auto& longest = rows[1];
  ASSERT_EQ(shortest.at("horizon"), "10");
  ASSERT_EQ(longest.at("horizon"), "300");
  // The schedule tuned for 10 steps is worse after 300 steps than the one tuned for 300.
  EXPECT_GT(num(shortest, "loss_at_end"), 1.5 * num(longest, "loss_at_end"));
  // ... because it decays earlier: its learning rate at step 150 is much smaller.
  const auto sched = read_rows(out + "/schedules.csv");
  ASSERT_EQ(sched.size(), 300u);
  EXPECT_LT(num(sched[150], "meta H=10"), 0.5 * num(sched[150], "meta H=300"));
  // Greedy (horizon one) loses to the long horizon too; on a spherical problem it is optimal.
  const nlohmann::json s = summary(out + "/bloop/lambda_1");
  EXPECT_GT(s["final"]["greedy_loss_at_end"].get<double>(), s["final"]["longest_loss_at_end"].get<double>());
  EXPECT_LE(s["final"]["spherical_greedy_loss_at_end"].get<double>(),
            1.001 * s["final"]["spherical_meta_loss_at_end"].get<double>());
  EXPECT_TRUE(fs::exists(out + "/losses.csv"));
}

TEST(ShortHorizon, BadHorizonsAreRefusedNamingTheFlag) {
  const std::string out = fresh_dir("short_horizon_bad");
  const Result malformed = run(std::string(SCALPEL_SHORT_HORIZON_BIN) + " --steps 100 --horizons 10,abc --out " + out);
  EXPECT_EQ(malformed.code, 2) << malformed.output;
  EXPECT_TRUE(has_text(malformed, "--horizons"));
  const Result too_long = run(std::string(SCALPEL_SHORT_HORIZON_BIN) + " --steps 100 --horizons 10,500 --out " + out);
  EXPECT_NE(too_long.code, 0) << too_long.output;
  EXPECT_TRUE(has_text(too_long, "longer than the run (--steps 100)"));
}

TEST(Hypergrad, EveryMethodApproachesTheExactHypergradientAndWarmStartRemembers) {
  const std::string out = fresh_dir("hypergrad");
  const Result r =
      run(std::string(SCALPEL_HYPERGRAD_BIN) + " --quiet --max-budget 64 --truncate-total 128 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_rows(out + "/hypergrad_error.csv");
  ASSERT_EQ(rows.size(), 7u);  // budgets 1, 2, ..., 64
  for (const std::string m : {"cg", "neumann", "unrolled_warm", "truncated"}) {
    EXPECT_LT(num(rows.back(), m), 0.5 * num(rows.front(), m)) << m << " does not improve with its budget";
  }
  EXPECT_LT(num(rows.back(), "cg"), 1e-4);  // 64 > d = 20 iterations: solved
  // T1-T2 is one flat value, far from the answer on this ill-conditioned problem.
  EXPECT_EQ(rows.front().at("t1t2"), rows.back().at("t1t2"));
  EXPECT_GT(num(rows.back(), "t1t2"), 0.5);
  const nlohmann::json s = summary(out + "/bloop/lambda_1");
  const auto& f = s["final"];
  // Kaczmarz: warm start fits every point, cold start only the last.
  EXPECT_LT(f["kaczmarz_warm_max_residual"].get<double>(), 1e-3);
  EXPECT_GT(f["kaczmarz_cold_max_residual"].get<double>(), 0.1);
  // The warm-started λ does not survive a re-initialised inner solve.
  EXPECT_GT(f["warm_val_loss_reinitialised"].get<double>(), 2 * f["warm_val_loss_training_theta"].get<double>());
  EXPECT_TRUE(fs::exists(out + "/warm_cold.csv"));
  EXPECT_TRUE(fs::exists(out + "/kaczmarz.csv"));
}

TEST(BilevelView, EveryMethodReachesTheToysBilevelSolutionAndMixedDoesNot) {
  const std::string out = fresh_dir("bilevel_view");
  const Result r = run(std::string(SCALPEL_BILEVEL_VIEW_BIN) +
                       " --quiet --problems toy --toy-steps 200 --toy-outer-steps 60 --unroll-steps 20 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  std::map<std::string, std::map<std::string, std::string>> by_method;
  for (const auto& row : read_rows(out + "/bilevel_view_final.csv")) by_method[row.at("problem/method")] = row;
  EXPECT_LT(num(by_method.at("toy/bloop lambda=1"), "dist_bilevel"), 1e-6);
  EXPECT_LT(num(by_method.at("toy/hypergrad-cg K=20"), "dist_bilevel"), 1e-4);
  EXPECT_LT(num(by_method.at("toy/hypergrad-unrolled K=20"), "dist_bilevel"), 1e-3);
  EXPECT_GT(num(by_method.at("toy/mixed lambda=0.1"), "dist_bilevel"), 0.05);  // (λ/(1+λ), 0) = (0.09, 0)
}
