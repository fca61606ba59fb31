#include "experiments/runner/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "core/dist.h"
#include "core/ops.h"
#include "optim/optimizer.h"
#include "optim/surgery/surgeon.h"
#include "optim/train_step.h"
#include "optim/weighting/weighting.h"

namespace scalpel {
namespace experiments {

int64_t total_steps(const Config& c, const TrainTask& task) {
  if (c.steps > 0) return c.steps;
  if (c.epochs > 0 && task.steps_per_epoch > 0) return c.epochs * task.steps_per_epoch;
  throw std::invalid_argument("--steps: set --steps or --epochs (the preset gives neither)");
}

optim::ScheduleRef make_lr_schedule(const Config& c, double base, int64_t total) {
  // A warm-up longer than the run (e.g. a preset's warm-up with a short --steps) is cut to the run.
  const int64_t warmup = std::min(c.extra_int("warmup-steps", 0), total);
  const std::string& s = c.schedule;
  if (s == "constant") return optim::constant(base);
  if (s == "cosine") return optim::cosine(base, 0.0, total);
  if (s == "warmup-cosine") return optim::warmup_cosine(base, warmup, total, 0.0);
  if (s == "warmup-rsqrt") return optim::warmup_rsqrt(base, std::max<int64_t>(warmup, 1));
  if (s == "step") return optim::step_decay(base, std::max<int64_t>(total / 3, 1), 0.1);
  throw std::invalid_argument("--schedule: unknown schedule '" + s +
                              "' (expected constant, cosine, warmup-cosine, warmup-rsqrt or step)");
}

std::vector<OptionSpec> trainer_options() {
  return {int_option("warmup-steps", "learning-rate warm-up steps", 0, 1000000000000),
          real_option("momentum", "SGD momentum (default 0.9)", 0.0, 1.0),
          real_option("weight-decay", "optimizer weight decay (default 0)", 0.0, 1e6)};
}

namespace {

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, const std::vector<Tensor>& params, double lr) {
  const double wd = c.extra_double("weight-decay", 0.0);
  const double momentum = c.extra_double("momentum", 0.9);
  if (c.optimizer == "sgd") {
    return std::make_unique<optim::SGD>(params, optim::SGDOptions(lr).momentum(momentum).weight_decay(wd));
  }
  if (c.optimizer == "sgd-nesterov") {
    return std::make_unique<optim::SGD>(params,
                                        optim::SGDOptions(lr).momentum(momentum).nesterov(true).weight_decay(wd));
  }
  if (c.optimizer == "adam") return std::make_unique<optim::Adam>(params, optim::AdamOptions(lr).weight_decay(wd));
  if (c.optimizer == "adamw") return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(lr).weight_decay(wd));
  throw std::invalid_argument("--optimizer: unknown optimizer '" + c.optimizer +
                              "' (expected sgd, sgd-nesterov, adam or adamw)");
}

// The run's loss weighting (null for none), set up for the task's losses: dwa's window defaults to
// one epoch, rlw's seed to --seed.
std::unique_ptr<weighting::LossWeighting> make_task_weighting(const Config& c, const TrainTask& task) {
  if (c.weighting == "none") return nullptr;
  weighting::WeightingOptions o;
  for (const auto& [k, v] : c.weighting_options) o.set(k, v);
  if (c.weighting == "dwa" && !o.has("window") && task.steps_per_epoch > 0) {
    o.set("window", std::to_string(task.steps_per_epoch));
  }
  if (c.weighting == "rlw" && !o.has("seed")) o.set("seed", std::to_string(c.seed));
  std::unique_ptr<weighting::LossWeighting> w = weighting::make_weighting(c.weighting, o);
  if (task.loss_names.empty()) {
    throw std::invalid_argument("--weighting: the task does not name its losses, so their number is unknown");
  }
  w->ensure_tasks(static_cast<int>(task.loss_names.size()));
  return w;
}

// Means of the per-step values (losses and surgery diagnostics) between two evaluations.
class Accumulator {
 public:
  void add(const Row& values) {
    for (const auto& [k, v] : values) {
      if (!std::isfinite(v)) continue;
      if (!sums_.count(k)) order_.push_back(k);
      sums_[k] += v;
      counts_[k] += 1;
    }
  }
  Row means() const {
    Row out;
    for (const std::string& k : order_) out.emplace_back(k, sums_.at(k) / counts_.at(k));
    return out;
  }
  void clear() {
    sums_.clear();
    counts_.clear();
    order_.clear();
  }
  void save(StateDict& sd) const {
    sd.set_int("acc.n", static_cast<int64_t>(order_.size()));
    for (size_t i = 0; i < order_.size(); ++i) {
      const std::string p = "acc." + std::to_string(i);
      sd.set_string(p + ".key", order_[i]);
      sd.set_double(p + ".sum", sums_.at(order_[i]));
      sd.set_double(p + ".count", counts_.at(order_[i]));
    }
  }
  void load(const StateDict& sd) {
    clear();
    const int64_t n = sd.get_int("acc.n");
    for (int64_t i = 0; i < n; ++i) {
      const std::string p = "acc." + std::to_string(i);
      const std::string k = sd.get_string(p + ".key");
      order_.push_back(k);
      sums_[k] = sd.get_double(p + ".sum");
      counts_[k] = sd.get_double(p + ".count");
    }
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, double> sums_, counts_;
};

}  // namespace

void train(RunContext& ctx, TrainTask& task) {
  const Config& c = ctx.config();
  const RunSpec& spec = ctx.spec();
  const int64_t total = total_steps(c, task);
  const double lr = c.lr * task.lr_scale;
  const optim::ScheduleRef schedule = make_lr_schedule(c, lr, total);
  std::unique_ptr<weighting::LossWeighting> weighting = make_task_weighting(c, task);
  std::vector<Tensor> params = task.params;
  if (weighting) {
    for (const Tensor& p : weighting->parameters()) params.push_back(p);
  }
  optim::TrainStep step(make_optimizer(c, params, lr), surgery::make_surgeon(spec.method, surgeon_options(ctx)),
                        optim::TrainStepOptions()
                            .clip_grad_norm(c.clip_grad_norm)
                            .fused_mixed(c.fused_mixed)
                            .loss_names(task.loss_names)
                            .lr_schedule(schedule)
                            .weighting_group(task.last_shared)
                            .head_policy(optim::head_policy_from_string(task.head_policy))
                            .head_params(task.head_policy == "joint" ? std::vector<Tensor>{} : task.head_params)
                            .check_replicas_every(c.dist_check_every),
                        std::move(weighting));
  Accumulator acc;
  int64_t start = 0;
  if (auto ck = ctx.resume_checkpoint()) {
    step.load_state_dict(ck->sub("train"));
    task.load_state(ck->sub("task"));
    acc.load(ck->sub("loop"));
    start = ck->get_int(StateDict::kStepKey);
    ctx.truncate_metrics_after(start);
    ctx.progress().message("[" + spec.label + "] resuming from step " + std::to_string(start));
    // Checkpoints before data parallelism have no world size: they were written by one process.
    const int64_t written_by = ck->has_scalar("dist.world_size") ? ck->get_int("dist.world_size") : 1;
    if (written_by != dist::world_size()) {
      ctx.progress().message("[" + spec.label + "] the checkpoint was written by " + std::to_string(written_by) +
                             " rank(s) and resumes on " + std::to_string(dist::world_size()) +
                             ": the global batch (--batch-size " + std::to_string(c.batch_size) +
                             ") and the data order are unchanged, so the run continues the same training, equal "
                             "to the uninterrupted one up to float rounding in the gradient mean (bit for bit "
                             "only at the same number of ranks)");
    }
    ctx.set_final("resumed_from_step", static_cast<double>(start));
  }
  const int64_t eval_every = c.eval_every > 0 ? c.eval_every : std::max<int64_t>(1, total / 20);
  // The ranks' buffers averaged (float tensors only), so every rank evaluates and saves one model.
  auto average_buffers = [&] {
    if (!dist::active() || task.buffers.empty()) return;
    std::vector<dist::FloatSpan> spans;
    for (Tensor& b : task.buffers) spans.push_back({b.data(), b.numel()});
    dist::allreduce_mean(spans);
  };
  auto evaluate = [&](int64_t s) {
    average_buffers();
    Row row{{"step", static_cast<double>(s)}};
    if (task.steps_per_epoch > 0) row.emplace_back("epoch", static_cast<double>(s) / task.steps_per_epoch);
    for (const auto& kv : task.evaluate()) row.push_back(kv);
    for (const auto& [k, v] : acc.means()) row.emplace_back(k, v);
    row.emplace_back("lr", schedule->at(s));  // the rate of the next step
    row.emplace_back("elapsed_s", ctx.progress().elapsed_seconds());
    ctx.log(row);
    acc.clear();
    return row;
  };
  ctx.progress().start(spec.label, total, start);
  if (start == 0) evaluate(0);
  for (int64_t s = start; s < total; ++s) {
    const auto t_step = std::chrono::steady_clock::now();
    const double comm_before = dist::stats().seconds;
    ctx.inject_rank_error(s + 1);
    std::vector<Tensor> losses = task.losses(s);
    for (size_t k = 0; k < losses.size(); ++k) {
      if (ctx.inject_nan(s + 1, static_cast<int>(k)))
        losses[k] = mul(losses[k], std::numeric_limits<float>::quiet_NaN());
    }
    optim::StepResult r;
    try {
      r = step.step(losses);
    } catch (const optim::NonFiniteError& e) {
      const int k = e.loss();
      const std::string which =
          k < 0 ? "the combined direction d"
                : (static_cast<size_t>(k) < task.loss_names.size() ? "loss '" + task.loss_names[k] + "'"
                                                                   : "loss " + std::to_string(k));
      throw NonFiniteLoss("step " + std::to_string(s + 1) + ": " + which + " went non-finite (" + e.what() + ")");
    }
    Row per_step;
    for (size_t k = 0; k < r.losses.size(); ++k) {
      per_step.emplace_back(k == 0 ? "batch_main" : (k == 1 ? "batch_aux" : "batch_aux" + std::to_string(k)),
                            r.losses[k]);
    }
    for (const auto& kv : r.diagnostics.to_map()) per_step.push_back(kv);
    for (size_t k = 0; k < r.loss_weights.size(); ++k) {
      per_step.emplace_back("loss_weight" + std::to_string(k), r.loss_weights[k]);
    }
    if (!r.loss_weights.empty()) per_step.emplace_back("weighted_loss", r.weighted_loss);
    per_step.emplace_back("grad_norm", r.grad_norm);
    // Wall time of the step (forward, per-loss gradients, surgery, optimizer), without evaluation.
    per_step.emplace_back("step_ms",
                          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_step).count());
    if (dist::active()) per_step.emplace_back("comm_ms", 1e3 * (dist::stats().seconds - comm_before));
    acc.add(per_step);
    const int64_t done = s + 1;
    ctx.progress().update(
        done, {{"main", r.losses.empty() ? NAN : r.losses[0]}, {"aux", r.losses.size() > 1 ? r.losses[1] : NAN}});
    if (done % eval_every == 0 || done == total) evaluate(done);
    if (ctx.checkpoint_due(done) && done < total) {
      average_buffers();
      StateDict ck;
      ck.merge(step.state_dict(), "train");
      ck.merge(task.save_state(), "task");
      StateDict loop;
      acc.save(loop);
      ck.merge(loop, "loop");
      ck.set_int(StateDict::kStepKey, done);
      ck.set_int("dist.world_size", dist::world_size());
      ctx.save_checkpoint(ck);
    }
  }
  ctx.progress().finish("done");
}

}  // namespace experiments
}  // namespace scalpel
