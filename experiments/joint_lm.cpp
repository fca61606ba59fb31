// scalpel-joint-lm: paper §5.4 — byte-level language-model pre-training on a large generic corpus
// (main loss) with a small specific corpus (auxiliary loss), one batch of each per step. With
// `--rhos 0.001,0.01,0.1,0.9 --lambda 0.2` it is the EMA ablation of §5.5.
//
// Data: --main-text and --aux-text (files or folders) when both are given, else the built-in
// synthetic-text corpora. Each corpus is split by offset into training and held-out parts
// (--heldout-fraction). Training batches are random windows of T+1 bytes; evaluation covers a
// held-out prefix of each corpus (--eval-bytes) with sequential windows, scoring each byte once.
// Each step runs one forward/backward per corpus batch — the same work as Mixed.
// Evaluation: per corpus, cross-entropy in nats (train_* on a fixed set of training windows,
// eval_* on the held-out part) and bits per byte (eval_main_bpb, eval_aux_bpb).

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/checksum.h"
#include "core/dist.h"
#include "data/loader.h"
#include "data/registry.h"
#include "data/text.h"
#include "experiments/runner/trainer.h"
#include "experiments/study_common.h"
#include "nn/byte_lm.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace fs = std::filesystem;

namespace {

struct Corpora {
  data::ByteCorpus main_train, main_eval, aux_train, aux_eval;
  nlohmann::json description;  // for config.json / summary.json "data"
};

Corpora& corpora(const Config& c, Progress& progress) {
  static std::unique_ptr<Corpora> d;
  if (d) return *d;
  d = std::make_unique<Corpora>();
  data::SyntheticTextOptions so;
  so.seed(c.extra_int("data-seed", 0));
  if (c.extra_int("synthetic-generic-bytes", -1) > 0) so.generic_bytes(c.extra_int("synthetic-generic-bytes", -1));
  if (c.extra_int("synthetic-specific-bytes", -1) > 0) so.specific_bytes(c.extra_int("synthetic-specific-bytes", -1));
  std::string main_text = c.extra_string("main-text", ""), aux_text = c.extra_string("aux-text", "");
  if (c.data_dir_given) {
    // --data-dir D: D/generic.txt and D/specific.txt (what scalpel-data export text writes), or D/text/.
    if (!main_text.empty() || !aux_text.empty()) {
      throw UsageError("--data-dir cannot be combined with --main-text / --aux-text: give one or the other");
    }
    std::string tried;
    for (const std::string& dir : {c.data_dir, c.data_dir + "/text"}) {
      const bool g = fs::is_regular_file(dir + "/generic.txt"), s = fs::is_regular_file(dir + "/specific.txt");
      if (g && s) {
        main_text = dir + "/generic.txt";
        aux_text = dir + "/specific.txt";
        break;
      }
      tried += (tried.empty() ? "" : " and ") + dir +
               (g   ? " (has generic.txt; missing specific.txt)"
                : s ? " (has specific.txt; missing generic.txt)"
                    : " (neither generic.txt nor specific.txt)");
    }
    if (main_text.empty()) {
      throw UsageError("text corpora not found: --data-dir " + c.data_dir +
                       " was given, so they must come from there; tried " + tried +
                       ". Write them there, or use 'scalpel-data export text --out " + c.data_dir + "'");
    }
  }
  data::ResolvedText t;
  try {
    t = data::resolve_text(main_text, aux_text, so);
  } catch (const std::invalid_argument& err) {
    throw UsageError(std::string("--main-text / --aux-text: ") + err.what());
  }
  progress.message(t.message);
  auto crc_of = [](const data::ByteCorpus& b) { return crc32_hex(crc32_update(0, b.data(), b.size())); };
  d->description = {
      {"name", t.synthetic ? "synthetic-text" : "text"},
      {"synthetic", t.synthetic},
      {"generic", {{"path", main_text}, {"size", t.corpora.generic.size()}, {"crc32", crc_of(t.corpora.generic)}}},
      {"specific", {{"path", aux_text}, {"size", t.corpora.specific.size()}, {"crc32", crc_of(t.corpora.specific)}}}};
  const double frac = 1.0 - c.extra_double("heldout-fraction", 0.1);
  auto [mtr, mev] = t.corpora.generic.split(frac);
  auto [atr, aev] = t.corpora.specific.split(frac);
  const int64_t cap = c.extra_int("eval-bytes", 0);
  if (cap > 0) {
    if (mev.size() > cap) mev = mev.slice(0, cap);
    if (aev.size() > cap) aev = aev.slice(0, cap);
  }
  d->main_train = mtr;
  d->main_eval = mev;
  d->aux_train = atr;
  d->aux_eval = aev;
  return *d;
}

// Mean next-byte cross-entropy (nats) of `lm` over every window of `ds`.
double evaluate_lm(nn::ByteLM& lm, const std::shared_ptr<const data::Dataset>& ds, int64_t batch_size) {
  NoGradGuard ng;
  const bool was = lm.is_training();
  lm.eval();
  data::DataLoader loader(ds, data::DataLoaderOptions()
                                  .batch_size(batch_size)
                                  .shuffle(false)
                                  .shard(dist::rank(), dist::world_size()));  // each rank scores its part
  loader.start_epoch(0);
  data::Batch b;
  double total = 0.0;
  int64_t scored = 0;
  while (loader.next(b)) {
    int64_t n = 0;
    for (int64_t t : b.targets.data) n += t != data::kIgnoreTarget ? 1 : 0;
    if (n == 0) continue;
    total += lm.loss(b.tokens, b.targets).item() * static_cast<double>(n);
    scored += n;
  }
  lm.train(was);
  double sums[2] = {total, static_cast<double>(scored)};
  dist::allreduce_sum(sums, 2);
  return sums[0] / sums[1];
}

void run(RunContext& ctx) {
  const Config& c = ctx.config();
  Corpora& d = corpora(c, ctx.progress());
  const int64_t T = c.extra_int("seq-len", 256);
  Generator init(c.seed);
  nn::ByteLM lm(nn::ByteLMOptions()
                    .layers(c.extra_int("layers", 12))
                    .heads(c.extra_int("heads", 8))
                    .d_model(c.extra_int("d-model", 256))
                    .d_ff(c.extra_int("d-ff", 1024))
                    .max_len(T)
                    .tied(c.extra_bool("tied", true)),
                init);
  lm.train();
  TrainTask task;
  task.params = lm.parameters();
  task.loss_names = {"ce_main_corpus", "ce_aux_corpus"};
  const int64_t total = total_steps(c, task);
  const int64_t B = c.batch_size;
  // Fresh random windows every step, read in order (so the position is resumable).
  auto main_windows = std::make_shared<data::RandomWindowDataset>(d.main_train, T, total * B, c.seed);
  auto aux_windows = std::make_shared<data::RandomWindowDataset>(d.aux_train, T, total * B, c.seed + 1);
  const auto windows = data::DataLoaderOptions().batch_size(B).shuffle(false).prefetch(true).shard(
      dist::rank(), dist::world_size());  // under mpirun: this rank's rows of every global batch
  data::DataLoader main_loader(main_windows, windows);
  data::DataLoader aux_loader(aux_windows, windows);
  main_loader.start_epoch(0);
  aux_loader.start_epoch(0);
  data::Batch mb, ab;
  task.losses = [&](int64_t) {
    main_loader.next(mb);
    aux_loader.next(ab);
    // One forward/backward graph per corpus batch.
    return std::vector<Tensor>{global_batch_mean(lm.loss(mb.tokens, mb.targets), mb),
                               global_batch_mean(lm.loss(ab.tokens, ab.targets), ab)};
  };
  const int64_t eval_windows = c.extra_int("eval-train-windows", 64);
  auto main_train_eval = std::make_shared<data::RandomWindowDataset>(d.main_train, T, eval_windows, c.seed + 7);
  auto aux_train_eval = std::make_shared<data::RandomWindowDataset>(d.aux_train, T, eval_windows, c.seed + 8);
  auto main_heldout = std::make_shared<data::SequentialWindowDataset>(d.main_eval, T);
  auto aux_heldout = std::make_shared<data::SequentialWindowDataset>(d.aux_eval, T);
  task.evaluate = [&]() -> Row {
    const double tm = evaluate_lm(lm, main_train_eval, B), ta = evaluate_lm(lm, aux_train_eval, B);
    const double em = evaluate_lm(lm, main_heldout, B), ea = evaluate_lm(lm, aux_heldout, B);
    return {{"train_main", tm},
            {"train_aux", ta},
            {"eval_main", em},
            {"eval_aux", ea},
            {"eval_main_bpb", em / std::log(2.0)},
            {"eval_aux_bpb", ea / std::log(2.0)}};
  };
  const RunState state = RunState().add("model", lm).add("main_loader", main_loader).add("aux_loader", aux_loader);
  train_with_state(ctx, task, state);
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-joint-lm";
  e.summary =
      "Paper §5.4-5.5: byte-level LM on a large generic corpus (main) with a small specific corpus (auxiliary); --rhos "
      "gives the EMA ablation.";
  e.example =
      "scalpel-joint-lm --methods mixed,bloop --lambdas 0.01,0.1,1 --out runs/joint-lm\n"
      "  scalpel-joint-lm --method bloop --rhos 0.001,0.01,0.1,0.9 --lambda 0.2 --out runs/ema-ablation";
  e.presets["paper"] = {{"steps", "300000"},
                        {"batch-size", "128"},
                        {"lr", "0.002"},
                        {"optimizer", "adam"},
                        {"schedule", "warmup-rsqrt"},
                        {"warmup-steps", "1000"},
                        {"eval-every", "5000"},
                        {"checkpoint-every", "5000"},
                        {"layers", "12"},
                        {"heads", "8"},
                        {"d-model", "256"},
                        {"d-ff", "1024"},
                        {"seq-len", "256"},
                        {"eval-bytes", "1000000"},
                        {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                        {"lambdas",
                         "0,1e-4,1.85e-4,3.41e-4,6.31e-4,1.17e-3,2.15e-3,3.98e-3,7.36e-3,1.36e-2,2.51e-2,4.64e-2,8.58e-"
                         "2,1.58e-1,2.93e-1,5.41e-1,1,1.85,3.41,6.31,10"}};
  e.presets["cpu"] = {{"steps", "600"},
                      {"batch-size", "16"},
                      {"lr", "0.002"},
                      {"optimizer", "adam"},
                      {"schedule", "warmup-rsqrt"},
                      {"warmup-steps", "50"},
                      {"eval-every", "150"},
                      {"layers", "2"},
                      {"heads", "4"},
                      {"d-model", "128"},
                      {"d-ff", "512"},
                      {"seq-len", "64"},
                      {"eval-bytes", "16384"},
                      {"synthetic-generic-bytes", "2000000"},
                      {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                      {"lambdas", "0.01,0.1,1,10"}};
  e.options = {{"main-text", "generic corpus: a file or a folder (with --aux-text; else synthetic-text)"},
               {"aux-text", "specific corpus: a file or a folder"},
               int_option("layers", "transformer blocks", 1, 1000),
               int_option("heads", "attention heads", 1, 1024),
               int_option("d-model", "model width", 1, 65536),
               int_option("d-ff", "MLP width", 1, 1048576),
               int_option("seq-len", "sequence length T", 1, 1048576),
               bool_option("tied", "tie the output head to the embedding (default true)"),
               real_option("heldout-fraction", "held-out fraction of each corpus (default 0.1)", 1e-6, 0.9),
               int_option("eval-bytes", "held-out bytes evaluated per corpus (0: all)", 0, 1000000000000),
               int_option("eval-train-windows", "training windows used for train_* (default 64)", 1, 10000000),
               int_option("synthetic-generic-bytes", "size of the synthetic generic corpus", 1024, 1000000000),
               int_option("synthetic-specific-bytes", "size of the synthetic specific corpus", 1024, 1000000000),
               int_option("data-seed", "seed of the synthetic corpora", 0, INT64_MAX)};
  for (const OptionSpec& o : trainer_options()) e.options.push_back(o);
  e.main_label = "generic-corpus cross-entropy (nats/byte)";
  e.aux_label = "specific-corpus cross-entropy (nats/byte)";
  e.prepare_data = [](const Config& c, Progress& progress) { return corpora(c, progress).description; };
  e.weighting = true;    // trains through train()
  e.shards_data = true;  // under mpirun: data parallel over the ranks
  e.run = run;
  return run_main(argc, argv, e);
}
