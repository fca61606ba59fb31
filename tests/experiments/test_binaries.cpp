// End-to-end tests of the experiment binaries at tiny sizes: the promised outputs exist and hold
// finite numbers, the analytic results hold, resume is bit-exact, a NaN stops a run with a message
// naming the step and loss, and bad flags exit with code 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/runner/metrics.h"
#include "tests/experiments/run_util.h"

namespace fs = std::filesystem;
using scalpel::experiments::MetricsLog;
using scalpel::experiments::read_text;

using namespace scalpel_test;

namespace {

// Translation runs small enough for a test: a 1 + 1 layer d16 model on a small synthetic pair.
const std::string kTinyTranslation =
    " --batch-size 8 --encoder-layers 1 --decoder-layers 1 --heads 2 --d-model 16 --d-ff 32 --max-len 64"
    " --synthetic-generic-pairs 400 --synthetic-specific-pairs 80 --synthetic-eval-pairs 40 --eval-train-pairs 32"
    " --bleu-pairs 16 --threads 1";

// Every cell of every CSV row is a finite number.
void expect_all_finite_csv(const std::string& path) {
  const MetricsLog log = MetricsLog::read_csv(path);
  ASSERT_GT(log.rows(), 0u) << path;
  for (size_t i = 0; i < log.rows(); ++i) {
    for (const auto& c : log.columns()) {
      const double v = log.at(i, c);
      if (!std::isnan(v)) {
        EXPECT_TRUE(std::isfinite(v)) << path << " row " << i << " column " << c;
      }
    }
  }
}

}  // namespace

TEST(Toy, BloopReachesTheBilevelSolutionAndMixedItsOwn) {
  const std::string out = fresh_dir("toy");
  const Result r =
      run(std::string(SCALPEL_TOY_BIN) + " --methods mixed,bloop --lambdas 0.01,0.1,1 --quiet --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  for (double l : {0.01, 0.1, 1.0}) {
    std::ostringstream ld;
    ld << "lambda_" << l;
    const auto b = summary(out + "/bloop/" + ld.str());
    const auto m = summary(out + "/mixed/" + ld.str());
    EXPECT_LT(b["final"]["dist_bilevel"].get<double>(), 1e-6) << "bloop lambda=" << l;
    EXPECT_LT(m["final"]["dist_mixed"].get<double>(), 1e-6) << "mixed lambda=" << l;
    EXPECT_GT(m["final"]["dist_bilevel"].get<double>(), 0.5 * l / (1 + l)) << "mixed must not reach (0,0)";
  }
  EXPECT_TRUE(fs::exists(out + "/trajectories.png") || r.output.find("gnuplot") != std::string::npos);
}

TEST(Noise, NaiveProjectionDriftsToMixedAndTheEmaStaysWithBloop) {
  const std::string out = fresh_dir("noise");
  const Result r = run(std::string(SCALPEL_NOISE_BIN) + " --samples 2000 --sigma-count 9 --quiet --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const MetricsLog log = MetricsLog::read_csv(out + "/bloop/lambda_1/metrics.csv");
  const auto sigma = log.column("sigma"), to_b = log.column("naive_to_bloop"), to_m = log.column("naive_to_mixed");
  const auto ema_b = log.column("ema_to_bloop"), ema_m = log.column("ema_to_mixed");
  ASSERT_EQ(sigma.size(), 9u);
  EXPECT_LT(to_b.front(), to_m.front()) << "at sigma=0.3 the naive projection is still near Bloop";
  EXPECT_GT(to_b.back(), to_m.back()) << "at sigma=100 it is near Mixed";
  // Monotone trends (up to Monte-Carlo noise at the flat ends).
  EXPECT_GT(to_b.back(), 5 * to_b.front());
  EXPECT_LT(to_m.back(), 0.2 * to_m.front());
  // The curves cross between sigma = 0.3 and 3.
  double cross = NAN;
  for (size_t i = 1; i < sigma.size(); ++i) {
    if (to_b[i - 1] < to_m[i - 1] && to_b[i] >= to_m[i]) cross = sigma[i];
  }
  EXPECT_TRUE(cross > 0.3 && cross <= 3.0) << "crossing at sigma=" << cross;
  for (size_t i = 0; i < sigma.size(); ++i) {
    EXPECT_LT(ema_b[i], ema_m[i]) << "EMA variant closer to Mixed than to Bloop at sigma=" << sigma[i];
  }
  EXPECT_TRUE(fs::exists(out + "/noise.csv"));
}

TEST(SmoothMlp, ShortSweepWritesEveryPromisedFileWithFiniteNumbers) {
  const std::string out = fresh_dir("smlp");
  const Result r = run(std::string(SCALPEL_SMOOTH_MLP_BIN) +
                       " --methods mixed,bloop --lambdas 0.01,0.1 --steps 30 --eval-every 10 --batch-size 32"
                       " --train-size 400 --test-size 200 --eval-train-size 200 --threads 1 --out " +
                       out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("synthetic-digits"), std::string::npos) << "must say it uses the synthetic set";
  for (const char* f : {"config.json", "front.csv", "hypervolume.json", "report.md"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  }
  for (const char* f : {"pareto_train.png", "pareto_train.svg", "pareto_eval.png", "pareto_eval.svg", "curves.png"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f << "\n" << r.output;
  }
  const auto cfg = nlohmann::json::parse(read_text(out + "/config.json"));
  EXPECT_EQ(cfg["steps"], 30);
  EXPECT_EQ(cfg["methods"], (std::vector<std::string>{"mixed", "bloop"}));
  EXPECT_TRUE(cfg.contains("git_revision"));
  EXPECT_EQ(cfg["seed"], 0);
  for (const char* m : {"mixed", "bloop"}) {
    for (const char* l : {"lambda_0.01", "lambda_0.1"}) {
      const std::string dir = out + "/" + m + "/" + l;
      const auto s = summary(dir);
      EXPECT_EQ(s["status"], "done") << dir;
      for (const char* k : {"train_main", "train_aux", "eval_main", "eval_aux", "eval_acc", "cos_g0_g1"}) {
        ASSERT_TRUE(s["final"].contains(k)) << dir << " " << k;
        EXPECT_TRUE(std::isfinite(s["final"][k].get<double>())) << dir << " " << k;
      }
      expect_all_finite_csv(dir + "/metrics.csv");
    }
  }
  {  // front.csv: every numeric cell finite; delta_m_pct empty (no stl baselines in this sweep)
    std::istringstream in(read_text(out + "/front.csv"));
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line,
              "method,lambda,status,train_main,train_aux,eval_main,eval_aux,on_front_train,on_front_eval,delta_m_pct,"
              "seconds");
    int rows = 0;
    while (std::getline(in, line)) {
      ++rows;
      std::stringstream ss(line);
      std::string cell;
      for (int c = 0; std::getline(ss, cell, ','); ++c) {
        if (c == 0 || c == 2) continue;
        if (c == 9) {
          EXPECT_EQ(cell, "") << line;
          continue;
        }
        EXPECT_TRUE(std::isfinite(std::stod(cell))) << line;
      }
    }
    EXPECT_EQ(rows, 4);
  }
  const auto hv = nlohmann::json::parse(read_text(out + "/hypervolume.json"));
  for (const char* split : {"train", "eval"}) {
    for (const char* m : {"mixed", "bloop"}) EXPECT_TRUE(std::isfinite(hv[split][m].get<double>()));
  }
  // scalpel-report rebuilds the same outputs from the folders.
  fs::remove(out + "/front.csv");
  fs::remove(out + "/hypervolume.json");
  const Result rep = run(std::string(SCALPEL_REPORT_BIN) + " " + out);
  ASSERT_EQ(rep.code, 0) << rep.output;
  EXPECT_TRUE(fs::exists(out + "/front.csv"));
  EXPECT_EQ(nlohmann::json::parse(read_text(out + "/hypervolume.json")), hv);
}

TEST(SmoothMlp, ResumeIsBitExact) {
  const std::string a = fresh_dir("resume_a"), b = fresh_dir("resume_b");
  const std::string common =
      std::string(SCALPEL_SMOOTH_MLP_BIN) +
      " --method bloop --lambda 0.1 --steps 24 --eval-every 8 --checkpoint-every 8 --batch-size 32"
      " --train-size 400 --test-size 200 --eval-train-size 200 --threads 1 --quiet";
  ASSERT_EQ(run(common + " --out " + a).code, 0);
  // Interrupted run: stop it by injecting a NaN at step 20 (after the checkpoint at step 16) ...
  const Result broken = run(common + " --out " + b + " --inject-nan 20:1");
  ASSERT_EQ(broken.code, 1) << broken.output;
  ASSERT_NE(broken.output.find("1 of 1 runs failed"), std::string::npos) << broken.output;
  ASSERT_EQ(summary(b + "/bloop/lambda_0.1")["status"], "failed");
  // ... then resume it. The resumed sweep replays the command line in its config.json, which
  // holds the NaN hook: drop it there.
  drop_recorded_flag(b, "--inject-nan");
  const Result resumed = run(std::string(SCALPEL_SMOOTH_MLP_BIN) + " --resume " + b);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(summary(b + "/bloop/lambda_0.1")["final"]["resumed_from_step"], 16) << resumed.output;
  const MetricsLog la = MetricsLog::read_csv(a + "/bloop/lambda_0.1/metrics.csv");
  const MetricsLog lb = MetricsLog::read_csv(b + "/bloop/lambda_0.1/metrics.csv");
  ASSERT_EQ(la.rows(), lb.rows());
  for (size_t i = 0; i < la.rows(); ++i) {
    for (const char* c : {"step", "train_main", "train_aux", "eval_main", "eval_aux", "batch_main", "cos_g0_g1"}) {
      const double x = la.at(i, c), y = lb.at(i, c);
      EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y)))
          << "row " << i << " column " << c << ": " << x << " vs " << y;
    }
  }
}

TEST(SmoothMlp, InjectedNanStopsTheRunWithTheStepAndLoss) {
  const std::string out = fresh_dir("nan");
  const Result r = run(std::string(SCALPEL_SMOOTH_MLP_BIN) +
                       " --method mixed --lambda 0.1 --steps 10 --batch-size 16 --train-size 100 --test-size 50"
                       " --eval-train-size 50 --threads 1 --inject-nan 5:1 --out " +
                       out);
  EXPECT_EQ(r.code, 1) << "a failed run is recorded, the sweep goes on, and the exit code says so";
  const auto s = summary(out + "/mixed/lambda_0.1");
  EXPECT_EQ(s["status"], "failed");
  const std::string err = s["error"];
  EXPECT_NE(err.find("step 5"), std::string::npos) << err;
  EXPECT_NE(err.find("log_lipschitz"), std::string::npos) << err;
  EXPECT_NE(r.output.find("FAILED"), std::string::npos) << r.output;
}

// front.csv without its last column (wall seconds).
std::vector<std::string> front_rows(const std::string& dir) {
  std::istringstream in(read_text(dir + "/front.csv"));
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line.substr(0, line.rfind(',')));
  return rows;
}

TEST(Report, MergingTwoHalvesOfASweepEqualsRunningItWhole) {
  const std::string common = std::string(SCALPEL_SMOOTH_MLP_BIN) +
                             " --lambdas 0.01,0.1 --steps 12 --eval-every 6 --batch-size 32 --train-size 300"
                             " --test-size 100 --eval-train-size 100 --threads 1 --quiet";
  const std::string whole = fresh_dir("merge_whole"), a = fresh_dir("merge_a"), b = fresh_dir("merge_b");
  ASSERT_EQ(run(common + " --methods mixed,bloop --out " + whole).code, 0);
  ASSERT_EQ(run(common + " --methods mixed --out " + a).code, 0);
  ASSERT_EQ(run(common + " --methods bloop --out " + b).code, 0);
  const std::string merged = fresh_dir("merge_out");
  const std::string report = SCALPEL_REPORT_BIN;
  const Result r = run(report + " --merge " + merged + " " + a + " " + b);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(front_rows(merged), front_rows(whole));
  EXPECT_EQ(nlohmann::json::parse(read_text(merged + "/hypervolume.json")),
            nlohmann::json::parse(read_text(whole + "/hypervolume.json")));
  const auto cfg = nlohmann::json::parse(read_text(merged + "/config.json"));
  EXPECT_EQ(cfg["methods"], (std::vector<std::string>{"mixed", "bloop"}));
  EXPECT_EQ(cfg["merged_from"].size(), 2u);
  for (const char* f : {"pareto_eval.png", "curves.png", "report.md", "bloop/lambda_0.1/metrics.csv"}) {
    EXPECT_TRUE(fs::exists(merged + "/" + f)) << f;
  }
  // A merged folder is not a resumable sweep: --resume says which folders to resume instead.
  const Result resume = run(std::string(SCALPEL_SMOOTH_MLP_BIN) + " --resume " + merged);
  EXPECT_EQ(resume.code, 2);
  EXPECT_NE(resume.output.find("scalpel-report --merge"), std::string::npos) << resume.output;
  // Refusals (exit 2, nothing written): an existing output, a run present twice, another recipe.
  const Result again = run(report + " --merge " + merged + " " + a + " " + b);
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.output.find("refusing to overwrite"), std::string::npos) << again.output;
  const std::string dup = fresh_dir("merge_dup");
  const Result twice = run(report + " --merge " + dup + " " + a + " " + a);
  EXPECT_EQ(twice.code, 2);
  EXPECT_NE(twice.output.find("'mixed/lambda_0.01' of " + a + " is also in an earlier source"), std::string::npos)
      << twice.output;
  EXPECT_FALSE(fs::exists(dup));
  const std::string other = fresh_dir("merge_other");
  ASSERT_EQ(run(common + " --methods pcgrad --lr 0.01 --out " + other).code, 0);
  const Result recipe = run(report + " --merge " + fresh_dir("merge_bad") + " " + a + " " + other);
  EXPECT_EQ(recipe.code, 2);
  EXPECT_NE(recipe.output.find("'lr' differs"), std::string::npos) << recipe.output;
}

namespace {

struct UsageCase {
  std::string args, expect;
};

// Each `cmd + args` (plus a fresh --out) exits 2 and its output contains `expect`.
void expect_usage_errors(const std::string& cmd, const std::vector<UsageCase>& cases, const std::string& name) {
  for (const UsageCase& c : cases) {
    const Result r = run(cmd + " " + c.args + " --out " + fresh_dir(name));
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace

TEST(Flags, BadFlagsExitWithCode2AndNameTheFlag) {
  const std::string bin = SCALPEL_TOY_BIN;
  expect_usage_errors(bin,
                      {{"--no-such-flag", "--no-such-flag"},
                       {"--lr abc", "--lr"},
                       {"--methods mixed,foo", "unknown method 'foo'"},
                       {"--lambdas 0.1,x", "--lambdas"},
                       {"--lambdas logspace:1:2", "logspace:A:B:N"},
                       {"--rho banana", "--rho"},
                       {"--preset gpu", "--preset"},
                       {"--method bloop --methods mixed", "cannot be combined"},
                       {"--steps -5", "--steps"},
                       // The toy trains outside the shared step: no loss weighting.
                       {"--weighting uw", "takes no loss weighting"}},
                      "flags");
  const Result help = run(bin + " --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.output.find("Example:"), std::string::npos);
  EXPECT_EQ(run(std::string(SCALPEL_REPORT_BIN)).code, 2);
  // Weighting flags on a study that takes them: the name and every option are checked at parse.
  expect_usage_errors(std::string(SCALPEL_SMOOTH_MLP_BIN) + " --steps 2",
                      {{"--weighting bogus", "--weighting: unknown weighting 'bogus'"},
                       {"--weighting dwa --weighting-set tau=-1", "--weighting-set"},
                       {"--weighting dwa --weighting-set mu=1", "'mu'"},
                       {"--weighting uw --weighting-set init", "expected KEY=VALUE"},
                       {"--weighting imtl --method mixed", "--method imtl-g"}},
                      "wflags");
}

// A 20-step run of each deep-model study at tiny sizes writes every promised output, all finite.
TEST(Studies, TwentyStepRunsWriteEveryOutput) {
  struct Study {
    std::string bin, args;
    std::vector<std::string> finals;
    std::string vs_lambda;  // a metric-vs-λ plot the study adds, if any
  };
  const std::string tiny_vision =
      " --steps 20 --eval-every 10 --batch-size 8 --width 2 --train-size 64 --test-size 32"
      " --eval-train-size 32 --threads 1";
  const std::vector<Study> studies{
      {SCALPEL_WEIGHT_NORM_BIN, tiny_vision + " --weights-only true", {"train_acc", "eval_acc"}, ""},
      {SCALPEL_MULTITASK_BIN, tiny_vision, {"eval_acc_main", "eval_acc_aux", "train_acc_aux"}, ""},
      {SCALPEL_JOINT_LM_BIN,
       " --steps 20 --eval-every 10 --batch-size 4 --layers 1 --heads 2 --d-model 16 --d-ff 32 --seq-len 16"
       " --eval-bytes 512 --eval-train-windows 8 --synthetic-generic-bytes 20000 --synthetic-specific-bytes 4000 "
       "--threads 1",
       {"eval_main_bpb", "eval_aux_bpb"},
       ""},
      {SCALPEL_TRANSLATION_BIN,
       " --steps 20 --eval-every 10" + kTinyTranslation,
       {"eval_bleu", "eval_bleu_bp"},
       "bleu_vs_lambda"}};
  for (const Study& s : studies) {
    const std::string out = fresh_dir("study");
    const Result r = run(s.bin + s.args + " --methods mixed,bloop --lambdas 0.1,1 --out " + out);
    ASSERT_EQ(r.code, 0) << s.bin << "\n" << r.output;
    for (const char* f : {"config.json", "front.csv", "hypervolume.json", "report.md", "pareto_eval.png",
                          "pareto_train.svg", "curves.png"}) {
      EXPECT_TRUE(fs::exists(out + "/" + f)) << s.bin << " " << f;
    }
    if (!s.vs_lambda.empty()) {
      EXPECT_TRUE(fs::exists(out + "/" + s.vs_lambda + ".png")) << s.bin;
      const std::string csv = scalpel::experiments::read_text(out + "/plots/" + s.vs_lambda + ".csv");
      EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5) << "header and the four runs:\n" << csv;
    }
    for (const char* m : {"mixed", "bloop"}) {
      for (const char* l : {"lambda_0.1", "lambda_1"}) {
        const std::string dir = out + "/" + m + "/" + l;
        const auto sm = summary(dir);
        EXPECT_EQ(sm["status"], "done") << dir << "\n" << r.output;
        std::vector<std::string> keys{"train_main", "train_aux", "eval_main", "eval_aux", "cos_g0_g1"};
        keys.insert(keys.end(), s.finals.begin(), s.finals.end());
        for (const std::string& k : keys) {
          ASSERT_TRUE(sm["final"].contains(k)) << dir << " " << k;
          EXPECT_TRUE(std::isfinite(sm["final"][k].get<double>())) << dir << " " << k;
        }
        expect_all_finite_csv(dir + "/metrics.csv");
      }
    }
  }
}

namespace {

// Runs `bin` (with `flags`: one bloop λ=1 run of 12 steps, checkpoints every 4) twice, once whole
// and once killed by a NaN at step 10 and resumed from its step-8 checkpoint, and expects every
// logged column to match bit for bit. `whole`, when given, receives the uninterrupted run's folder.
void expect_resume_bit_exact(const std::string& name, const std::string& bin, const std::string& flags,
                             std::string* whole = nullptr) {
  const std::string a = fresh_dir(name + "_a"), b = fresh_dir(name + "_b");
  if (whole) *whole = a + "/bloop/lambda_1";
  const std::string common = bin + " --method bloop --lambda 1 --steps 12 --eval-every 4 --checkpoint-every 4" + flags;
  ASSERT_EQ(run(common + " --out " + a).code, 0);
  ASSERT_EQ(run(common + " --out " + b + " --inject-nan 10:0").code, 1);
  ASSERT_EQ(summary(b + "/bloop/lambda_1")["status"], "failed");
  drop_recorded_flag(b, "--inject-nan");
  const Result resumed = run(bin + " --resume " + b);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(summary(b + "/bloop/lambda_1")["final"]["resumed_from_step"], 8);
  const MetricsLog la = MetricsLog::read_csv(a + "/bloop/lambda_1/metrics.csv");
  const MetricsLog lb = MetricsLog::read_csv(b + "/bloop/lambda_1/metrics.csv");
  ASSERT_EQ(la.rows(), lb.rows());
  for (size_t i = 0; i < la.rows(); ++i) {
    for (const std::string& c : la.columns()) {
      if (c == "elapsed_s" || c == "step_ms") continue;  // wall-clock times
      const double x = la.at(i, c), y = lb.at(i, c);
      EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y)))
          << "row " << i << " column " << c << ": " << x << " vs " << y;
    }
  }
}

void expect_multitask_resume_bit_exact(const std::string& name, const std::string& extra_flags,
                                       std::string* whole = nullptr) {
  expect_resume_bit_exact(name, SCALPEL_MULTITASK_BIN,
                          " --batch-size 8 --width 2 --train-size 64 --test-size 32 --eval-train-size 32 --threads 1"
                          " --quiet" +
                              extra_flags,
                          whole);
}

}  // namespace

TEST(Studies, MultitaskResumeIsBitExact) { expect_multitask_resume_bit_exact("mt", ""); }

// The translation study's state is the model, the optimizer and both batch streams (epoch and
// position): a resumed run draws the same batches and logs the same numbers, BLEU included.
TEST(Studies, TranslationResumeIsBitExact) {
  expect_resume_bit_exact("tr", SCALPEL_TRANSLATION_BIN, kTinyTranslation + " --quiet --beam 2");
}

// Under a loss weighting the logged weights change from step to step, and a resumed run still
// matches: uw's learned log-variances are in the optimizer and the checkpoint, famo's logits and
// Adam moments, gradnorm's weights (measured at the trunk's last convolution) too.
TEST(Studies, MultitaskWeightingsLogTheirWeightsAndResumeBitExact) {
  for (const char* w : {"uw", "famo", "gradnorm"}) {
    SCOPED_TRACE(w);
    std::string dir;
    expect_multitask_resume_bit_exact(std::string("mtw_") + w, std::string(" --weighting ") + w, &dir);
    const MetricsLog log = MetricsLog::read_csv(dir + "/metrics.csv");
    ASSERT_GE(log.rows(), 3u);
    std::vector<double> w0;
    for (size_t i = 1; i < log.rows(); ++i) {  // row 0: the evaluation before the first step
      const double a = log.at(i, "loss_weight0"), b = log.at(i, "loss_weight1");
      EXPECT_TRUE(std::isfinite(a) && std::isfinite(b) && a > 0 && b > 0) << "row " << i << ": " << a << ", " << b;
      EXPECT_TRUE(std::isfinite(log.at(i, "weighted_loss"))) << "row " << i;
      if (std::string(w) == "famo") {
        EXPECT_NEAR(a + b, 1.0, 1e-6) << "row " << i;
      }
      w0.push_back(a);
    }
    EXPECT_NE(w0.front(), w0.back()) << "the weights never moved";
  }
}

// With MNIST and CIFAR-10 files under --data-dir (here: synthetic sets exported in the real
// formats), the studies read them instead of the built-in sets, and say so.
TEST(Studies, RealDataUnderDataDirIsUsed) {
  const std::string data = fresh_dir("realdata");
  ASSERT_EQ(run(std::string(SCALPEL_DATA_BIN) +
                " export synthetic-digits --train-size 64 --test-size 32 --gzip --out " + data)
                .code,
            0);
  ASSERT_EQ(
      run(std::string(SCALPEL_DATA_BIN) + " export synthetic-textures --train-size 64 --test-size 32 --out " + data)
          .code,
      0);
  const std::string tiny =
      " --method bloop --lambda 1 --steps 2 --eval-every 2 --batch-size 8 --threads 1 --data-dir " + data;
  const Result mt = run(std::string(SCALPEL_MULTITASK_BIN) + tiny + " --width 2 --out " + fresh_dir("rd_mt"));
  ASSERT_EQ(mt.code, 0) << mt.output;
  EXPECT_NE(mt.output.find("built from CIFAR-10 train from " + data + "/cifar-10-batches-bin"), std::string::npos)
      << mt.output;
  EXPECT_NE(mt.output.find("MNIST train from " + data + "/mnist"), std::string::npos) << mt.output;
  const Result wn = run(std::string(SCALPEL_WEIGHT_NORM_BIN) + tiny + " --width 2 --out " + fresh_dir("rd_wn"));
  ASSERT_EQ(wn.code, 0) << wn.output;
  EXPECT_EQ(wn.output.find("synthetic"), std::string::npos) << wn.output;
  const Result sm = run(std::string(SCALPEL_SMOOTH_MLP_BIN) + tiny + " --out " + fresh_dir("rd_sm"));
  ASSERT_EQ(sm.code, 0) << sm.output;
  EXPECT_EQ(sm.output.find("synthetic"), std::string::npos) << sm.output;
  // A corrupt file is not silently replaced by the synthetic set: the sweep stops before its
  // first run, naming the file.
  std::ofstream(data + "/mnist/train-images-idx3-ubyte.gz", std::ios::trunc) << "garbage";
  const std::string bad = fresh_dir("rd_bad");
  const Result broken = run(std::string(SCALPEL_SMOOTH_MLP_BIN) + tiny + " --out " + bad);
  EXPECT_EQ(broken.code, 1) << broken.output;
  EXPECT_FALSE(fs::exists(bad + "/bloop/lambda_1")) << broken.output;
  EXPECT_NE(broken.output.find("train-images-idx3-ubyte"), std::string::npos) << broken.output;
}

// The multi-task preset's rho 0.001 is Bloop's alone: the baselines keep rho 1 (the paper's
// setting). With the same seed, Dynamic Barrier (whose clip does not bind at lambda 0.1) would
// otherwise reproduce Bloop exactly.
TEST(Studies, MultitaskBloopRhoDoesNotLeakIntoBaselines) {
  const std::string out = fresh_dir("mt_rho");
  const Result r = run(std::string(SCALPEL_MULTITASK_BIN) +
                       " --methods bloop,dynamic-barrier --lambda 0.1 --steps 6 --eval-every 6 --batch-size 8 --width 2"
                       " --train-size 64 --test-size 32 --eval-train-size 32 --threads 1 --quiet --out " +
                       out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto b = summary(out + "/bloop/lambda_0.1")["final"], d = summary(out + "/dynamic-barrier/lambda_0.1")["final"];
  EXPECT_NE(b["eval_main"].get<double>(), d["eval_main"].get<double>());
  // Bloop's EMA lags the batch gradient (rho 0.001); DB projects on the batch gradient itself.
  EXPECT_LT(b["cos_e_g0"].get<double>(), 0.999);
  EXPECT_NEAR(d["cos_e_g0"].get<double>(), 1.0, 1e-6);
}

// --tasks 3 (the digit's parity as the third head), stl baselines (one run per task), a symmetric
// method run once with its --method-set option, a head policy, and the per-task and pairwise
// columns; the flags that cannot work are refused with exit 2 naming them.
TEST(Studies, MultitaskThreeTasksStlBaselinesAndMethodOptions) {
  const std::string out = fresh_dir("mt3");
  const std::string common = std::string(SCALPEL_MULTITASK_BIN) +
                             " --tasks 3 --steps 8 --eval-every 4 --batch-size 8 --width 2 --train-size 64"
                             " --test-size 32 --eval-train-size 32 --threads 1 --quiet";
  const Result r =
      run(common + " --methods mixed,cagrad,stl --lambdas 0.1,1 --method-set c=0.4 --head-policy own --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  for (int k = 0; k < 3; ++k) {
    const std::string dir = out + "/stl/task_" + std::to_string(k);
    const nlohmann::json s = summary(dir);
    EXPECT_EQ(s["task"], k);
    EXPECT_EQ(s["status"], "done");
    const MetricsLog log = MetricsLog::read_csv(dir + "/metrics.csv");
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(log.last("weight" + std::to_string(i)), i == k ? 1.0 : 0.0) << "stl task " << k;
    }
  }
  EXPECT_TRUE(fs::exists(out + "/cagrad/lambda_1/summary.json"));
  EXPECT_FALSE(fs::exists(out + "/cagrad/lambda_0.1")) << "a symmetric method runs once";
  EXPECT_TRUE(fs::exists(out + "/mixed/lambda_0.1/summary.json"));
  const nlohmann::json cfg = nlohmann::json::parse(read_text(out + "/config.json"));
  EXPECT_EQ(cfg["method_options"]["c"], "0.4");
  ASSERT_EQ(cfg["task_metrics"].size(), 3u);
  EXPECT_EQ(cfg["task_metrics"][2]["column"], "eval_acc_task2");
  const MetricsLog log = MetricsLog::read_csv(out + "/cagrad/lambda_1/metrics.csv");
  for (const char* c : {"eval_task2", "eval_acc_task2", "cos_g1_g2", "gms_g0_g2", "gram_rcond", "weight2"}) {
    EXPECT_TRUE(std::isfinite(log.last(c))) << c;
  }
  // The report: Δm% of cagrad from the three stl baselines' accuracies, and the capped hypervolume's
  // cap from stl task 0 (this grid has no lambda 0 run).
  double dm = 0;
  const auto cf = summary(out + "/cagrad/lambda_1")["final"];
  for (int k = 0; k < 3; ++k) {
    const std::string col = "eval_acc_task" + std::to_string(k);
    const double base = summary(out + "/stl/task_" + std::to_string(k))["final"][col].get<double>();
    dm -= (cf[col].get<double>() - base) / base;
  }
  const nlohmann::json hv = nlohmann::json::parse(read_text(out + "/hypervolume.json"));
  EXPECT_NEAR(hv["delta_m_pct_best"]["cagrad"].get<double>(), 100 * dm / 3, 1e-9);
  EXPECT_EQ(hv["main_cap"]["source"], "stl task 0");
  EXPECT_EQ(hv["main_cap"]["eval"], summary(out + "/stl/task_0")["final"]["eval_main"]);
  // Parity is a two-class task: its accuracy is a fraction of 32 test images.
  const double parity = log.last("eval_acc_task2") * 32;
  EXPECT_NEAR(parity, std::round(parity), 1e-9);
  expect_usage_errors(common,
                      {{"--methods cagrad --method-set c=-1", "cagrad: option 'c'"},
                       {"--methods mgda --method-set c=0.4", "no method of the sweep takes option 'c'"},
                       {"--methods cagrad --method-set rho=0.1", "has its own flag (--rho)"},
                       {"--methods mgda --head-policy shared", "--head-policy"},
                       {"--methods mgda --tasks 4", "--tasks"},
                       {"--methods mgda --hv-main-cap low", "--hv-main-cap"}},
                      "mt3bad");
  const Result no_tasks =
      run(std::string(SCALPEL_SMOOTH_MLP_BIN) + " --method stl --steps 2 --out " + fresh_dir("stl"));
  EXPECT_EQ(no_tasks.code, 2) << no_tasks.output;
  EXPECT_NE(no_tasks.output.find("cannot run single-task baselines"), std::string::npos) << no_tasks.output;
}

// --rotograd: the RotoGrad wrapper changes the training (rotations and scales logged per task), is
// checkpointed with the model (an interrupted run resumes bit-exactly) and checks its options.
TEST(Studies, MultitaskRotoGradResumesBitExactly) {
  const std::string common = std::string(SCALPEL_MULTITASK_BIN) +
                             " --tasks 3 --steps 12 --eval-every 4 --checkpoint-every 4 --batch-size 8 --width 2"
                             " --train-size 64 --test-size 32 --eval-train-size 32 --threads 1 --quiet"
                             " --methods mixed --lambdas 1";
  const std::string a = fresh_dir("roto_a"), b = fresh_dir("roto_b"), plain = fresh_dir("roto_plain");
  ASSERT_EQ(run(common + " --rotograd true --out " + a).code, 0);
  ASSERT_EQ(run(common + " --out " + plain).code, 0);
  const Result broken = run(common + " --rotograd true --out " + b + " --inject-nan 10:1");
  ASSERT_EQ(broken.code, 1) << broken.output;
  drop_recorded_flag(b, "--inject-nan");
  const Result resumed = run(std::string(SCALPEL_MULTITASK_BIN) + " --resume " + b);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(summary(b + "/mixed/lambda_1")["final"]["resumed_from_step"], 8) << resumed.output;
  const MetricsLog la = MetricsLog::read_csv(a + "/mixed/lambda_1/metrics.csv");
  const MetricsLog lb = MetricsLog::read_csv(b + "/mixed/lambda_1/metrics.csv");
  ASSERT_EQ(la.rows(), lb.rows());
  for (size_t i = 0; i < la.rows(); ++i) {
    for (const char* c : {"eval_main", "eval_task2", "rotograd_scale0", "rotograd_scale2", "rotograd_align1"}) {
      const double x = la.at(i, c), y = lb.at(i, c);
      EXPECT_TRUE(x == y || (std::isnan(x) && std::isnan(y)))
          << "row " << i << " column " << c << ": " << x << " vs " << y;
    }
  }
  // The scales moved away from 1 and the run differs from the one without RotoGrad.
  EXPECT_NE(la.last("rotograd_scale2"), 1.0);
  EXPECT_TRUE(std::isfinite(la.last("rotograd_align0")));
  const MetricsLog lp = MetricsLog::read_csv(plain + "/mixed/lambda_1/metrics.csv");
  EXPECT_NE(la.last("eval_main"), lp.last("eval_main"));
  // By name: the wrapper with the plain sum, run once like the other symmetric methods.
  const std::string named = fresh_dir("roto_named");
  ASSERT_EQ(run(std::string(SCALPEL_MULTITASK_BIN) +
                " --tasks 3 --steps 8 --eval-every 4 --batch-size 8 --width 2 --train-size 64 --test-size 32"
                " --eval-train-size 32 --threads 1 --quiet --methods rotograd,mixed --lambdas 0.1,1 --out " +
                named)
                .code,
            0);
  EXPECT_FALSE(fs::exists(named + "/rotograd/lambda_0.1")) << "rotograd runs once";
  const MetricsLog ln = MetricsLog::read_csv(named + "/rotograd/lambda_1/metrics.csv");
  EXPECT_NE(ln.last("rotograd_scale1"), 1.0);
  EXPECT_EQ(ln.last("weight0"), 1.0);  // the sum: every task weight 1
  EXPECT_EQ(ln.last("weight2"), 1.0);
  const MetricsLog lm = MetricsLog::read_csv(named + "/mixed/lambda_1/metrics.csv");
  const auto& cols = lm.columns();
  EXPECT_EQ(std::find(cols.begin(), cols.end(), "rotograd_scale0"), cols.end())
      << "the other methods of the sweep run without the wrapper";
  expect_usage_errors(
      common, {{"--rotograd maybe", "--rotograd"}, {"--rotograd true --rotograd-lr 0", "--rotograd-lr"}}, "rotobad");
}
