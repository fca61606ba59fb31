#include "optim/weighting/weighting.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "core/autograd.h"

namespace scalpel {
namespace weighting {

namespace {

struct Entry {
  std::string summary;
  WeightingFactory factory;
};

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
  return out;
}

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

// ---- options --------------------------------------------------------------------------------------

WeightingOptions& WeightingOptions::set(const std::string& key, const std::string& value) {
  if (key.empty()) throw std::invalid_argument("WeightingOptions::set: empty option name (value '" + value + "')");
  values_[key] = value;
  return *this;
}

std::string WeightingOptions::describe() const {
  std::string out;
  for (const auto& [k, v] : values_) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

// ---- LossWeighting --------------------------------------------------------------------------------

LossWeighting::LossWeighting(std::string name, WeightingOptions options)
    : name_(std::move(name)), options_(std::move(options)) {}

void LossWeighting::check_keys(const std::vector<std::string>& known) const {
  for (const auto& [k, v] : options_.values()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      throw std::invalid_argument("weighting '" + name_ + "': unknown option '" + k + "'" +
                                  (known.empty() ? " (it takes no options)" : " (it takes: " + join(known) + ")"));
    }
  }
}

double LossWeighting::number(const std::string& key, double fallback, double lo, double hi, bool open_lo) const {
  auto it = options_.values().find(key);
  if (it == options_.values().end()) return fallback;
  const std::string& s = it->second;
  const std::string range = std::string(open_lo ? "(" : "[") + num(lo) + ", " + num(hi) + "]";
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
    throw std::invalid_argument("weighting '" + name_ + "': option '" + key + "' expects a number in " + range +
                                ", got '" + s + "'");
  }
  if (v > hi || (open_lo ? v <= lo : v < lo)) {
    throw std::invalid_argument("weighting '" + name_ + "': option '" + key + "' must be in " + range + ", got " + s);
  }
  return v;
}

std::string LossWeighting::text(const std::string& key, const std::string& fallback,
                                const std::vector<std::string>& allowed) const {
  auto it = options_.values().find(key);
  if (it == options_.values().end()) return fallback;
  if (std::find(allowed.begin(), allowed.end(), it->second) == allowed.end()) {
    throw std::invalid_argument("weighting '" + name_ + "': option '" + key + "' expects " + join(allowed) + ", got '" +
                                it->second + "'");
  }
  return it->second;
}

void LossWeighting::ensure_tasks(int K) {
  if (K < 2) {
    throw std::invalid_argument("weighting '" + name_ + "': needs at least 2 task losses, got " + std::to_string(K) +
                                " (a loss weighting balances several tasks)");
  }
  if (K_ == 0) {
    init_tasks(K);
    K_ = K;
    return;
  }
  if (K != K_) {
    throw std::invalid_argument("weighting '" + name_ + "': was set up for " + std::to_string(K_) +
                                " task losses, got " + std::to_string(K));
  }
}

const WeightingResult& LossWeighting::weigh(const std::vector<double>& losses, const GradNormFn& grad_norms) {
  ensure_tasks(static_cast<int>(losses.size()));
  for (size_t i = 0; i < losses.size(); ++i) {
    if (!std::isfinite(losses[i])) {
      throw std::invalid_argument("weighting '" + name_ + "': task loss " + std::to_string(i) + " is not finite (" +
                                  num(losses[i]) + ")");
    }
  }
  if (needs_grad_norms() && !grad_norms) {
    throw std::invalid_argument("weighting '" + name_ +
                                "': needs the per-task gradient norms at a parameter group, and none were given "
                                "(it cannot run with the fused-mixed single backward)");
  }
  WeightingResult r;
  weigh_impl(losses, grad_norms, r);
  if (r.weights.size() != losses.size()) {
    throw std::logic_error("weighting '" + name_ + "': returned " + std::to_string(r.weights.size()) + " weights for " +
                           std::to_string(losses.size()) + " losses");
  }
  result_ = std::move(r);
  last_weights_ = result_.weights;
  ++step_;
  return result_;
}

Tensor& LossWeighting::make_parameter(const std::vector<float>& init) {
  if (params_.empty()) {
    Tensor p = Tensor::from_vector(init);
    p.set_requires_grad(true);
    params_.push_back(p);
  }
  return params_[0];
}

void LossWeighting::set_parameter_grad(const std::vector<double>& g) {
  std::vector<float> f(g.begin(), g.end());
  params_.at(0).set_grad(Tensor::from_vector(f));
}

std::vector<double> LossWeighting::parameter_values() const {
  const std::vector<float> v = params_.at(0).to_vector();
  return std::vector<double>(v.begin(), v.end());
}

StateDict LossWeighting::state_dict() const {
  StateDict sd;
  sd.set_string("method", name_);
  sd.set_int("tasks", K_);
  sd.set_int("step", step_);
  sd.set_int("last.n", static_cast<int64_t>(last_weights_.size()));
  for (size_t i = 0; i < last_weights_.size(); ++i) sd.set_double("last." + std::to_string(i), last_weights_[i]);
  if (!params_.empty()) sd.set_tensor("param", params_[0].detach().clone());
  save_state(sd);
  return sd;
}

void LossWeighting::load_state_dict(const StateDict& sd) {
  const std::string method = sd.get_string("method");
  if (method != name_) {
    throw std::invalid_argument("weighting '" + name_ + "': load_state_dict: the state is of weighting '" + method +
                                "'");
  }
  const int64_t K = sd.get_int("tasks");
  if (K != 0) ensure_tasks(static_cast<int>(K));
  const int64_t step = sd.get_int("step");
  if (step < 0) throw std::invalid_argument("weighting '" + name_ + "': load_state_dict: 'step' is negative");
  const int64_t n = sd.get_int("last.n");
  if (n != 0 && n != K) {
    throw std::invalid_argument("weighting '" + name_ + "': load_state_dict: 'last.n' is " + std::to_string(n) +
                                ", expected 0 or " + std::to_string(K));
  }
  std::vector<double> last;
  for (int64_t i = 0; i < n; ++i) last.push_back(sd.get_double("last." + std::to_string(i)));
  if (!params_.empty()) {
    const Tensor& t = sd.tensor("param");
    if (t.numel() != params_[0].numel()) {
      throw std::invalid_argument("weighting '" + name_ + "': load_state_dict: 'param' has " +
                                  std::to_string(t.numel()) + " values, expected " +
                                  std::to_string(params_[0].numel()));
    }
    NoGradGuard no_grad;
    const std::vector<float> v = t.to_vector();
    std::copy(v.begin(), v.end(), params_[0].data());
  }
  load_state(sd);
  step_ = step;
  last_weights_ = last;
  result_ = WeightingResult();
  result_.weights = last;
}

// ---- registry -------------------------------------------------------------------------------------

WeightingRegistration::WeightingRegistration(std::string name, std::string summary, WeightingFactory factory) {
  registry()[name] = Entry{std::move(summary), std::move(factory)};
}

std::unique_ptr<LossWeighting> make_weighting(const std::string& name, const WeightingOptions& options) {
  if (name == "none") {
    if (!options.values().empty()) {
      throw std::invalid_argument("weighting 'none': unknown option '" + options.values().begin()->first +
                                  "' (it takes no options)");
    }
    return nullptr;
  }
  auto it = registry().find(name);
  if (it == registry().end()) {
    throw std::invalid_argument("unknown weighting '" + name + "' (known: " + join(weighting_names()) + ")");
  }
  return it->second.factory(options);
}

std::vector<std::string> weighting_names() {
  std::vector<std::string> out{"none"};
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

std::string weighting_summary(const std::string& name) {
  if (name == "none") return "f = Σ L_i (no weighting)";
  auto it = registry().find(name);
  return it == registry().end() ? std::string() : it->second.summary;
}

std::vector<double> softmax(const std::vector<double>& x) {
  double m = -HUGE_VAL;
  for (double v : x) m = std::max(m, v);
  std::vector<double> out(x.size());
  double s = 0.0;
  for (size_t i = 0; i < x.size(); ++i) s += (out[i] = std::exp(x[i] - m));
  for (double& v : out) v /= s;
  return out;
}

}  // namespace weighting
}  // namespace scalpel
