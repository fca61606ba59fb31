#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace scalpel {
namespace optim {

namespace {

constexpr double kPi = 3.14159265358979323846;

void check_step(int64_t step, const std::string& what) {
  if (step < 0) {
    throw std::invalid_argument(what + ": step must be >= 0, got " + std::to_string(step));
  }
}

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// A schedule defined by a lambda plus its description.
class FunctionSchedule : public Schedule {
 public:
  FunctionSchedule(std::function<double(int64_t)> f, std::string description)
      : f_(std::move(f)), description_(std::move(description)) {}
  double at(int64_t step) const override {
    check_step(step, description_);
    return f_(step);
  }
  std::string describe() const override { return description_; }

 private:
  std::function<double(int64_t)> f_;
  std::string description_;
};

ScheduleRef make(std::function<double(int64_t)> f, std::string description) {
  return std::make_shared<FunctionSchedule>(std::move(f), std::move(description));
}

void require(bool ok, const std::string& what, const std::string& expected, const std::string& found) {
  if (!ok) throw std::invalid_argument(what + ": expected " + expected + ", got " + found);
}

double fraction(int64_t step, int64_t steps) {
  return std::min(static_cast<double>(step) / static_cast<double>(steps), 1.0);
}

}  // namespace

ScheduleRef constant(double value) {
  require(std::isfinite(value), "constant schedule", "a finite value", num(value));
  return make([value](int64_t) { return value; }, "constant(" + num(value) + ")");
}

ScheduleRef linear(double start, double end, int64_t steps) {
  require(steps > 0, "linear schedule", "steps > 0", std::to_string(steps));
  require(std::isfinite(start) && std::isfinite(end), "linear schedule", "finite start and end",
          num(start) + ", " + num(end));
  return make([=](int64_t s) { return start + (end - start) * fraction(s, steps); },
              "linear(" + num(start) + " -> " + num(end) + " over " + std::to_string(steps) + ")");
}

ScheduleRef log_linear(double start, double end, int64_t steps) {
  require(steps > 0, "log_linear schedule", "steps > 0", std::to_string(steps));
  require(start > 0 && end > 0 && std::isfinite(start) && std::isfinite(end), "log_linear schedule",
          "finite start > 0 and end > 0 (interpolates the logarithm)", num(start) + ", " + num(end));
  return make([=](int64_t s) { return start * std::pow(end / start, fraction(s, steps)); },
              "log_linear(" + num(start) + " -> " + num(end) + " over " + std::to_string(steps) + ")");
}

ScheduleRef cosine(double start, double end, int64_t steps) {
  require(steps > 0, "cosine schedule", "steps > 0", std::to_string(steps));
  require(std::isfinite(start) && std::isfinite(end), "cosine schedule", "finite start and end",
          num(start) + ", " + num(end));
  return make([=](int64_t s) { return end + (start - end) * 0.5 * (1.0 + std::cos(kPi * fraction(s, steps))); },
              "cosine(" + num(start) + " -> " + num(end) + " over " + std::to_string(steps) + ")");
}

ScheduleRef warmup_cosine(double base, int64_t warmup_steps, int64_t total_steps, double final_value) {
  require(warmup_steps >= 0, "warmup_cosine schedule", "warmup_steps >= 0", std::to_string(warmup_steps));
  require(total_steps >= warmup_steps, "warmup_cosine schedule", "total_steps >= warmup_steps",
          "total_steps " + std::to_string(total_steps) + " < warmup_steps " + std::to_string(warmup_steps));
  require(std::isfinite(base) && std::isfinite(final_value), "warmup_cosine schedule", "finite base and final",
          num(base) + ", " + num(final_value));
  const int64_t decay = std::max<int64_t>(total_steps - warmup_steps, 1);
  return make(
      [=](int64_t s) {
        if (s < warmup_steps) return base * static_cast<double>(s + 1) / static_cast<double>(warmup_steps);
        const double p = fraction(s - warmup_steps, decay);
        return final_value + (base - final_value) * 0.5 * (1.0 + std::cos(kPi * p));
      },
      "warmup_cosine(base=" + num(base) + ", warmup=" + std::to_string(warmup_steps) +
          ", total=" + std::to_string(total_steps) + ", final=" + num(final_value) + ")");
}

ScheduleRef step_decay(double base, int64_t step_size, double gamma) {
  require(step_size > 0, "step_decay schedule", "step_size > 0", std::to_string(step_size));
  require(std::isfinite(base) && std::isfinite(gamma), "step_decay schedule", "finite base and gamma",
          num(base) + ", " + num(gamma));
  return make(
      [=](int64_t s) { return base * std::pow(gamma, static_cast<double>(s / step_size)); },
      "step_decay(base=" + num(base) + ", step_size=" + std::to_string(step_size) + ", gamma=" + num(gamma) + ")");
}

ScheduleRef warmup_rsqrt(double base, int64_t warmup_steps) {
  require(warmup_steps >= 0, "warmup_rsqrt schedule", "warmup_steps >= 0", std::to_string(warmup_steps));
  require(std::isfinite(base), "warmup_rsqrt schedule", "a finite base", num(base));
  return make(
      [=](int64_t s) {
        const double t = static_cast<double>(s + 1);
        if (warmup_steps == 0) return base / std::sqrt(t);
        if (s < warmup_steps) return base * t / static_cast<double>(warmup_steps);
        return base * std::sqrt(static_cast<double>(warmup_steps) / t);
      },
      "warmup_rsqrt(base=" + num(base) + ", warmup=" + std::to_string(warmup_steps) + ")");
}

ScheduleRef from_function(std::function<double(int64_t)> f, std::string description) {
  if (!f) throw std::invalid_argument("from_function schedule: the function is empty");
  return make(std::move(f), std::move(description));
}

// ---- parsing ------------------------------------------------------------------------------------

namespace {

const char* kScheduleForms =
    "a number, or constant:V, linear:START:END:STEPS, loglinear:START:END:STEPS, cosine:START:END:STEPS, "
    "warmup_cosine:BASE:WARMUP:TOTAL[:FINAL], step:BASE:STEP_SIZE:GAMMA, warmup_rsqrt:BASE:WARMUP";

double parse_double(const std::string& text, const std::string& field, const std::string& whole) {
  const char* begin = field.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (field.empty() || *end != '\0' || !std::isfinite(v)) {
    throw std::invalid_argument("parse_schedule('" + whole + "'): '" + field + "' is not a finite number (" + text +
                                ")");
  }
  return v;
}

int64_t parse_int(const std::string& text, const std::string& field, const std::string& whole) {
  const double v = parse_double(text, field, whole);
  if (v != std::floor(v) || std::abs(v) > 9e15) {
    throw std::invalid_argument("parse_schedule('" + whole + "'): '" + field + "' is not an integer (" + text + ")");
  }
  return static_cast<int64_t>(v);
}

}  // namespace

ScheduleRef parse_schedule(const std::string& text) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : text) {
    if (c == ':') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  const std::string& kind = parts[0];
  const size_t nargs = parts.size() - 1;
  auto expect = [&](size_t lo, size_t hi, const char* form) {
    if (nargs < lo || nargs > hi) {
      throw std::invalid_argument("parse_schedule('" + text + "'): '" + kind + "' expects " + form + ", got " +
                                  std::to_string(nargs) + " argument(s)");
    }
  };
  if (nargs == 0) {
    if (text.empty())
      throw std::invalid_argument(std::string("parse_schedule: empty text; expected ") + kScheduleForms);
    const char* begin = text.c_str();
    char* end = nullptr;
    const double v = std::strtod(begin, &end);
    if (*end != '\0' || !std::isfinite(v)) {
      throw std::invalid_argument("parse_schedule('" + text + "'): unknown schedule; expected " +
                                  std::string(kScheduleForms));
    }
    return constant(v);
  }
  const auto& a = parts;
  if (kind == "constant") {
    expect(1, 1, "constant:VALUE");
    return constant(parse_double("value", a[1], text));
  }
  if (kind == "linear" || kind == "loglinear" || kind == "log_linear" || kind == "cosine") {
    expect(3, 3, "KIND:START:END:STEPS");
    const double s = parse_double("start", a[1], text), e = parse_double("end", a[2], text);
    const int64_t n = parse_int("steps", a[3], text);
    if (kind == "linear") return linear(s, e, n);
    if (kind == "cosine") return cosine(s, e, n);
    return log_linear(s, e, n);
  }
  if (kind == "warmup_cosine") {
    expect(3, 4, "warmup_cosine:BASE:WARMUP:TOTAL[:FINAL]");
    return warmup_cosine(parse_double("base", a[1], text), parse_int("warmup", a[2], text),
                         parse_int("total", a[3], text), nargs == 4 ? parse_double("final", a[4], text) : 0.0);
  }
  if (kind == "step" || kind == "step_decay") {
    expect(3, 3, "step:BASE:STEP_SIZE:GAMMA");
    return step_decay(parse_double("base", a[1], text), parse_int("step_size", a[2], text),
                      parse_double("gamma", a[3], text));
  }
  if (kind == "warmup_rsqrt") {
    expect(2, 2, "warmup_rsqrt:BASE:WARMUP");
    return warmup_rsqrt(parse_double("base", a[1], text), parse_int("warmup", a[2], text));
  }
  throw std::invalid_argument("parse_schedule('" + text + "'): unknown kind '" + kind + "'; expected " +
                              std::string(kScheduleForms));
}

}  // namespace optim
}  // namespace scalpel
