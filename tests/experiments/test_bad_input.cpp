// Hostile but realistic input at the command line and on disk (issues 15 and 19): every usage
// error exits 2 naming the flag, a sweep whose runs failed exits 1 with a count, an explicit
// --data-dir is never replaced by synthetic data, nothing earlier in --out is lost or mixed, and
// every output records the data set it used.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/runner/metrics.h"
#include "experiments/runner/runner.h"
#include "tests/experiments/run_util.h"

namespace fs = std::filesystem;
using namespace scalpel_test;
using scalpel::experiments::read_text;

namespace {

// The tiny smooth-MLP sweep of the probes, with `replace` overriding or adding flags
// (an empty value removes the flag; "-" marks a flag without a value).
std::string sm(const Flags& replace) {
  return command(SCALPEL_SMOOTH_MLP_BIN,
                 {{"--quiet", "-"},
                  {"--threads", "1"},
                  {"--train-size", "500"},
                  {"--test-size", "100"},
                  {"--eval-train-size", "100"},
                  {"--method", "mixed"},
                  {"--lambda", "0.1"},
                  {"--steps", "5"}},
                 replace);
}

std::string export_digits(const std::string& dir) {
  return std::string(SCALPEL_DATA_BIN) + " export synthetic-digits --train-size 64 --test-size 32 --out " + dir;
}

}  // namespace

TEST(BadInput, UsageErrorsExitWithCode2AndNameTheFlag) {
  const std::string file = fresh_dir("bi_file");
  std::ofstream(file) << "not a folder";
  struct Case {
    std::map<std::string, std::string> flags;
    std::string expect;
  };
  const std::vector<Case> cases{
      {{{"--lr", "nan"}}, "--lr"},                                            // 1
      {{{"--lr", "inf"}}, "--lr"},                                            // 1
      {{{"--lr", "1e400"}}, "--lr"},                                          // 1
      {{{"--optimizer", "foo"}}, "--optimizer"},                              // 2
      {{{"--schedule", "foo"}}, "--schedule"},                                // 2
      {{{"--clip-grad-norm", "-1"}}, "--clip-grad-norm"},                     // 2
      {{{"--train-size", "abc"}}, "--train-size"},                            // 2
      {{{"--batch-size", "0"}}, "--batch-size"},                              // 2
      {{{"--steps", "0"}}, "--steps"},                                        // 2
      {{{"--steps", "99999999999999999999"}}, "--steps"},                     // 4
      {{{"--lambda", ""}, {"--lambdas", "logspace:0:1:1e12"}}, "--lambdas"},  // 5
      {{{"--batch-size", "1000000"}}, "--batch-size"},                        // 6
      {{{"--train-size", "99999999999999"}}, "--train-size"},                 // 7
      {{{"--threads", "100000"}}, "--threads"},                               // 8
      {{{"--seed", "-1"}}, "--seed"},                                         // 8
      {{{"--train-size", "-5"}}, "--train-size"},                             // 8
      {{{"--out", "/proc/scalpel_x"}}, "--out"},                              // 9
      {{{"--out", file}}, "--out"},                                           // 9
      {{{"--momentum", "2"}}, "--momentum"},
      {{{"--eval-power-iterations", "1.5"}}, "--eval-power-iterations"},
  };
  for (const Case& c : cases) {
    std::map<std::string, std::string> flags = c.flags;
    if (!flags.count("--out")) flags["--out"] = fresh_dir("bi_usage");
    const Result r = run(sm(flags));
    EXPECT_EQ(r.code, 2) << sm(flags) << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << sm(flags) << "\n" << r.output;
  }
  // 10: an empty --out is refused, not replaced by ./runs/smooth-mlp.
  const Result empty = run(sm({}) + " --out ''");
  EXPECT_EQ(empty.code, 2) << empty.output;
  EXPECT_TRUE(has_text(empty, "--out"));
  // 7: the data tool refuses a size that cannot be built instead of dying of std::bad_alloc.
  const Result big = run(std::string(SCALPEL_DATA_BIN) + " export synthetic-digits --train-size 1099511627776 --out " +
                         fresh_dir("bi_big"));
  EXPECT_EQ(big.code, 2) << big.output;
  EXPECT_TRUE(has_text(big, "--train-size"));
  // A study that reads no data refuses --data-dir instead of ignoring it.
  const Result toy = run(std::string(SCALPEL_TOY_BIN) + " --steps 5 --data-dir /tmp --out " + fresh_dir("bi_toy"));
  EXPECT_EQ(toy.code, 2) << toy.output;
  EXPECT_TRUE(has_text(toy, "--data-dir"));
}

TEST(BadInput, ParseConfigChecksPresetAndExtraValues) {
  scalpel::experiments::Experiment e;
  e.name = "probe";
  e.options = {scalpel::experiments::int_option("width", "w", 1, 8), scalpel::experiments::bool_option("augment", "a")};
  e.presets["cpu"] = {{"steps", "10"}, {"width", "4"}};
  auto c = scalpel::experiments::parse_config(e, {"--width", "8", "--seed", "18446744073709551615"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->steps, 10);
  EXPECT_EQ(c->extra.at("width"), "8");
  EXPECT_EQ(c->seed, 18446744073709551615ull);
  EXPECT_THROW(scalpel::experiments::parse_config(e, {"--width", "9"}), scalpel::experiments::UsageError);
  EXPECT_THROW(scalpel::experiments::parse_config(e, {"--augment", "maybe"}), scalpel::experiments::UsageError);
  EXPECT_THROW(scalpel::experiments::parse_config(e, {"--seed", "18446744073709551616"}),
               scalpel::experiments::UsageError);
  e.presets["cpu"]["width"] = "0";  // a bad preset value is caught too, naming the key
  try {
    scalpel::experiments::parse_config(e, {});
    ADD_FAILURE() << "a preset width of 0 was accepted";
  } catch (const scalpel::experiments::UsageError& err) {
    EXPECT_NE(std::string(err.what()).find("--width"), std::string::npos) << err.what();
  }
}

TEST(BadInput, FailedRunsMakeTheSweepExitNonZeroWithACount) {
  const std::string out = fresh_dir("bi_failed");
  const Result r = run(sm({{"--lambda", ""}, {"--lambdas", "0.1,1"}, {"--out", out}}) + " --inject-nan 2:0");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has_text(r, "2 of 2 runs failed"));
  EXPECT_EQ(summary(out + "/mixed/lambda_1")["status"], "failed");
}

TEST(BadInput, AnEarlierSweepInOutIsNeverOverwrittenWithoutAsking) {
  const std::string out = fresh_dir("bi_out");
  ASSERT_EQ(run(sm({{"--method", "bloop"}, {"--lambda", ""}, {"--lambdas", "0.1,1"}, {"--out", out}})).code, 0);
  const std::string cfg = read_text(out + "/config.json"), first = read_text(out + "/bloop/lambda_1/summary.json");
  // 11: a second sweep into the same folder is refused and leaves every file as it was.
  const Result again = run(sm({{"--method", "bloop"}, {"--steps", "3"}, {"--out", out}}));
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_TRUE(has_text(again, "--resume"));
  EXPECT_EQ(read_text(out + "/config.json"), cfg);
  EXPECT_EQ(read_text(out + "/bloop/lambda_1/summary.json"), first);
  // A folder with unrelated files is not a sweep to overwrite.
  const std::string other = fresh_dir("bi_other");
  fs::create_directories(other);
  std::ofstream(other + "/notes.txt") << "mine";
  const Result into_other = run(sm({{"--out", other}}) + " --overwrite");
  EXPECT_EQ(into_other.code, 2) << into_other.output;
  EXPECT_EQ(read_text(other + "/notes.txt"), "mine");
  // Two sweeps at once: the lock (held here as a running sweep would) refuses the second.
  {
    const int fd = ::open((out + "/.lock").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    const Result locked = run(sm({}) + " --resume " + out);
    EXPECT_EQ(locked.code, 2) << locked.output;
    EXPECT_TRUE(has_text(locked, "another sweep"));
    ::close(fd);
  }
  // Stale temporaries of a killed writer are removed under the lock; --overwrite replaces the sweep whole.
  std::ofstream(out + "/bloop/lambda_1/checkpoint.ckpt.tmp.999999") << "half";
  const Result over = run(sm({{"--method", "bloop"}, {"--steps", "3"}, {"--out", out}}) + " --overwrite");
  EXPECT_EQ(over.code, 0) << over.output;
  EXPECT_FALSE(fs::exists(out + "/bloop/lambda_1")) << "the replaced sweep's runs are gone, not orphaned";
  EXPECT_EQ(summary(out + "/bloop/lambda_0.1")["final"]["step"], 3);
}

TEST(BadInput, ExplicitDataDirIsNeverReplacedBySyntheticData) {
  const std::string d = fresh_dir("bi_data");
  ASSERT_EQ(run(export_digits(d)).code, 0);
  ASSERT_TRUE(fs::exists(d + "/mnist/train-images-idx3-ubyte")) << "export writes the layout --data-dir reads";
  // Both layouts: D/ (here D/mnist given directly) and D/<dataset>/.
  for (const std::string& dir : {d, d + "/mnist"}) {
    const std::string out = fresh_dir("bi_data_ok");
    const Result r = run(sm({{"--out", out},
                             {"--data-dir", dir},
                             {"--batch-size", "8"},
                             {"--train-size", "64"},
                             {"--test-size", "32"},
                             {"--eval-train-size", "32"}}));
    ASSERT_EQ(r.code, 0) << r.output;
    const nlohmann::json s = summary(out + "/mixed/lambda_0.1");
    EXPECT_EQ(s["data"]["train"]["name"], "mnist");
    EXPECT_EQ(s["data"]["test"]["name"], "mnist");
    EXPECT_EQ(s["data"]["train"]["path"], d + "/mnist");
    EXPECT_EQ(s["data"]["train"]["size"], 64);
    EXPECT_EQ(s["data"]["train"]["crc32"].get<std::string>().size(), 8u);
    EXPECT_EQ(nlohmann::json::parse(read_text(out + "/config.json"))["data"], s["data"]);
  }
  // 12: train files without test files: refused, naming the missing file (never evaluated on synthetic data).
  fs::remove(d + "/mnist/t10k-images-idx3-ubyte");
  const std::string out = fresh_dir("bi_data_bad");
  const Result partial = run(sm({{"--out", out}, {"--data-dir", d}, {"--lambda", ""}, {"--lambdas", "0.1,1,10"}}));
  EXPECT_EQ(partial.code, 2) << partial.output;
  EXPECT_TRUE(has_text(partial, "t10k-images-idx3-ubyte"));
  // 15: checked once, before the first run: one message, no run folders.
  EXPECT_EQ(partial.output.find("MNIST not found"), partial.output.rfind("MNIST not found")) << partial.output;
  EXPECT_FALSE(fs::exists(out + "/mixed/lambda_0.1"));
  // 13: a folder that does not exist lists every path tried.
  const Result none = run(sm({{"--out", fresh_dir("bi_none")}, {"--data-dir", "/nonexistent_scalpel"}}));
  EXPECT_EQ(none.code, 2) << none.output;
  EXPECT_TRUE(has_text(none, "/nonexistent_scalpel (no such folder)"));
  EXPECT_TRUE(has_text(none, "/nonexistent_scalpel/mnist (no such folder)"));
}

TEST(BadInput, DefaultDataFolderHalfPresentIsAnErrorAndSyntheticDataIsRecorded) {
  // Runs from a fresh working folder, whose ./data is the default data folder.
  const std::string cwd = fresh_dir("bi_cwd");
  fs::create_directories(cwd + "/data/mnist");  // 13: an empty mnist/ folder
  const Result empty = run("cd " + cwd + " && " + sm({{"--out", "o1"}}));
  EXPECT_EQ(empty.code, 2) << empty.output;
  EXPECT_TRUE(has_text(empty, "data/mnist"));
  fs::remove_all(cwd + "/data");
  // No data folder at all: synthetic data, said even under --quiet, and recorded in the outputs.
  const Result synth = run("cd " + cwd + " && " + sm({{"--out", "o2"}}));
  ASSERT_EQ(synth.code, 0) << synth.output;
  EXPECT_TRUE(has_text(synth, "using synthetic-digits"));
  const nlohmann::json s = summary(cwd + "/o2/mixed/lambda_0.1");
  EXPECT_EQ(s["data"]["train"]["name"], "synthetic-digits");
  EXPECT_EQ(s["data"]["train"]["synthetic"], true);
  EXPECT_EQ(s["data"]["train"]["size"], 500);
}

TEST(BadInput, CifarWithoutOneBatchIsRefused) {
  const std::string d = fresh_dir("bi_cifar");
  ASSERT_EQ(
      run(std::string(SCALPEL_DATA_BIN) + " export synthetic-textures --train-size 40 --test-size 10 --out " + d).code,
      0);
  fs::remove(d + "/cifar-10-batches-bin/data_batch_4.bin");
  const Result r =
      run(std::string(SCALPEL_WEIGHT_NORM_BIN) + " --quiet --threads 1 --steps 2 --batch-size 8 --width 2 --data-dir " +
          d + " --out " + fresh_dir("bi_cifar_out"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has_text(r, "data_batch_4.bin"));
}

TEST(BadInput, JointLmTextFlagsAreCheckedOnceBeforeTheFirstRun) {
  const std::string out = fresh_dir("bi_text");
  const Result r = run(std::string(SCALPEL_JOINT_LM_BIN) +
                       " --quiet --steps 2 --lambdas 0.1,1 --main-text /etc/hostname --out " + out);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has_text(r, "--aux-text"));
  EXPECT_FALSE(fs::exists(out + "/bloop"));
  // --data-dir D reads D/generic.txt and D/specific.txt, as scalpel-data export synthetic-text writes them.
  const std::string d = fresh_dir("bi_text_data");
  ASSERT_EQ(run(std::string(SCALPEL_DATA_BIN) +
                " export synthetic-text --generic-bytes 20000 --specific-bytes 5000 --out " + d)
                .code,
            0);
  const std::string out2 = fresh_dir("bi_text_ok");
  const Result ok = run(std::string(SCALPEL_JOINT_LM_BIN) +
                        " --quiet --threads 1 --steps 2 --batch-size 2 --layers 1 --heads 1 --d-model 8 --d-ff 16"
                        " --seq-len 16 --eval-bytes 256 --eval-train-windows 2 --method bloop --lambda 1 --data-dir " +
                        d + " --out " + out2);
  ASSERT_EQ(ok.code, 0) << ok.output;
  const nlohmann::json s = summary(out2 + "/bloop/lambda_1");
  EXPECT_EQ(s["data"]["synthetic"], false);
  EXPECT_EQ(s["data"]["generic"]["path"], d + "/generic.txt");
  EXPECT_EQ(s["data"]["specific"]["size"], 5000);
}

TEST(BadInput, DivergedRunsAreMarkedAndKeptOffTheFront) {
  // 16: Adam at lr 1e6 ends at a cross-entropy of about 1e21: done, but diverged.
  const std::string out = fresh_dir("bi_diverged");
  const Result r =
      run(sm({{"--lr", "1e6"}, {"--optimizer", "adam"}, {"--lambda", ""}, {"--lambdas", "0.1,1"}, {"--out", out}}));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has_text(r, "2 of 2 runs diverged"));
  EXPECT_EQ(summary(out + "/mixed/lambda_0.1")["status"], "diverged");
  // front.csv: method,lambda,status,train_main,train_aux,eval_main,eval_aux,on_front_train,on_front_eval,
  // delta_m_pct (empty: n/a),seconds
  std::istringstream front(read_text(out + "/front.csv"));
  std::string line;
  std::getline(front, line);
  int rows = 0;
  while (std::getline(front, line)) {
    std::vector<std::string> cells;
    std::istringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) cells.push_back(c);
    ASSERT_EQ(cells.size(), 11u) << line;
    EXPECT_EQ(cells[2], "diverged") << line;
    EXPECT_EQ(cells[7], "0") << "a diverged run is on the train front: " << line;
    EXPECT_EQ(cells[8], "0") << "a diverged run is on the eval front: " << line;
    ++rows;
  }
  EXPECT_EQ(rows, 2);
  // The same sweep at a sane rate is not flagged.
  const std::string ok_dir = fresh_dir("bi_sane");
  const Result ok = run(sm({{"--lr", "0.001"}, {"--optimizer", "adam"}, {"--out", ok_dir}}));
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_EQ(ok.output.find("runs diverged"), std::string::npos) << ok.output;
  EXPECT_EQ(summary(ok_dir + "/mixed/lambda_0.1")["status"], "done");
}

// Issue 16: malformed pair files under --data-dir. Bad lines are warnings naming file and line and
// are left out (counted in the outputs); a missing corpus is a usage error naming it; a corpus
// without one good pair stops the sweep naming the file.
TEST(BadInput, TranslationPairFilesReportBadLinesByFileAndLine) {
  const std::string d = fresh_dir("bi_pairs");
  fs::create_directories(d);
  auto write_pairs = [&](const std::string& name, int n, const std::string& extra_lines) {
    std::ofstream f(d + "/" + name, std::ios::binary);
    for (int i = 0; i < n; ++i) f << "w" << i % 7 << " x" << i % 5 << "\ty" << i % 5 << " v" << i % 7 << "\n";
    f << extra_lines;
  };
  // generic.tsv lines 61-64: no tab, two tabs, empty target, invalid UTF-8 (a lone continuation byte).
  write_pairs("generic.tsv", 60, "no tab here\na\tb\tc\nsource only\t  \nbad \x80 byte\tok\n");
  write_pairs("specific.tsv", 20, "");
  write_pairs("eval.tsv", 10, "");
  const std::string tiny =
      std::string(SCALPEL_TRANSLATION_BIN) +
      " --quiet --threads 1 --steps 2 --batch-size 4 --encoder-layers 1 --decoder-layers 1 --heads 1 --d-model 8"
      " --d-ff 16 --eval-train-pairs 4 --bleu-pairs 2 --method mixed --lambda 1 --data-dir " +
      d;
  const std::string out = fresh_dir("bi_pairs_ok");
  const Result ok = run(tiny + " --heldout-pairs 2 --out " + out);
  ASSERT_EQ(ok.code, 0) << ok.output;
  for (const char* where : {"generic.tsv:61: no tab", "generic.tsv:62: more than one tab",
                            "generic.tsv:63: empty target side", "generic.tsv:64: invalid UTF-8"})
    EXPECT_TRUE(has_text(ok, where));
  EXPECT_TRUE(has_text(ok, "generic.tsv: 4 bad lines left out"));
  EXPECT_FALSE(has_text(ok, "specific.tsv:"));
  const nlohmann::json s = summary(out + "/mixed/lambda_1");
  EXPECT_EQ(s["data"]["synthetic"], false);
  EXPECT_EQ(s["data"]["files"]["generic"]["bad_lines"], 4);
  EXPECT_EQ(s["data"]["files"]["generic"]["lines"], 64);
  EXPECT_EQ(s["data"]["files"]["specific"]["bad_lines"], 0);
  // 60 good generic pairs: 5 % would hold out 3, --heldout-pairs caps it at 2.
  EXPECT_EQ(s["data"]["generic_heldout"]["pairs"], 2);
  EXPECT_EQ(s["data"]["generic_train"]["pairs"], 58);

  // Only bad lines: the file is named and no run starts.
  std::ofstream(d + "/eval.tsv", std::ios::trunc) << "one\ntwo\n";
  const std::string out2 = fresh_dir("bi_pairs_allbad");
  const Result all_bad = run(tiny + " --out " + out2);
  EXPECT_EQ(all_bad.code, 1) << all_bad.output;  // unreadable data, not a usage error
  EXPECT_TRUE(has_text(all_bad, d + "/eval.tsv: no usable sentence pair in 2 lines"));
  EXPECT_FALSE(fs::exists(out2 + "/mixed/lambda_1/summary.json"));

  // A missing corpus: usage error (exit 2) naming it.
  fs::remove(d + "/specific.tsv");
  const Result missing = run(tiny + " --out " + fresh_dir("bi_pairs_missing"));
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_TRUE(has_text(missing, "specific.tsv[.gz]"));
}
