// Surgeon base (validation, λ schedules, state, K = 0), SurgeonOptions parsing, diagnostics
// flattening, and the name -> factory registry.
#include "optim/surgery/surgeon.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "optim/surgery/fused.h"

namespace scalpel {
namespace surgery {

namespace {

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

}  // namespace

std::string to_string(EmaOrder order) {
  return order == EmaOrder::UpdateThenProject ? "update_then_project" : "project_then_update";
}

std::string to_string(EmaInit init) {
  switch (init) {
    case EmaInit::FirstGrad:
      return "first_grad";
    case EmaInit::Zeros:
      return "zeros";
    case EmaInit::Random:
      return "random";
  }
  return "?";
}

// ---- diagnostics --------------------------------------------------------------------------------

std::vector<std::pair<std::string, double>> SurgeryDiagnostics::to_map() const {
  std::vector<std::pair<std::string, double>> m;
  m.emplace_back("g0_norm", g0_norm);
  for (size_t k = 0; k < gk_norm.size(); ++k) m.emplace_back("g" + std::to_string(k + 1) + "_norm", gk_norm[k]);
  for (size_t k = 0; k < cos_g0_gk.size(); ++k) m.emplace_back("cos_g0_g" + std::to_string(k + 1), cos_g0_gk[k]);
  m.emplace_back("ema_norm", ema_norm);
  m.emplace_back("cos_e_g0", cos_e_g0);
  m.emplace_back("ratio", ratio);
  m.emplace_back("d_norm", d_norm);
  m.emplace_back("cos_d_g0", cos_d_g0);
  for (size_t k = 0; k < lambdas.size(); ++k) m.emplace_back("lambda" + std::to_string(k + 1), lambdas[k]);
  m.emplace_back("scale", scale);
  m.emplace_back("db_clipped", db_clipped ? 1.0 : 0.0);
  m.emplace_back("pcgrad_projected", pcgrad_projected ? 1.0 : 0.0);
  for (size_t k = 0; k < weights.size(); ++k) m.emplace_back("weight" + std::to_string(k), weights[k]);
  const int T = static_cast<int>(gk_norm.size()) + 1;
  size_t c = 0, g = 0;
  for (int i = 0; i < T; ++i) {
    for (int j = i + 1; j < T; ++j) {
      const std::string pair = "_g" + std::to_string(i) + "_g" + std::to_string(j);
      if (i > 0 && c < cos_gi_gj.size()) m.emplace_back("cos" + pair, cos_gi_gj[c++]);
    }
  }
  for (int i = 0; i < T; ++i) {
    for (int j = i + 1; j < T; ++j) {
      if (g < gms.size()) m.emplace_back("gms_g" + std::to_string(i) + "_g" + std::to_string(j), gms[g++]);
    }
  }
  if (T >= 2) m.emplace_back("gram_rcond", gram_rcond);
  return m;
}

// ---- options ------------------------------------------------------------------------------------

SurgeonOptions& SurgeonOptions::lambda(double value) { return lambdas({value}); }

SurgeonOptions& SurgeonOptions::lambdas(std::vector<double> values) {
  std::vector<optim::ScheduleRef> s;
  for (double v : values) s.push_back(optim::constant(v));
  return lambda_schedules(std::move(s));
}

SurgeonOptions& SurgeonOptions::lambda_schedule(optim::ScheduleRef schedule) {
  return lambda_schedules({std::move(schedule)});
}

SurgeonOptions& SurgeonOptions::lambda_schedules(std::vector<optim::ScheduleRef> schedules) {
  if (schedules.empty()) throw std::invalid_argument("SurgeonOptions: lambda needs at least one value or schedule");
  for (size_t k = 0; k < schedules.size(); ++k) {
    if (!schedules[k]) throw std::invalid_argument("SurgeonOptions: lambda schedule " + std::to_string(k) + " is null");
  }
  lambda_schedules_ = std::move(schedules);
  return *this;
}

std::vector<std::string> SurgeonOptions::keys() {
  std::vector<std::string> k = {"lambda", "rho", "eps", "ema_order", "ema_init", "rescale", "ratio_only", "seed"};
  for (const auto& m : method_keys()) k.push_back(m);
  return k;
}

std::vector<std::string> SurgeonOptions::method_keys() {
  return {"c",
          "cagrad_rescale",
          "scale",
          "normalize",
          "reg_eps",
          "norm_eps",
          "max_norm",
          "update_every",
          "optim_niter",
          "beta",
          "shuffle",
          "leak",
          "moco_beta",
          "moco_gamma",
          "moco_rho",
          "moco_beta_sigma",
          "moco_gamma_sigma",
          "task"};
}

SurgeonOptions& SurgeonOptions::method_option(const std::string& key, const std::string& value) {
  const auto mk = method_keys();
  if (std::find(mk.begin(), mk.end(), key) == mk.end()) {
    throw std::invalid_argument("SurgeonOptions::method_option: unknown option '" + key + "' (known: " + join(mk) +
                                ")");
  }
  method_options_[key] = value;
  return *this;
}

namespace {

double parse_number(const std::string& key, const std::string& value, const std::string& expected) {
  const char* begin = value.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (value.empty() || *end != '\0' || !std::isfinite(v)) {
    throw std::invalid_argument("SurgeonOptions::set: option '" + key + "' expects " + expected + ", got '" + value +
                                "'");
  }
  return v;
}

bool parse_bool(const std::string& key, const std::string& value) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw std::invalid_argument("SurgeonOptions::set: option '" + key +
                              "' expects true/false (or 1/0, yes/no, on/off), got '" + value + "'");
}

}  // namespace

SurgeonOptions& SurgeonOptions::set(const std::string& key, const std::string& value) {
  if (key == "lambda" || key == "lambdas") {
    std::vector<optim::ScheduleRef> s;
    std::string cur;
    auto flush = [&] {
      try {
        s.push_back(optim::parse_schedule(cur));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(
            "SurgeonOptions::set: option 'lambda' expects a number, a schedule or a "
            "comma-separated list of them, got '" +
            value + "': " + e.what());
      }
      cur.clear();
    };
    for (char c : value) {
      if (c == ',')
        flush();
      else
        cur += c;
    }
    flush();
    return lambda_schedules(std::move(s));
  }
  if (key == "rho") {
    const double v = parse_number(key, value, "a number in [0, 1]");
    if (v < 0 || v > 1)
      throw std::invalid_argument("SurgeonOptions::set: option 'rho' expects a number in [0, 1], got '" + value + "'");
    return rho(v);
  }
  if (key == "eps") {
    const double v = parse_number(key, value, "a number >= 0");
    if (v < 0)
      throw std::invalid_argument("SurgeonOptions::set: option 'eps' expects a number >= 0, got '" + value + "'");
    return eps(v);
  }
  if (key == "ema_order") {
    if (value == "update_then_project") return ema_order(EmaOrder::UpdateThenProject);
    if (value == "project_then_update") return ema_order(EmaOrder::ProjectThenUpdate);
    throw std::invalid_argument(
        "SurgeonOptions::set: option 'ema_order' expects update_then_project or "
        "project_then_update, got '" +
        value + "'");
  }
  if (key == "ema_init") {
    if (value == "first_grad") return ema_init(EmaInit::FirstGrad);
    if (value == "zeros") return ema_init(EmaInit::Zeros);
    if (value == "random") return ema_init(EmaInit::Random);
    throw std::invalid_argument("SurgeonOptions::set: option 'ema_init' expects first_grad, zeros or random, got '" +
                                value + "'");
  }
  if (key == "rescale") return rescale(parse_bool(key, value));
  if (key == "ratio_only") return ratio_only(parse_bool(key, value));
  if (key == "seed") {
    const double v = parse_number(key, value, "a non-negative integer");
    if (v < 0 || v != std::floor(v) || v > 9.007199254740992e15) {
      throw std::invalid_argument("SurgeonOptions::set: option 'seed' expects a non-negative integer, got '" + value +
                                  "'");
    }
    return seed(static_cast<uint64_t>(v));
  }
  {
    const auto mk = method_keys();
    if (std::find(mk.begin(), mk.end(), key) != mk.end()) return method_option(key, value);
  }
  throw std::invalid_argument("SurgeonOptions::set: unknown option '" + key + "' (known: " + join(keys()) + ")");
}

std::string SurgeonOptions::describe() const {
  std::ostringstream os;
  os << "lambda=";
  for (size_t k = 0; k < lambda_schedules_.size(); ++k) os << (k ? "," : "") << lambda_schedules_[k]->describe();
  os << " rho=" << (rho_ ? num(*rho_) : std::string("default")) << " eps=" << eps_
     << " ema_order=" << to_string(ema_order_) << " ema_init=" << to_string(ema_init_)
     << " rescale=" << (rescale_ ? "true" : "false") << " ratio_only=" << (ratio_only_ ? "true" : "false")
     << " seed=" << seed_;
  for (const auto& kv : method_options_) os << " " << kv.first << "=" << kv.second;
  return os.str();
}

// ---- Surgeon ------------------------------------------------------------------------------------

Surgeon::Surgeon(std::string name, SurgeonOptions options) : name_(std::move(name)), options_(std::move(options)) {
  if (!(options_.eps() >= 0.0) || !std::isfinite(options_.eps())) {
    throw std::invalid_argument(name_ + ": option eps must be finite and >= 0, got " + num(options_.eps()));
  }
}

void Surgeon::set_step(int64_t step) {
  if (step < 0) throw std::invalid_argument(name_ + ".set_step: step must be >= 0, got " + std::to_string(step));
  step_ = step;
}

std::vector<double> Surgeon::lambdas_at(int64_t step, int K) const {
  const auto& s = options_.lambda_schedules();
  if (s.size() != 1 && static_cast<int>(s.size()) != K) {
    throw std::invalid_argument(name_ + ": " + std::to_string(s.size()) + " lambda values/schedules for K=" +
                                std::to_string(K) + " auxiliary losses; give one (shared by all) or K");
  }
  std::vector<double> out(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) {
    const double v = s[s.size() == 1 ? 0 : static_cast<size_t>(k)]->at(step);
    if (!std::isfinite(v) || v < 0) {
      throw std::invalid_argument(name_ + ": lambda" + std::to_string(k + 1) + " = " + num(v) + " at step " +
                                  std::to_string(step) + "; lambda must be finite and >= 0");
    }
    out[static_cast<size_t>(k)] = v;
  }
  return out;
}

void Surgeon::combine(const std::vector<GradVector>& grads, GradVector& d, SurgeryDiagnostics* diag) {
  std::vector<const GradVector*> ptrs;
  for (const GradVector& g : grads) ptrs.push_back(&g);
  combine(ptrs, {}, d, diag);
}

void Surgeon::combine(const std::vector<const GradVector*>& grads, const std::vector<double>& losses, GradVector& d,
                      SurgeryDiagnostics* diag) {
  if (grads.empty()) {
    throw std::invalid_argument(name_ + ".combine: needs at least the main gradient g0, got no gradients");
  }
  for (size_t k = 0; k < grads.size(); ++k) {
    if (!grads[k]) throw std::invalid_argument(name_ + ".combine: gradient " + std::to_string(k) + " is null");
  }
  const int64_t P = grads[0]->size();
  for (size_t k = 1; k < grads.size(); ++k) {
    if (grads[k]->size() != P) {
      throw std::invalid_argument(name_ + ".combine: gradient " + std::to_string(k) + " has " +
                                  std::to_string(grads[k]->size()) + " elements, g0 has " + std::to_string(P) +
                                  " (all gradients must cover the same parameter list)");
    }
  }
  const int K = static_cast<int>(grads.size()) - 1;
  if (K + 1 < min_tasks()) {
    throw std::invalid_argument(name_ + ".combine: " + name_ + " is a multi-task method and needs at least " +
                                std::to_string(min_tasks()) + " task gradients, got " + std::to_string(K + 1));
  }
  if (!losses.empty() && losses.size() != grads.size()) {
    throw std::invalid_argument(name_ + ".combine: " + std::to_string(losses.size()) + " loss values for " +
                                std::to_string(grads.size()) + " gradients (pass K+1 values or none)");
  }
  if (d.size() == 0 && P > 0) d = GradVector(P);
  if (d.size() != P) {
    throw std::invalid_argument(name_ + ".combine: output d has " + std::to_string(d.size()) +
                                " elements, the gradients have " + std::to_string(P));
  }
  const float* d_begin = d.data();
  for (size_t k = 0; k < grads.size() && P > 0; ++k) {
    const float* g = grads[k]->data();
    if (g < d_begin + P && d_begin < g + P) {
      throw std::invalid_argument(name_ + ".combine: output d shares memory with gradient " + std::to_string(k) +
                                  "; pass a separate buffer");
    }
  }
  const std::vector<double> lambda = lambdas_at(step_, K);
  double lambda_sum = 0.0;
  for (double l : lambda) lambda_sum += l;
  const double scale = options_.rescale() ? 1.0 / (1.0 + lambda_sum) : 1.0;

  ptr_scratch_.clear();
  for (const GradVector* g : grads) ptr_scratch_.push_back(g->data());
  bytes_moved_ = 0;
  if (diag) *diag = SurgeryDiagnostics();
  if (K == 0) {
    FusedPass pass;
    pass.vectors = {ptr_scratch_[0]};
    pass.out = d.data();
    pass.coef = {scale};
    Gram G;
    if (diag) pass.gram = &G;
    bytes_moved_ += run_fused_pass(P, pass);
    if (diag) fill_common_diagnostics(G, 0, -1, Coef{scale}, *diag);
  } else {
    const Inputs in{ptr_scratch_, K, P, lambda, scale, options_.eps(), losses};
    combine_impl(in, d.data(), diag);
  }
  if (diag) {
    diag->lambdas = lambda;
    diag->scale = scale;
  }
  ++step_;
}

StateDict Surgeon::state_dict() const {
  StateDict sd;
  sd.set_string("method", name_);
  sd.set_int("step", step_);
  save_state(sd);
  return sd;
}

void Surgeon::load_state_dict(const StateDict& state) {
  const std::string& method = state.get_string("method");
  if (method != name_) {
    throw std::invalid_argument(name_ + ".load_state_dict: the state was saved by surgeon '" + method +
                                "', expected '" + name_ + "'");
  }
  const int64_t step = state.get_int("step");
  if (step < 0)
    throw std::invalid_argument(name_ + ".load_state_dict: 'step' is negative (" + std::to_string(step) + ")");
  load_state(state);
  step_ = step;
}

// ---- registry -----------------------------------------------------------------------------------

namespace {

struct Entry {
  std::string name;
  std::vector<std::string> aliases;
  std::string summary;
  SurgeonFactory factory;
};

struct Registry {
  std::vector<Entry> entries;
  std::vector<std::string> errors;  // duplicate registrations, reported on first use
};

Registry& registry() {
  static Registry r;
  return r;
}

// Lower case, '_' -> '-': "Dynamic_Barrier" finds "dynamic-barrier".
std::string normalise(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const Entry* find(const std::string& name) {
  const std::string n = normalise(name);
  for (const Entry& e : registry().entries) {
    if (e.name == n) return &e;
    for (const std::string& a : e.aliases) {
      if (a == n) return &e;
    }
  }
  return nullptr;
}

void check_registry() {
  if (!registry().errors.empty()) {
    throw std::logic_error("surgery registry: " + join(registry().errors, "; "));
  }
}

}  // namespace

SurgeonRegistration::SurgeonRegistration(std::string name, std::vector<std::string> aliases, std::string summary,
                                         SurgeonFactory factory) {
  Registry& r = registry();
  Entry e{normalise(name), {}, std::move(summary), std::move(factory)};
  for (const std::string& a : aliases) e.aliases.push_back(normalise(a));
  std::vector<std::string> all = e.aliases;
  all.push_back(e.name);
  for (const std::string& n : all) {
    if (find(n)) {
      r.errors.push_back("name '" + n + "' is registered twice (second time by '" + e.name + "')");
      return;
    }
  }
  if (!e.factory) {
    r.errors.push_back("'" + e.name + "' was registered without a factory");
    return;
  }
  r.entries.push_back(std::move(e));
}

std::vector<std::string> surgeon_names() {
  check_registry();
  std::vector<std::string> names;
  for (const Entry& e : registry().entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

namespace {
std::vector<std::string> names_where(bool multi_task) {
  std::vector<std::string> out;
  for (const std::string& n : surgeon_names()) {
    if (make_surgeon(n)->multi_task() == multi_task) out.push_back(n);
  }
  return out;
}
}  // namespace

std::vector<std::string> main_aux_surgeon_names() { return names_where(false); }
std::vector<std::string> multi_task_surgeon_names() { return names_where(true); }

std::vector<std::string> surgeon_aliases(const std::string& name) {
  check_registry();
  const Entry* e = find(name);
  if (!e) throw std::invalid_argument("surgeon_aliases: unknown method '" + name + "'");
  return e->aliases;
}

std::string surgeon_summary(const std::string& name) {
  check_registry();
  const Entry* e = find(name);
  if (!e) throw std::invalid_argument("surgeon_summary: unknown method '" + name + "'");
  return e->summary;
}

std::unique_ptr<Surgeon> make_surgeon(const std::string& name, const SurgeonOptions& options) {
  check_registry();
  const Entry* e = find(name);
  if (!e) {
    std::vector<std::string> known;
    for (const std::string& n : surgeon_names()) {
      const std::vector<std::string> al = find(n)->aliases;
      known.push_back(al.empty() ? n : n + " (" + join(al) + ")");
    }
    throw std::invalid_argument("make_surgeon: unknown method '" + name + "' (known: " + join(known) + ")");
  }
  std::unique_ptr<Surgeon> s = e->factory(options);
  if (!s) throw std::logic_error("make_surgeon: the factory of '" + e->name + "' returned null");
  return s;
}

}  // namespace surgery
}  // namespace scalpel
