// scalpel-translation: paper §5.4 "Translation" — an encoder–decoder transformer trained on a
// large generic parallel corpus (main loss) with a small high-quality in-domain corpus as the
// auxiliary loss, evaluated on a held-out in-domain set: cross-entropy of both, and BLEU.
//
// Data: --data-dir D reads D/generic.tsv, D/specific.tsv and D/eval.tsv (each may be .tsv.gz;
// "source<TAB>target" per line, bad lines reported by file and line, see data/parallel.h); without
// it the built-in synthetic language pair (data/synthetic_parallel.h) stands in: a large noisy
// generic split and a small clean one. A held-out part of the generic corpus (--heldout-fraction,
// at most --heldout-pairs) gives eval_main. Pairs longer than --max-len bytes (with their EOS/BOS)
// are left out and counted. Tokens are bytes (data/seq2seq_batch.h); batches are length-bucketed,
// one generic and one specific batch per step. Each evaluation logs, per corpus, the cross-entropy
// (nats per target token) on a fixed training subset (train_*) and the held-out sets (eval_main:
// generic held-out, eval_aux: the in-domain eval set), and eval_bleu: corpus BLEU of the decoded
// eval sentences (greedy, or beam search with --beam; whitespace tokens, exp smoothing, as
// sacreBLEU). After the sweep report (also scalpel-report and --merge), bleu_vs_lambda.png plots
// the final eval BLEU of every method against λ.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/checksum.h"
#include "core/dist.h"
#include "data/parallel.h"
#include "data/seq2seq_batch.h"
#include "data/synthetic_parallel.h"
#include "experiments/runner/trainer.h"
#include "experiments/study_common.h"
#include "experiments/translation/bleu.h"
#include "nn/seq2seq.h"
#include "nn/seq2seq_decode.h"

using namespace scalpel;
using namespace scalpel::experiments;

namespace fs = std::filesystem;

namespace {

struct Corpus {
  std::vector<data::SentencePair> generic_train, generic_heldout, specific_train, eval;
  nlohmann::json description;
};

std::string crc_of(const std::vector<data::SentencePair>& pairs) {
  uint32_t crc = 0;
  for (const auto& p : pairs) {
    crc = crc32_update(crc, p.source.data(), p.source.size());
    crc = crc32_update(crc, "\t", 1);
    crc = crc32_update(crc, p.target.data(), p.target.size());
    crc = crc32_update(crc, "\n", 1);
  }
  return crc32_hex(crc);
}

// D/<name>.tsv or D/<name>.tsv.gz; empty when neither exists.
std::string find_tsv(const std::string& dir, const std::string& name) {
  for (const std::string& f : {dir + "/" + name + ".tsv", dir + "/" + name + ".tsv.gz"}) {
    if (fs::is_regular_file(f)) return f;
  }
  return "";
}

const Corpus& corpus(const Config& c, Progress& progress) {
  static std::unique_ptr<Corpus> d;
  if (d) return *d;
  d = std::make_unique<Corpus>();
  std::vector<data::SentencePair> generic, specific, eval;
  nlohmann::json files = nlohmann::json::object();
  bool synthetic = !c.data_dir_given;
  if (!synthetic) {
    std::string missing;
    std::map<std::string, std::string> path;
    for (const char* name : {"generic", "specific", "eval"}) {
      path[name] = find_tsv(c.data_dir, name);
      if (path[name].empty()) missing += std::string(missing.empty() ? "" : ", ") + name + ".tsv[.gz]";
    }
    if (!missing.empty()) {
      throw UsageError("parallel corpora not found: --data-dir " + c.data_dir + " was given, so they must come from " +
                       "there, and it lacks " + missing +
                       " (one 'source<TAB>target' pair per line; omit --data-dir for the synthetic pair)");
    }
    auto read = [&](const char* name, std::vector<data::SentencePair>& out) {
      data::ParallelCorpus pc = data::read_parallel_tsv(path[name]);
      for (const std::string& p : pc.problems) progress.message("warning: " + p);
      if (pc.bad_lines > 0) {
        progress.message("warning: " + path[name] + ": " + std::to_string(pc.bad_lines) + " bad lines left out");
      }
      files[name] = {{"path", path[name]}, {"lines", pc.lines}, {"bad_lines", pc.bad_lines}};
      out = std::move(pc.pairs);
    };
    read("generic", generic);
    read("specific", specific);
    read("eval", eval);
  } else {
    data::SyntheticParallelOptions so;
    so.seed = static_cast<uint64_t>(c.extra_int("data-seed", 0));
    so.generic_size = c.extra_int("synthetic-generic-pairs", so.generic_size);
    so.clean_size = c.extra_int("synthetic-specific-pairs", so.clean_size);
    so.eval_size = c.extra_int("synthetic-eval-pairs", so.eval_size);
    so.noise = c.extra_double("synthetic-noise", so.noise);
    data::SyntheticParallel sp = data::make_synthetic_parallel(so);
    progress.message("translation: no --data-dir, using the built-in synthetic language pair (" +
                     std::to_string(sp.generic.size()) + " generic pairs, " + std::to_string(sp.corrupted) +
                     " of them corrupted; " + std::to_string(sp.clean.size()) + " clean; " +
                     std::to_string(sp.eval.size()) + " eval)");
    generic = std::move(sp.generic);
    specific = std::move(sp.clean);
    eval = std::move(sp.eval);
  }
  const int64_t max_len = c.extra_int("max-len", 128);
  auto keep = [&](const char* name, std::vector<data::SentencePair>& pairs) {
    data::LengthFiltered f = data::filter_by_length(pairs, max_len);
    if (f.dropped > 0) {
      progress.message("translation: " + std::string(name) + ": " + std::to_string(f.dropped) +
                       " pairs longer than --max-len " + std::to_string(max_len) + " left out");
    }
    if (f.pairs.empty()) {
      throw UsageError(std::string("translation: no ") + name + " pair fits in --max-len " + std::to_string(max_len));
    }
    pairs = std::move(f.pairs);
  };
  keep("generic", generic);
  keep("specific", specific);
  keep("eval", eval);
  const double frac = c.extra_double("heldout-fraction", 0.05);
  size_t held = std::max<size_t>(1, static_cast<size_t>(std::llround(frac * static_cast<double>(generic.size()))));
  // A cap keeps eval_main affordable on a large corpus (5 % of Paracrawl is 1.8 M pairs).
  const int64_t held_cap = c.extra_int("heldout-pairs", 0);
  if (held_cap > 0) held = std::min(held, static_cast<size_t>(held_cap));
  if (held >= generic.size()) throw UsageError("--heldout-fraction leaves no generic training pairs");
  d->generic_train.assign(generic.begin(), generic.end() - static_cast<std::ptrdiff_t>(held));
  d->generic_heldout.assign(generic.end() - static_cast<std::ptrdiff_t>(held), generic.end());
  d->specific_train = std::move(specific);
  const int64_t eval_cap = c.extra_int("eval-pairs", 0);
  if (eval_cap > 0 && static_cast<int64_t>(eval.size()) > eval_cap) eval.resize(static_cast<size_t>(eval_cap));
  d->eval = std::move(eval);
  auto split = [](const std::vector<data::SentencePair>& p) {
    return nlohmann::json{{"pairs", p.size()}, {"crc32", crc_of(p)}};
  };
  d->description = {{"name", synthetic ? "synthetic-parallel" : "parallel-tsv"},
                    {"synthetic", synthetic},
                    {"generic_train", split(d->generic_train)},
                    {"generic_heldout", split(d->generic_heldout)},
                    {"specific_train", split(d->specific_train)},
                    {"eval", split(d->eval)}};
  if (!synthetic) d->description["files"] = files;
  return *d;
}

// The first `limit` pairs (0: all) in order, as batches of `batch_size`: built once per run, reused
// by every evaluation.
std::vector<data::Seq2SeqBatch> fixed_batches(const std::vector<data::SentencePair>& pairs, size_t limit,
                                              int64_t batch_size) {
  const size_t n = limit > 0 ? std::min(limit, pairs.size()) : pairs.size();
  std::vector<data::Seq2SeqBatch> out;
  for (size_t i = 0; i < n; i += static_cast<size_t>(batch_size)) {
    std::vector<size_t> idx;
    for (size_t j = i; j < std::min(n, i + static_cast<size_t>(batch_size)); ++j) idx.push_back(j);
    out.push_back(data::make_seq2seq_batch(pairs, idx));
  }
  return out;
}

// Mean cross-entropy per target token over `batches`.
double evaluate_ce(nn::Seq2Seq& model, const std::vector<data::Seq2SeqBatch>& batches) {
  NoGradGuard ng;
  double total = 0.0;
  int64_t tokens = 0;
  for (const data::Seq2SeqBatch& b : batches) {
    total += model.loss(b.src, b.src_lengths, b.tgt_in, b.tgt_out).item() * static_cast<double>(b.target_tokens);
    tokens += b.target_tokens;
  }
  return total / static_cast<double>(tokens);
}

// Corpus BLEU of the model's translations of `batches` (of `pairs`) against their targets.
BleuScore evaluate_bleu(nn::Seq2Seq& model, const std::vector<data::SentencePair>& pairs,
                        const std::vector<data::Seq2SeqBatch>& batches, const nn::DecodeOptions& decode) {
  std::vector<std::string> hyps, refs;
  for (const data::Seq2SeqBatch& b : batches) {
    for (const nn::Hypothesis& h : nn::translate(model, b.src, b.src_lengths, decode)) {
      hyps.push_back(data::ByteVocab::decode(h.tokens));
    }
    for (size_t j : b.pairs) refs.push_back(pairs[j].target);
  }
  return corpus_bleu(hyps, {refs});
}

void run(RunContext& ctx) {
  const Config& c = ctx.config();
  const Corpus& d = corpus(c, ctx.progress());
  Generator init(c.seed);
  nn::Seq2Seq model(nn::Seq2SeqOptions()
                        .vocab(data::ByteVocab::kSize)
                        .encoder_layers(c.extra_int("encoder-layers", 2))
                        .decoder_layers(c.extra_int("decoder-layers", 2))
                        .heads(c.extra_int("heads", 4))
                        .d_model(c.extra_int("d-model", 128))
                        .d_ff(c.extra_int("d-ff", 512))
                        .max_len(c.extra_int("max-len", 128))
                        .shared_embeddings(c.extra_bool("shared-embeddings", true))
                        .tied(c.extra_bool("tied", true))
                        .dropout(c.extra_double("dropout", 0.0)),
                    init);
  model.train();
  TrainTask task;
  task.params = model.parameters();
  task.loss_names = {"ce_generic", "ce_specific"};
  const int64_t B = c.batch_size, max_tokens = c.extra_int("max-tokens", 0);
  const auto buckets =
      data::BucketOptions()
          .batch_size(B)
          .max_tokens(max_tokens)
          .shard(dist::rank(), dist::world_size());  // under mpirun: this rank's pairs of every global batch
  data::PairBatchStream main_stream(d.generic_train, data::BucketOptions(buckets).seed(c.seed * 2 + 1));
  data::PairBatchStream aux_stream(d.specific_train, data::BucketOptions(buckets).seed(c.seed * 2 + 2));
  // The token mean over this rank's part, weighted so that the mean over the ranks is the token
  // mean over the global batch (N·tokens_r/tokens); a rank without a pair adds a constant 0.
  auto shard_loss = [&](const data::Seq2SeqBatch& b) {
    if (b.empty()) return Tensor::scalar(0.0f);
    return global_batch_mean(model.loss(b.src, b.src_lengths, b.tgt_in, b.tgt_out), b.target_tokens,
                             b.global_target_tokens);
  };
  task.losses = [&](int64_t) {
    const data::Seq2SeqBatch mb = main_stream.next(), ab = aux_stream.next();
    return std::vector<Tensor>{shard_loss(mb), shard_loss(ab)};
  };
  const int64_t eb = std::max<int64_t>(B, 32);
  const size_t subset = static_cast<size_t>(c.extra_int("eval-train-pairs", 256));
  const auto main_subset = fixed_batches(d.generic_train, subset, eb),
             aux_subset = fixed_batches(d.specific_train, subset, eb);
  const auto main_heldout = fixed_batches(d.generic_heldout, 0, eb), eval_set = fixed_batches(d.eval, 0, eb);
  const auto bleu_set = fixed_batches(d.eval, static_cast<size_t>(c.extra_int("bleu-pairs", 0)), eb);
  const auto decode = nn::DecodeOptions(data::ByteVocab::kBos, data::ByteVocab::kEos)
                          .beam(c.extra_int("beam", 1))
                          .length_penalty(c.extra_double("length-penalty", 0.6))
                          .max_len(c.extra_int("max-len", 128));
  task.evaluate = [&]() -> Row {
    const bool was = model.is_training();
    model.eval();
    Row r{{"train_main", evaluate_ce(model, main_subset)},
          {"train_aux", evaluate_ce(model, aux_subset)},
          {"eval_main", evaluate_ce(model, main_heldout)},
          {"eval_aux", evaluate_ce(model, eval_set)}};
    const BleuScore bleu = evaluate_bleu(model, d.eval, bleu_set, decode);
    r.push_back({"eval_bleu", bleu.score});
    r.push_back({"eval_bleu_bp", bleu.bp});
    model.train(was);
    return r;
  };
  const RunState state = RunState()
                             .add("model", model)
                             .add(
                                 "main_batches", [&] { return main_stream.state_dict(); },
                                 [&](const StateDict& s) { main_stream.load_state_dict(s); })
                             .add(
                                 "aux_batches", [&] { return aux_stream.state_dict(); },
                                 [&](const StateDict& s) { aux_stream.load_state_dict(s); });
  train_with_state(ctx, task, state);
}

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  e.name = "scalpel-translation";
  e.summary =
      "Paper §5.4 Translation: encoder-decoder transformer on a large generic parallel corpus (main) with a small "
      "in-domain corpus (auxiliary); cross-entropy and BLEU on held-out in-domain pairs.";
  e.example =
      "scalpel-translation --methods mixed,pcgrad,dynamic-barrier,bloop --lambdas 0.1,1,10 --out runs/translation\n"
      "  scalpel-translation --data-dir data/wmt --preset paper --out runs/translation-paper";
  e.presets["cpu"] = {{"steps", "1500"},
                      {"batch-size", "32"},
                      {"lr", "0.001"},
                      {"optimizer", "adam"},
                      {"schedule", "warmup-rsqrt"},
                      {"warmup-steps", "100"},
                      {"eval-every", "500"},
                      {"checkpoint-every", "500"},
                      {"encoder-layers", "2"},
                      {"decoder-layers", "2"},
                      {"heads", "4"},
                      {"d-model", "128"},
                      {"d-ff", "512"},
                      {"max-len", "96"},
                      {"synthetic-generic-pairs", "40000"},
                      {"synthetic-specific-pairs", "1000"},
                      {"synthetic-eval-pairs", "300"},
                      {"bleu-pairs", "300"},
                      {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                      {"lambdas", "0.1,1,10"}};
  e.presets["paper"] = {{"steps", "100000"},
                        {"batch-size", "256"},
                        {"lr", "0.0007"},
                        {"optimizer", "adam"},
                        {"schedule", "warmup-rsqrt"},
                        {"warmup-steps", "4000"},
                        {"eval-every", "5000"},
                        {"checkpoint-every", "5000"},
                        {"encoder-layers", "6"},
                        {"decoder-layers", "6"},
                        {"heads", "16"},
                        {"d-model", "1024"},
                        {"d-ff", "4096"},
                        {"max-len", "256"},
                        {"heldout-pairs", "2000"},
                        {"dropout", "0.1"},
                        {"beam", "4"},
                        {"methods", "mixed,pcgrad,dynamic-barrier,bloop"},
                        {"lambdas", "0,0.01,0.03,0.1,0.3,1,3,10"}};
  e.options = {
      int_option("encoder-layers", "encoder blocks", 1, 1000),
      int_option("decoder-layers", "decoder blocks", 1, 1000),
      int_option("heads", "attention heads", 1, 1024),
      int_option("d-model", "model width", 1, 65536),
      int_option("d-ff", "MLP width", 1, 1048576),
      int_option("max-len", "longest source or target in bytes, with its EOS/BOS (longer pairs are left out)", 2,
                 65536),
      bool_option("shared-embeddings", "one embedding for source and target bytes (default true)"),
      bool_option("tied", "tie the output projection to the target embedding (default true)"),
      real_option("dropout", "dropout in every block (default 0)", 0.0, 0.9),
      int_option("max-tokens", "padded tokens per batch at most (0: --batch-size pairs only)", 0, 1 << 30),
      int_option("beam", "beam size for BLEU decoding (1: greedy, default)", 1, 64),
      real_option("length-penalty", "GNMT length penalty alpha of beam search (default 0.6)", 0.0, 10.0),
      int_option("bleu-pairs", "eval pairs decoded for eval_bleu (0: all)", 0, 100000000),
      int_option("eval-pairs", "eval pairs used at all (0: all)", 0, 100000000),
      int_option("eval-train-pairs", "training pairs per corpus for train_* (default 256)", 1, 100000000),
      real_option("heldout-fraction", "generic pairs held out for eval_main (default 0.05)", 1e-6, 0.9),
      int_option("heldout-pairs", "at most this many held-out generic pairs (0: no cap; paper: 2000)", 0, 100000000),
      int_option("synthetic-generic-pairs", "size of the synthetic generic corpus", 10, 100000000),
      int_option("synthetic-specific-pairs", "size of the synthetic in-domain corpus", 10, 100000000),
      int_option("synthetic-eval-pairs", "size of the synthetic eval set", 10, 100000000),
      real_option("synthetic-noise", "fraction of corrupted synthetic generic pairs (default 0.3)", 0.0, 1.0),
      int_option("data-seed", "seed of the synthetic corpus", 0, INT64_MAX)};
  for (const OptionSpec& o : trainer_options()) e.options.push_back(o);
  e.main_label = "generic-corpus cross-entropy (nats/token)";
  e.aux_label = "in-domain cross-entropy (nats/token)";
  e.prepare_data = [](const Config& c, Progress& progress) { return corpus(c, progress).description; };
  e.weighting = true;    // trains through train()
  e.shards_data = true;  // under mpirun: data parallel over the ranks
  e.run = run;
  e.vs_lambda_plots = {{"bleu_vs_lambda", "eval_bleu", "eval BLEU (in-domain)"}};
  // Cross-entropies fall by more than a decade from step 0: log axes keep the final points apart.
  e.plot_log_x = e.plot_log_y = true;
  return run_main(argc, argv, e);
}
