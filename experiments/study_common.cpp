#include "experiments/study_common.h"

namespace scalpel {
namespace experiments {

const Splits& load_splits(const Config& c, Progress& progress,
                          const std::function<data::Resolved(data::Split, const data::DatasetOptions&)>& resolve) {
  static std::unique_ptr<Splits> cached;
  if (cached) return *cached;
  const data::DatasetOptions base = data::DatasetOptions().data_dir(c.data_dir).seed(c.extra_int("data-seed", 0));
  data::DatasetOptions train = base, test = base;
  if (c.extra_int("train-size", -1) > 0) train.size(c.extra_int("train-size", -1));
  if (c.extra_int("test-size", -1) > 0) test.size(c.extra_int("test-size", -1));
  auto s = std::make_unique<Splits>();
  const data::Resolved tr = resolve(data::Split::Train, train);
  progress.message(tr.message);
  s->train = tr.dataset;
  s->test = resolve(data::Split::Test, test).dataset;
  cached = std::move(s);
  return *cached;
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

StateDict RunState::save() const {
  StateDict s;
  for (const auto& [n, m] : modules_) s.merge(m->state_dict(), n);
  for (const auto& [n, l] : loaders_) s.merge(l->state_dict(), n);
  return s;
}

void RunState::load(const StateDict& state) const {
  for (const auto& [n, m] : modules_) m->load_state_dict(state.sub(n));
  for (const auto& [n, l] : loaders_) l->load_state_dict(state.sub(n));
}

void train_with_state(RunContext& ctx, TrainTask& task, const RunState& state) {
  task.save_state = [&state] { return state.save(); };
  task.load_state = [&state](const StateDict& s) { state.load(s); };
  train(ctx, task);
}

}  // namespace experiments
}  // namespace scalpel
