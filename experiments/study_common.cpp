#include "experiments/study_common.h"

#include "core/dist.h"
#include "core/ops.h"

#include "core/checksum.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace scalpel {
namespace experiments {

namespace {

// CRC-32 of every example of `ds` as the training loop sees it (inputs and labels).
uint32_t dataset_crc(const data::Dataset& ds) {
  const data::DatasetInfo info = ds.info();
  const int64_t n_in = shape_numel(info.input_shape);
  std::vector<float> input(static_cast<size_t>(std::max<int64_t>(n_in, 1)));
  std::vector<int64_t> labels(std::max<size_t>(info.num_classes.size(), 1));
  uint32_t crc = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    ds.read(i, input.data(), labels.data());
    crc = crc32_update(crc, input.data(), static_cast<size_t>(n_in) * sizeof(float));
    crc = crc32_update(crc, labels.data(), info.num_classes.size() * sizeof(int64_t));
  }
  return crc;
}

nlohmann::json describe(const data::Resolved& r) {
  return {{"name", r.name},   {"synthetic", r.synthetic},  {"path", r.dir},
          {"files", r.files}, {"size", r.dataset->size()}, {"crc32", crc32_hex(dataset_crc(*r.dataset))}};
}

}  // namespace

const Splits& load_splits(const Config& c, Progress& progress,
                          const std::function<data::Resolved(data::Split, const data::DatasetOptions&)>& resolve) {
  static std::unique_ptr<Splits> cached;
  if (cached) return *cached;
  const data::DatasetOptions base = data::DatasetOptions()
                                        .data_dir(c.data_dir)
                                        .required(c.data_dir_given)
                                        .seed(static_cast<uint64_t>(c.extra_int("data-seed", 0)));
  data::DatasetOptions train = base, test = base;
  if (c.extra_int("train-size", -1) > 0) train.size(c.extra_int("train-size", -1));
  if (c.extra_int("test-size", -1) > 0) test.size(c.extra_int("test-size", -1));
  auto s = std::make_unique<Splits>();
  try {
    const data::Resolved tr = resolve(data::Split::Train, train);
    progress.message(tr.message);
    const data::Resolved te = resolve(data::Split::Test, test);
    progress.message(te.message);
    s->train = tr.dataset;
    s->test = te.dataset;
    s->description = {{"train", describe(tr)}, {"test", describe(te)}};
  } catch (const data::DataNotFound& err) {
    throw UsageError(err.what());
  }
  if (c.batch_size > s->train->size()) {
    throw UsageError("--batch-size: " + std::to_string(c.batch_size) + " is larger than the training set (" +
                     std::to_string(s->train->size()) + " examples of " + s->train->info().name + ")");
  }
  cached = std::move(s);
  return *cached;
}

void use_splits(Experiment& e, SplitResolver resolve) {
  e.shards_data = true;  // every data study shards its training batches under mpirun
  const std::vector<OptionSpec> data = {
      int_option("train-size", "training examples (synthetic size, or a cap on real data)", 1, 10000000),
      int_option("test-size", "test examples", 1, 10000000),
      int_option("data-seed", "seed of the synthetic data set", 0, INT64_MAX)};
  const std::vector<OptionSpec> trainer = trainer_options();
  e.options.insert(e.options.end(), data.begin(), data.end());
  e.options.insert(e.options.end(), trainer.begin(), trainer.end());
  e.weighting = true;  // the runs train through train()
  e.prepare_data = [resolve = std::move(resolve)](const Config& c, Progress& progress) {
    return load_splits(c, progress, resolve).description;
  };
}

Tensor global_batch_mean(const Tensor& loss, int64_t local, int64_t global) {
  const int64_t share = local * dist::world_size();
  if (global <= 0 || share == global) return loss;
  return mul(loss, static_cast<float>(static_cast<double>(share) / static_cast<double>(global)));
}

Tensor global_batch_mean(const Tensor& loss, const data::Batch& batch) {
  return global_batch_mean(loss, batch.size(), batch.global_size);
}

void next_batch(data::DataLoader& loader, data::Batch& batch) {
  if (!loader.next(batch)) {
    loader.start_epoch(loader.position().epoch + 1);
    loader.next(batch);
  }
}

RunState& RunState::add(const std::string& name, nn::Module& module) {
  modules_.emplace_back(name, &module);
  return *this;
}

RunState& RunState::add(const std::string& name, data::DataLoader& loader) {
  loaders_.emplace_back(name, &loader);
  return *this;
}

RunState& RunState::add(const std::string& name, std::function<StateDict()> save,
                        std::function<void(const StateDict&)> load) {
  others_.push_back({name, std::move(save), std::move(load)});
  return *this;
}

StateDict RunState::save() const {
  StateDict s;
  for (const auto& [n, m] : modules_) s.merge(m->state_dict(), n);
  for (const auto& [n, l] : loaders_) s.merge(l->state_dict(), n);
  for (const Other& o : others_) s.merge(o.save(), o.name);
  return s;
}

void RunState::load(const StateDict& state) const {
  for (const auto& [n, m] : modules_) m->load_state_dict(state.sub(n));
  for (const auto& [n, l] : loaders_) l->load_state_dict(state.sub(n));
  for (const Other& o : others_) o.load(state.sub(o.name));
}

void train_with_state(RunContext& ctx, TrainTask& task, const RunState& state) {
  task.save_state = [&state] { return state.save(); };
  task.load_state = [&state](const StateDict& s) { state.load(s); };
  train(ctx, task);
}

}  // namespace experiments
}  // namespace scalpel
