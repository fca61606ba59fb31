// stl: the single-task baseline inside a multi-task run, d = g_t for the one task t of option
// `task` (default 0). The other tasks' heads get no gradient and their losses are still logged, so
// a sweep can hold one stl run per task next to the multi-task methods and report Δm% against them
// (scalpel-multitask --methods ...,stl runs one per task). It is a Gram method like the others, so
// it logs the same diagnostics (norms, cosines of the gradients it ignores).
#include <memory>
#include <stdexcept>
#include <string>

#include "optim/surgery/aggregator.h"

namespace scalpel {
namespace surgery {
namespace {

class SingleTask final : public GramAggregator {
 public:
  explicit SingleTask(const SurgeonOptions& o) : GramAggregator("stl", o, {"task"}), task_(int_option("task", 0, 0)) {}

 protected:
  void weights(const std::vector<double>& /*G*/, int T, std::vector<double>& w) override {
    if (task_ >= T) {
      throw std::invalid_argument("stl: option 'task' is " + std::to_string(task_) + " but there are only " +
                                  std::to_string(T) + " tasks (0.." + std::to_string(T - 1) + ")");
    }
    for (int i = 0; i < T; ++i) w[static_cast<size_t>(i)] = i == task_ ? 1.0 : 0.0;
  }

 private:
  int64_t task_;
};

const SurgeonRegistration kRegistration("stl", {"single-task"},
                                        "single-task baseline: d = g_task (option task, default 0)",
                                        [](const SurgeonOptions& o) { return std::make_unique<SingleTask>(o); });

}  // namespace
}  // namespace surgery
}  // namespace scalpel
