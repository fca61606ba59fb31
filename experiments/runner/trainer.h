// The training loop shared by the neural experiments (smooth MLP, weight norm, multi-task, LM).
//
// An experiment describes its task (parameters, how to compute the losses of one step, how to
// evaluate, and its own state for checkpoints) and calls train(ctx, task). The loop builds the
// optimizer, learning-rate schedule and surgeon from the configuration, runs optim::TrainStep,
// and takes care of evaluation rows, surgery diagnostics and the step time `step_ms` (averaged
// between evaluations),
// progress, checkpoints, resume and non-finite detection:
//
//   TrainTask task;
//   task.params = model.parameters();
//   task.losses = [&](int64_t step) { auto b = next_batch(); return std::vector<Tensor>{ce(b), aux()}; };
//   task.evaluate = [&] { return Row{{"train_main", ..}, {"train_aux", ..}, {"eval_main", ..}, {"eval_aux", ..}}; };
//   task.save_state = [&] { StateDict s; s.merge(model.state_dict(), "model"); ...; return s; };
//   task.load_state = [&](const StateDict& s) { model.load_state_dict(s.sub("model")); ... };
//   train(ctx, task);
//
// Configuration used: --steps (or --epochs × task.steps_per_epoch), --optimizer (sgd,
// sgd-nesterov, adam, adamw), --lr, --schedule (constant, cosine, warmup-cosine, step,
// warmup-rsqrt; warm-up length from the experiment option "warmup-steps"), "momentum" and
// "weight-decay" options, --clip-grad-norm, --eval-every, --checkpoint-every, the surgeon flags,
// --weighting and --weighting-set (a loss weighting over the task's losses: its learnable
// parameters join the optimizer; dwa's window defaults to one epoch and rlw's seed to --seed; the
// chosen weights are logged as loss_weight<k>, with the combined loss as weighted_loss).
// Under mpirun (core/dist.h) each rank runs the same loop on its shard: the metrics get comm_ms,
// the time per step spent in the collectives (waiting for the other ranks included).
// A checkpoint holds the TrainStep (optimizer + surgeon + step), the task's state (model, data
// position, RNGs) and the diagnostics accumulated since the last evaluation, so a resumed run
// reproduces the uninterrupted one bit for bit with the same thread count.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/state_dict.h"
#include "core/tensor.h"
#include "experiments/runner/runner.h"
#include "optim/schedule.h"

namespace scalpel {
namespace experiments {

using Row = std::vector<std::pair<std::string, double>>;

struct TrainTask {
  std::vector<Tensor> params;
  std::vector<std::string> loss_names;  // e.g. {"ce", "lipschitz"}
  int64_t steps_per_epoch = 0;          // for --epochs and the "epoch" column
  // The loss tensors of step `step` (0-based): L0 main, then L1..LK, from one forward pass.
  std::function<std::vector<Tensor>(int64_t step)> losses;
  // Evaluation metrics; should include train_main, train_aux, eval_main, eval_aux.
  std::function<Row()> evaluate;
  // Task state for checkpoints (model, buffers, data positions, RNGs).
  std::function<StateDict()> save_state;
  std::function<void(const StateDict&)> load_state;
  // Multiplies the configured learning rate (e.g. 1/(1+λ) in the multi-task recipe).
  double lr_scale = 1.0;
  // The parameters of the last shared layer, where --weighting gradnorm measures the per-task
  // gradient norms (empty: every parameter).
  std::vector<Tensor> last_shared;
  // The task-specific parameters (heads) and what they get (optim/head_policy.h: joint, own,
  // weighted); own and weighted need head_params.
  std::vector<Tensor> head_params;
  std::string head_policy = "joint";
  // Buffers that training updates from each rank's own batch (BatchNorm running statistics
  // without --sync-batch-norm). Under mpirun they are averaged over the ranks before every
  // evaluation and checkpoint, so the ranks evaluate and save one model.
  std::vector<Tensor> buffers;
};

// Total steps from --steps, else --epochs × steps_per_epoch. Throws naming the flags when neither.
int64_t total_steps(const Config& config, const TrainTask& task);
// The learning-rate schedule for `config` (base lr already scaled) over `total` steps.
optim::ScheduleRef make_lr_schedule(const Config& config, double base_lr, int64_t total);

// Runs the loop; throws NonFiniteLoss naming the step and loss when one goes non-finite.
void train(RunContext& ctx, TrainTask& task);

// The experiment options train() reads: warmup-steps, momentum, weight-decay. Every study that
// trains through train() appends them to Experiment::options, so they are checked at parse.
std::vector<OptionSpec> trainer_options();

}  // namespace experiments
}  // namespace scalpel
