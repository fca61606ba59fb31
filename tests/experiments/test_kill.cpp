// Checkpoints against kill -9 (issue 15): a sweep is killed with SIGKILL at seeded random moments
// (many land inside checkpoint writes: it checkpoints every step) and resumed each time. Every
// checkpoint left behind must load, and the final metrics must equal an uninterrupted run's bit
// for bit (timing columns aside). make test runs 6 kills; scripts/kill-test.sh runs 100
// (SCALPEL_KILLS=100) and the README quotes its result.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "core/state_dict.h"
#include "experiments/runner/metrics.h"
#include "tests/experiments/run_util.h"

namespace fs = std::filesystem;
using namespace scalpel_test;
using scalpel::StateDict;
using scalpel::experiments::MetricsLog;
using scalpel::experiments::read_text;

namespace {

// Starts `cmd` under /bin/sh in its own process group; output to `log`.
pid_t spawn(const std::string& cmd, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    const std::string full = "OMP_WAIT_POLICY=passive exec " + cmd + " >>" + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Waits up to `ms` for `pid`; kills its group with SIGKILL when still running. Returns the exit
// code, or -1 when it was killed.
int wait_or_kill(pid_t pid, int ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool timing_column(const std::string& c) { return c == "elapsed_s" || c == "step_ms"; }

// One bloop run of the smooth MLP, small enough for seconds, checkpointing every `checkpoint_every` steps.
std::string bloop_run(int steps, int eval_every, int checkpoint_every) {
  return command(SCALPEL_SMOOTH_MLP_BIN, {{"--method", "bloop"},
                                          {"--lambda", "0.1"},
                                          {"--steps", std::to_string(steps)},
                                          {"--eval-every", std::to_string(eval_every)},
                                          {"--checkpoint-every", std::to_string(checkpoint_every)},
                                          {"--batch-size", "32"},
                                          {"--train-size", "400"},
                                          {"--test-size", "100"},
                                          {"--eval-train-size", "100"},
                                          {"--threads", "1"},
                                          {"--quiet", "-"}});
}

}  // namespace

TEST(KillTest, SigkillAtRandomMomentsThenResumeEqualsTheUninterruptedRun) {
  const char* env = std::getenv("SCALPEL_KILLS");
  const int kills = env ? std::atoi(env) : 6;
  const std::string a = fresh_dir("kill_ref"), b = fresh_dir("kill_b");
  const std::string common = bloop_run(40, 10, 1);
  ASSERT_EQ(run(common + " --out " + a).code, 0);

  std::mt19937 rng(20261205);
  std::uniform_int_distribution<int> delay_ms(5, 300);
  const std::string log = fresh_dir("kill_log.txt");
  const std::string run_dir = b + "/bloop/lambda_0.1";
  int killed = 0, attempts = 0, unreadable = 0, code = -1;
  while (true) {
    ++attempts;
    ASSERT_LT(attempts, kills + 50) << "the sweep does not finish";
    const bool resume = fs::exists(b + "/config.json");
    const pid_t pid =
        spawn(resume ? std::string(SCALPEL_SMOOTH_MLP_BIN) + " --quiet --resume " + b : common + " --out " + b, log);
    code = wait_or_kill(pid, killed < kills ? delay_ms(rng) : 600000);
    if (code != -1) break;
    ++killed;
    for (const char* f : {"/checkpoint.ckpt", "/checkpoint.prev.ckpt"}) {
      if (!fs::exists(run_dir + f)) continue;
      try {
        StateDict::load(run_dir + f);
      } catch (const std::exception& e) {
        ++unreadable;
        ADD_FAILURE() << "after kill " << killed << ": " << e.what();
      }
    }
  }
  ASSERT_EQ(code, 0) << read_text(log);
  // The sweep may finish before every planned kill landed (each attempt makes some progress).
  EXPECT_GE(killed, std::min(kills, 3));
  EXPECT_EQ(unreadable, 0);
  RecordProperty("kills", killed);
  std::printf("kill test: %d kills survived, %d resumes, %d unreadable checkpoints\n", killed, attempts - 1,
              unreadable);

  // Final metrics and every metrics row equal the uninterrupted run's (timing aside).
  const nlohmann::json ra = summary(a + "/bloop/lambda_0.1")["final"], rb = summary(run_dir)["final"];
  for (const auto& [k, v] : ra.items()) {
    if (timing_column(k)) continue;
    EXPECT_EQ(rb.value(k, nlohmann::json()), v) << k;
  }
  const MetricsLog ma = MetricsLog::read_csv(a + "/bloop/lambda_0.1/metrics.csv");
  const MetricsLog mb = MetricsLog::read_csv(run_dir + "/metrics.csv");
  ASSERT_EQ(ma.rows(), mb.rows());
  for (size_t i = 0; i < ma.rows(); ++i) {
    for (const std::string& c : ma.columns()) {
      if (timing_column(c)) continue;
      const double x = ma.at(i, c), y = mb.at(i, c);
      if (std::isnan(x) && std::isnan(y)) continue;
      EXPECT_EQ(x, y) << "row " << i << " column " << c;
    }
  }
  // No temporary file survives the last (clean) resume.
  for (const auto& e : fs::recursive_directory_iterator(b)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }
}

TEST(KillTest, CorruptCheckpointFallsBackToThePreviousOneAndSummaryRecordsTheResume) {
  const std::string a = fresh_dir("fallback_ref"), b = fresh_dir("fallback_b");
  const std::string common = bloop_run(24, 8, 4);
  ASSERT_EQ(run(common + " --out " + a).code, 0);
  // Stopped at step 18 (checkpoints at 16 and, previous, 12); then the latest is damaged.
  ASSERT_EQ(run(common + " --out " + b + " --inject-nan 18:1").code, 1);
  const std::string dir = b + "/bloop/lambda_0.1";
  ASSERT_TRUE(fs::exists(dir + "/checkpoint.prev.ckpt"));
  std::string bytes = read_text(dir + "/checkpoint.ckpt");
  bytes[bytes.size() / 2] ^= 0x10;
  scalpel::write_file_atomic(dir + "/checkpoint.ckpt", bytes);
  drop_recorded_flag(b, "--inject-nan");
  const Result r = run(std::string(SCALPEL_SMOOTH_MLP_BIN) + " --resume " + b);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has_text(r, "resuming from the previous checkpoint"));
  EXPECT_TRUE(has_text(r, "checkpoint.ckpt"));
  const nlohmann::json sa = summary(a + "/bloop/lambda_0.1")["final"], sb = summary(dir)["final"];
  EXPECT_EQ(sb["resumed_from_step"], 12);
  for (const char* k : {"eval_main", "eval_aux", "train_main", "train_aux", "g0_norm"}) EXPECT_EQ(sb[k], sa[k]) << k;
}
