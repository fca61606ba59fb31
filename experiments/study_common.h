// Pieces every data-driven study repeats: loading the train/test splits once per process (all
// runs of a sweep share them), drawing batches across epoch boundaries, and bundling the state a
// run checkpoints (modules and data-loader positions).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/state_dict.h"
#include "data/loader.h"
#include "data/registry.h"
#include "experiments/runner/runner.h"
#include "experiments/runner/trainer.h"
#include "nn/module.h"

namespace scalpel {
namespace experiments {

using SplitResolver = std::function<data::Resolved(data::Split, const data::DatasetOptions&)>;

struct Splits {
  std::shared_ptr<const data::Dataset> train, test;
  nlohmann::json description;  // per split: name, synthetic, path, files, size, crc32 (of the examples)
};

// Resolves the train and test splits with `resolve` (e.g. data::resolve_mnist) once per process,
// honouring --data-dir (explicit: real data from there or UsageError listing the paths tried) and
// the study options train-size, test-size and data-seed, and logs both resolver messages (which
// say when synthetic data stands in for the real set). A --batch-size larger than the training
// set is a UsageError.
const Splits& load_splits(const Config& config, Progress& progress, const SplitResolver& resolve);

// Makes `e` a data study whose runs call load_splits with `resolve` and train through train():
// appends the data options (train-size, test-size, data-seed) and trainer_options() to
// e.options, and sets e.prepare_data so the data is loaded and checked once before the first run
// and described in config.json / summary.json.
void use_splits(Experiment& e, SplitResolver resolve);

// The next batch of `loader`, moving on to the next epoch when the current one is exhausted.
void next_batch(data::DataLoader& loader, data::Batch& batch);

// Data parallel (core/dist.h): `loss`, a mean over this rank's shard of `batch`, rescaled by
// n_r·N/B (shard rows × ranks / global rows) so that the mean over the ranks that TrainStep forms
// is the mean over the global batch. Returned unchanged when the shards are equal (always
// without mpirun). Only for losses that average over the batch, not for parameter-only losses.
Tensor global_batch_mean(const Tensor& loss, const data::Batch& batch);
// The same with the counts given: `loss` averages `local` items (rows, target tokens) of the
// `global` items of every rank's part of the batch.
Tensor global_batch_mean(const Tensor& loss, int64_t local, int64_t global);

// Named modules and loaders whose state a run checkpoints, as one StateDict.
class RunState {
 public:
  RunState& add(const std::string& name, nn::Module& module);
  RunState& add(const std::string& name, data::DataLoader& loader);
  // Anything else with a state (e.g. a data::PairBatchStream): how to save and restore it.
  RunState& add(const std::string& name, std::function<StateDict()> save, std::function<void(const StateDict&)> load);
  StateDict save() const;
  void load(const StateDict& state) const;

 private:
  std::vector<std::pair<std::string, nn::Module*>> modules_;
  std::vector<std::pair<std::string, data::DataLoader*>> loaders_;
  struct Other {
    std::string name;
    std::function<StateDict()> save;
    std::function<void(const StateDict&)> load;
  };
  std::vector<Other> others_;
};

// Trains `task` with checkpoints that hold `state` (and resume from it); `state` must outlive the call.
void train_with_state(RunContext& ctx, TrainTask& task, const RunState& state);

}  // namespace experiments
}  // namespace scalpel
