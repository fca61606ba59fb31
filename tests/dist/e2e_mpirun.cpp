// The study binaries under mpirun (test_dist_e2e, built with MPI only): scalpel-smooth-mlp on two
// ranks equals one process with the same global batch, for mixed and bloop, in every logged
// metric and surgery diagnostic; two runs at the same seed and N are bit-identical; only rank 0
// writes and speaks; a killed rank ends the whole job (no hang), its last checkpoint is intact
// and the sweep resumes from it.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>
#include <algorithm>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "../experiments/run_util.h"
#include "core/state_dict.h"
#include "experiments/runner/metrics.h"

using namespace scalpel_test;
namespace fs = std::filesystem;
using scalpel::experiments::MetricsLog;

namespace {

// Root (CI runs as root) and containers: OpenMPI refuses root without the first two, and its
// shared-memory single-copy path needs ptrace rights a container may not grant. In the sanitizer
// build, LeakSanitizer is off for the processes mpirun starts: OpenMPI's plugins leave allocations
// behind at exit that cannot be suppressed by name (their modules are unloaded by then); ASan's
// memory-error checks stay on, and every test outside mpirun keeps leak checking. One machine:
// loopback only, so a container's other interfaces (unroutable bridges) cannot stall the start.
const std::string kMpiEnv =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
    "OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo "
    "OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0 ";
const std::string kMpiexec = std::string(SCALPEL_MPIEXEC) + " --oversubscribe --bind-to none";
const std::string kMpirun = kMpiEnv + kMpiexec;

// The smooth-MLP flags of these tests, with `replace` overriding (or adding) some.
Flags smooth_flags(const std::string& out, const Flags& replace = {}) {
  Flags f = {
      {"--methods", "mixed,bloop"}, {"--lambdas", "0.1"},     {"--steps", "30"},      {"--eval-every", "10"},
      {"--batch-size", "64"},       {"--train-size", "1024"}, {"--test-size", "256"}, {"--eval-train-size", "256"},
      {"--threads", "1"},           {"--seed", "3"},          {"--quiet", "-"},       {"--out", out}};
  for (const auto& [k, v] : replace) f[k] = v;
  return f;
}

// Every column but the wall-clock ones (comm_ms exists only under mpirun).
bool timing(const std::string& col) { return col == "step_ms" || col == "elapsed_s" || col == "comm_ms"; }

// Compares two metrics.csv files: values within rel·|a| + abs (0, 0: bit for bit).
// `at_least` values must have been compared (the columns a study logs, times its rows).
void expect_same_metrics(const std::string& a_path, const std::string& b_path, double rel, double abs,
                         int at_least = 40) {
  const MetricsLog a = MetricsLog::read_csv(a_path), b = MetricsLog::read_csv(b_path);
  ASSERT_EQ(a.rows(), b.rows()) << a_path << " vs " << b_path;
  for (const std::string& col : a.columns()) {
    ASSERT_NE(std::find(b.columns().begin(), b.columns().end(), col), b.columns().end()) << col << " not in " << b_path;
  }
  int compared = 0;
  for (size_t i = 0; i < a.rows(); ++i) {
    for (const std::string& col : a.columns()) {
      if (timing(col)) continue;
      const double x = a.at(i, col), y = b.at(i, col);
      if (std::isnan(x)) {
        EXPECT_TRUE(std::isnan(y)) << col << " row " << i;
        continue;
      }
      EXPECT_LE(std::fabs(x - y), rel * std::fabs(x) + abs) << col << " row " << i << ": " << x << " vs " << y;
      ++compared;
    }
  }
  EXPECT_GE(compared, at_least);  // losses, evaluations and the surgery diagnostics
}

// The highest pid whose command line starts with `program` and mentions `text` (from /proc: no
// procps needed), or -1.
pid_t newest_process(const std::string& program, const std::string& text) {
  pid_t best = -1;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.rfind(program, 0) != 0 || cmd.find(text) == std::string::npos) continue;
    best = std::max<pid_t>(best, static_cast<pid_t>(std::stol(name)));
  }
  return best;
}

}  // namespace

TEST(DistE2E, SmoothMlpOnTwoRanksEqualsOneProcess) {
  const std::string one = fresh_dir("dist_one"), two = fresh_dir("dist_two");
  const Result r1 = run(command(SCALPEL_SMOOTH_MLP_BIN, smooth_flags(one)));
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = run(kMpirun + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, smooth_flags(two)));
  ASSERT_EQ(r2.code, 0) << r2.output;
  for (const std::string m : {"mixed", "bloop"}) {
    const std::string run_dir = "/" + m + "/lambda_0.1";
    EXPECT_EQ(summary(two + run_dir)["status"], "done") << m;
    // Float tolerance: the gradient mean over ranks rounds differently from one batch mean;
    // measured ≤ 4e-6 relative after 30 steps.
    expect_same_metrics(one + run_dir + "/metrics.csv", two + run_dir + "/metrics.csv", 1e-4, 1e-6);
  }
  const MetricsLog m2 = MetricsLog::read_csv(two + "/bloop/lambda_0.1/metrics.csv");
  EXPECT_GT(m2.last("comm_ms"), 0.0);  // the time spent in the collectives is logged
  nlohmann::json cfg = nlohmann::json::parse(scalpel::experiments::read_text(two + "/config.json"));
  EXPECT_EQ(cfg["world_size"], 2);
  EXPECT_EQ(cfg["batch_size"], 64);  // the global batch
  EXPECT_TRUE(fs::exists(two + "/front.csv"));
  // Rank 0 alone prints the report: one summary, not two.
  const std::string marker = "Runs: 2 done";
  const size_t first = r2.output.find(marker);
  ASSERT_NE(first, std::string::npos) << r2.output;
  EXPECT_EQ(r2.output.find(marker, first + 1), std::string::npos) << r2.output;
}

TEST(DistE2E, TwoRanksSameSeedAreBitIdentical) {
  const std::string a = fresh_dir("dist_rep_a"), b = fresh_dir("dist_rep_b");
  Flags f = smooth_flags(a);
  f["--methods"] = "bloop";
  const Result ra = run(kMpirun + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f));
  ASSERT_EQ(ra.code, 0) << ra.output;
  f["--out"] = b;
  const Result rb = run(kMpirun + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f));
  ASSERT_EQ(rb.code, 0) << rb.output;
  expect_same_metrics(a + "/bloop/lambda_0.1/metrics.csv", b + "/bloop/lambda_0.1/metrics.csv", 0.0, 0.0);
}

TEST(DistE2E, PerRankBatchMultipliesByTheRanks) {
  const std::string out = fresh_dir("dist_per_rank");
  Flags f =
      smooth_flags(out, {{"--methods", "mixed"}, {"--batch-size", "32"}, {"--batch-per-rank", "-"}, {"--steps", "2"}});
  const Result r = run(kMpirun + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f));
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json cfg = nlohmann::json::parse(scalpel::experiments::read_text(out + "/config.json"));
  EXPECT_EQ(cfg["batch_size"], 64);
  // A global batch smaller than the ranks is refused at parse, naming the flag.
  f["--batch-size"] = "1";
  f.erase("--batch-per-rank");
  f["--out"] = fresh_dir("dist_tiny_batch");
  const Result bad = run(kMpirun + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f));
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(has_text(bad, "--batch-size: the global batch of 1 cannot be split over 2 ranks"));
}

TEST(DistE2E, AKilledRankEndsTheJobAndTheCheckpointResumes) {
  const std::string out = fresh_dir("dist_kill");
  const Flags f = smooth_flags(
      out, {{"--methods", "bloop"}, {"--steps", "4000"}, {"--eval-every", "2000"}, {"--checkpoint-every", "10"}});
  const std::string log = out + ".log", rc = out + ".rc";
  fs::remove(rc);
  // timeout: a hang would end as exit code 124, which the test rejects.
  const std::string job = kMpiEnv + "timeout 120 " + kMpiexec + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f);
  ASSERT_EQ(std::system(("(OMP_WAIT_POLICY=passive " + job + " >" + log + " 2>&1; echo $? >" + rc + ") &").c_str()), 0);
  const std::string ckpt = out + "/bloop/lambda_0.1/checkpoint.ckpt";
  for (int i = 0; i < 600 && !fs::exists(ckpt); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(ckpt)) << "no checkpoint after 60 s";
  // The newest process running this study binary on this folder is a rank (mpirun and the
  // shells start before the ranks; their command lines hold other program names first).
  const pid_t victim = newest_process(std::string(SCALPEL_SMOOTH_MLP_BIN), out);
  ASSERT_GT(victim, 0) << "no rank process found";
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  for (int i = 0; i < 1200 && !fs::exists(rc); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(rc)) << "the job did not end";
  std::ifstream in(rc);
  int code = -1;
  in >> code;
  const std::string output = scalpel::experiments::read_text(log);
  EXPECT_NE(code, 0) << output;
  EXPECT_NE(code, 124) << "the job hung until timeout killed it:\n" << output;
  EXPECT_NE(output.find("exited on signal 9"), std::string::npos) << output;
  // Checkpoints are written atomically by rank 0: the last one is whole.
  const int64_t saved = scalpel::StateDict::load(ckpt).get_int(scalpel::StateDict::kStepKey);
  EXPECT_GT(saved, 0);
  EXPECT_EQ(saved % 10, 0);
  // Resume at the same N, with a short run: the recorded --steps is replaced.
  drop_recorded_flag(out, "--steps");
  nlohmann::json cfg = nlohmann::json::parse(scalpel::experiments::read_text(out + "/config.json"));
  std::vector<std::string> argv = cfg["argv"];
  argv.push_back("--steps");
  argv.push_back(std::to_string(saved + 5));
  cfg["argv"] = argv;
  scalpel::write_file_atomic(out + "/config.json", cfg.dump(2));
  const Result again = run(kMpirun + " -np 2 " + std::string(SCALPEL_SMOOTH_MLP_BIN) + " --resume " + out);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(summary(out + "/bloop/lambda_0.1")["status"], "done");
  EXPECT_EQ(summary(out + "/bloop/lambda_0.1")["final"]["resumed_from_step"], static_cast<double>(saved));
}

TEST(DistE2E, TwoHeadResNetWithSyncBatchNormOnTwoRanksEqualsOneProcess) {
  const std::string one = fresh_dir("dist_mt_one"), two = fresh_dir("dist_mt_two");
  const Flags f = {{"--methods", "mixed,bloop"},
                   {"--lambdas", "0.5"},
                   {"--steps", "2"},
                   {"--eval-every", "1"},
                   {"--batch-size", "16"},
                   {"--train-size", "128"},
                   {"--test-size", "64"},
                   {"--eval-train-size", "64"},
                   {"--width", "8"},
                   {"--threads", "1"},
                   {"--quiet", "-"},
                   {"--sync-batch-norm", "true"}};
  Flags f1 = f, f2 = f;
  f1["--out"] = one;
  f2["--out"] = two;
  const Result r1 = run(command(SCALPEL_MULTITASK_BIN, f1));
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = run(kMpirun + " -np 2 " + command(SCALPEL_MULTITASK_BIN, f2));
  ASSERT_EQ(r2.code, 0) << r2.output;
  for (const std::string m : {"mixed", "bloop"}) {
    // A deeper network: rounding differences grow through 18 layers and, in this small net at a high
    // learning rate, quickly from step to step: after 4 steps the GEMM kernel alone (the own AVX-512
    // one against OpenBLAS, which agree to 1e-6 per product) moved the metrics by up to 1%. So two
    // steps are compared, each evaluated: two ranks stay far inside the tolerance, while per-rank
    // statistics instead (no --sync-batch-norm) miss it 50-70x (a cosine of 0.059 against -0.015).
    expect_same_metrics(one + "/" + m + "/lambda_0.5/metrics.csv", two + "/" + m + "/lambda_0.5/metrics.csv", 2e-3,
                        1e-3);
  }
}

TEST(DistE2E, SweepParallelSpreadsTheRunsAndEachEqualsOneProcessBitForBit) {
  const std::string one = fresh_dir("dist_sp_one"), two = fresh_dir("dist_sp_two");
  Flags f = smooth_flags(one);
  f["--lambdas"] = "0.01,0.1";  // 4 runs over 2 ranks
  const Result r1 = run(command(SCALPEL_SMOOTH_MLP_BIN, f));
  ASSERT_EQ(r1.code, 0) << r1.output;
  f["--out"] = two;
  f["--sweep-parallel"] = "-";
  f.erase("--quiet");
  const Result r2 = run(kMpirun + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f));
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_TRUE(has_text(r2, "runs spread over 2 MPI ranks"));
  EXPECT_TRUE(has_text(r2, "Runs: 4 done"));
  for (const std::string m : {"mixed", "bloop"}) {
    for (const std::string l : {"0.01", "0.1"}) {
      const std::string run_dir = "/" + m + "/lambda_" + l;
      // Each run alone on its rank, same seed and threads: the very same numbers.
      expect_same_metrics(one + run_dir + "/metrics.csv", two + run_dir + "/metrics.csv", 0.0, 0.0);
    }
  }
  nlohmann::json cfg = nlohmann::json::parse(scalpel::experiments::read_text(two + "/config.json"));
  EXPECT_EQ(cfg["sweep_parallel"], true);
  EXPECT_EQ(cfg["world_size"], 1);
  EXPECT_TRUE(fs::exists(two + "/report.md"));
}

TEST(DistE2E, TranslationOnTwoRanksEqualsOneProcess) {
  const std::string one = fresh_dir("dist_tr_one"), two = fresh_dir("dist_tr_two");
  const std::string flags =
      " --batch-size 8 --encoder-layers 1 --decoder-layers 1 --heads 2 --d-model 16 --d-ff 32 --max-len 64"
      " --synthetic-generic-pairs 400 --synthetic-specific-pairs 80 --synthetic-eval-pairs 40 --eval-train-pairs 32"
      " --bleu-pairs 16 --threads 1 --methods mixed,bloop --lambdas 0.1 --steps 6 --eval-every 3 --quiet --out ";
  const Result r1 = run(std::string(SCALPEL_TRANSLATION_BIN) + flags + one);
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = run(kMpirun + " -np 2 " + SCALPEL_TRANSLATION_BIN + flags + two);
  ASSERT_EQ(r2.code, 0) << r2.output;
  for (const std::string m : {"mixed", "bloop"}) {
    // Token-weighted shard losses (unequal token counts per rank); measured ≤ 6e-8 relative.
    expect_same_metrics(one + "/" + m + "/lambda_0.1/metrics.csv", two + "/" + m + "/lambda_0.1/metrics.csv", 1e-5,
                        1e-7);
  }
}

// Every file of a sweep folder, relative to it.
std::vector<std::string> files_of(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// The study binaries not covered above, tiny: under mpirun -np 2 each exits 0 and writes the same
// files with the same metrics as one process (the analytic ones bit for bit: their runs are spread).
TEST(DistE2E, EveryOtherStudyRunsUnderTwoRanksWithTheOutputsOfOneProcess) {
  struct Case {
    std::string name, bin, flags;
    double rel, abs;
  };
  const std::vector<Case> cases = {
      {"toy", SCALPEL_TOY_BIN, "--steps 50", 0.0, 0.0},
      {"mtl_toy", SCALPEL_MTL_TOY_BIN, "--steps 30", 0.0, 0.0},
      {"noise", SCALPEL_NOISE_BIN, "--steps 30", 0.0, 0.0},
      {"quadratics", SCALPEL_QUADRATICS_BIN, "--steps 30", 0.0, 0.0},
      {"weight_norm", SCALPEL_WEIGHT_NORM_BIN,
       "--steps 3 --eval-every 3 --batch-size 8 --train-size 64 --test-size 32 --eval-train-size 32 --width 4 "
       "--sync-batch-norm true --methods bloop --lambdas 0.1",
       2e-3, 1e-3},  // as the two-head ResNet above: 18 layers amplify rounding (2.4e-4 in the -O1 build)
      {"joint_lm", SCALPEL_JOINT_LM_BIN,
       "--steps 3 --eval-every 3 --batch-size 4 --layers 1 --d-model 32 --heads 2 --seq-len 32 --methods bloop "
       "--lambdas 0.1",
       1e-5, 1e-7},
  };
  for (const Case& c : cases) {
    const std::string one = fresh_dir("dist_all_one_" + c.name), two = fresh_dir("dist_all_two_" + c.name);
    const std::string flags = " " + c.flags + " --threads 1 --quiet --out ";
    const Result r1 = run(c.bin + flags + one);
    ASSERT_EQ(r1.code, 0) << c.name << ":\n" << r1.output;
    const Result r2 = run(kMpirun + " -np 2 " + c.bin + flags + two);
    ASSERT_EQ(r2.code, 0) << c.name << ":\n" << r2.output;
    const std::vector<std::string> files = files_of(one);
    EXPECT_EQ(files, files_of(two)) << c.name;
    int metrics = 0;
    for (const std::string& f : files) {
      if (fs::path(f).filename() != "metrics.csv") continue;
      expect_same_metrics(one + "/" + f, two + "/" + f, c.rel, c.abs, 5);
      ++metrics;
    }
    EXPECT_GT(metrics, 0) << c.name;
  }
}

TEST(DistE2E, AStudyWithoutDataSpreadsItsRunsOverTheRanks) {
  const std::string one = fresh_dir("dist_toy_one"), two = fresh_dir("dist_toy_two");
  const std::string flags = " --methods mixed,bloop --lambdas 0.1,1 --steps 50 --threads 1 --out ";
  const Result r1 = run(std::string(SCALPEL_TOY_BIN) + " --quiet" + flags + one);
  ASSERT_EQ(r1.code, 0) << r1.output;
  const Result r2 = run(kMpirun + " -np 2 " + SCALPEL_TOY_BIN + flags + two);
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_TRUE(has_text(r2, "runs spread over 2 MPI ranks"));
  for (const std::string m : {"mixed", "bloop"}) {
    for (const std::string l : {"0.1", "1"}) {
      const std::string d = "/" + m + "/lambda_" + l + "/metrics.csv";
      expect_same_metrics(one + d, two + d, 0.0, 0.0, 15);
    }
  }
}

TEST(DistE2E, AFailureOnOneRankAloneEndsTheJobNamingTheRank) {
  const std::string out = fresh_dir("dist_lone_error");
  // rank 1 throws at step 5; rank 0 waits in the reduction
  const Flags f = smooth_flags(out, {{"--methods", "bloop"}, {"--steps", "200"}, {"--inject-rank-error", "1:5"}});
  // timeout: a hang would end as exit code 124, which the test rejects.
  const Result r = run(kMpiEnv + "timeout 120 " + kMpiexec + " -np 2 " + command(SCALPEL_SMOOTH_MLP_BIN, f));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.code, 124) << "the job hung:\n" << r.output;
  EXPECT_TRUE(has_text(r, "FAILED on rank 1 of 2: step 5: injected failure"));
  EXPECT_TRUE(has_text(r, "ending every rank of the job (MPI_Abort)"));
}
