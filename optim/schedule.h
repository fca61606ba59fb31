// Schedules: a scalar as a function of the (0-based) training step, for learning rates and for the
// trade-off λ of every surgery method.
//
// A Schedule is immutable and shared (`ScheduleRef = std::shared_ptr<const Schedule>`); `at(step)`
// is a pure function of the step, so resuming a run only needs the step counter. Closed forms,
// with s = step >= 0 (a negative step throws std::invalid_argument):
//
//   constant(v)                          v
//   linear(a, b, n)                      a + (b - a) * min(s / n, 1)            (n > 0)
//   log_linear(a, b, n)                  a * (b / a)^min(s / n, 1)              (a, b > 0, n > 0)
//   cosine(a, b, n)                      b + (a - b) * (1 + cos(pi * min(s / n, 1))) / 2
//   warmup_cosine(base, W, T, final=0)   s < W:  base * (s + 1) / W
//                                        s >= W: final + (base - final) * (1 + cos(pi * p)) / 2,
//                                                p = min((s - W) / max(T - W, 1), 1)
//   step_decay(base, size, gamma)        base * gamma^floor(s / size)             (size > 0)
//   warmup_rsqrt(base, W)                s < W:  base * (s + 1) / W
//                                        s >= W: base * sqrt(W / (s + 1))       (W = 0: base / sqrt(s + 1))
//
// The warm-ups never return 0 at step 0 (the first step would be wasted) and reach `base` at step
// W - 1; warmup_rsqrt is continuous there. `LrSchedule` is the same type, named for readability.
//
// parse_schedule() reads the command-line form "kind:arg:arg..." ("0.1" alone is a constant), e.g.
//   "linear:0:1:1000", "loglinear:1e-4:1:5000", "cosine:1:0:1000", "warmup_cosine:0.1:500:10000:0",
//   "step:0.1:30:0.1", "warmup_rsqrt:2e-3:1000".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace scalpel {
namespace optim {

class Schedule {
 public:
  virtual ~Schedule() = default;
  // The value at a 0-based step; throws std::invalid_argument for step < 0.
  virtual double at(int64_t step) const = 0;
  // A short human-readable form, e.g. "warmup_cosine(base=0.1, warmup=5, total=100, final=0)".
  virtual std::string describe() const = 0;
};

using LrSchedule = Schedule;
using ScheduleRef = std::shared_ptr<const Schedule>;

ScheduleRef constant(double value);
ScheduleRef linear(double start, double end, int64_t steps);
ScheduleRef log_linear(double start, double end, int64_t steps);
ScheduleRef cosine(double start, double end, int64_t steps);
ScheduleRef warmup_cosine(double base, int64_t warmup_steps, int64_t total_steps, double final_value = 0.0);
ScheduleRef step_decay(double base, int64_t step_size, double gamma);
ScheduleRef warmup_rsqrt(double base, int64_t warmup_steps);
// Any function of the step (must be pure for checkpoint/resume to be exact).
ScheduleRef from_function(std::function<double(int64_t)> f, std::string description = "function");

// Parses "kind:arg:..." (see above). Throws std::invalid_argument naming the text, the kind and the
// expected arguments on anything malformed.
ScheduleRef parse_schedule(const std::string& text);

}  // namespace optim
}  // namespace scalpel
