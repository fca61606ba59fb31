#include "nn/module.h"

#include <sstream>
#include <stdexcept>

namespace scalpel {
namespace nn {

namespace {
void check_name(const std::string& name, const Module& owner, const char* what) {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw std::invalid_argument(owner.describe() + ": " + what + " name '" + name +
                                "' is invalid (names must be non-empty and contain no '.'; dotted paths are "
                                "built from the module tree)");
  }
}
}  // namespace

std::string Module::describe() const { return path_.empty() ? type_name_ : type_name_ + " '" + path_ + "'"; }

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(name, *this, "parameter");
  for (const auto& [n, p] : params_) {
    if (n == name) throw std::invalid_argument(describe() + ": parameter '" + name + "' is already registered");
  }
  if (!t.defined()) throw std::invalid_argument(describe() + ": parameter '" + name + "' is undefined");
  if (!t.is_leaf()) t = t.detach();
  t.set_requires_grad(requires_grad);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_name(name, *this, "buffer");
  for (const auto& [n, b] : buffers_) {
    if (n == name) throw std::invalid_argument(describe() + ": buffer '" + name + "' is already registered");
  }
  if (!t.defined()) throw std::invalid_argument(describe() + ": buffer '" + name + "' is undefined");
  buffers_.emplace_back(name, t.detach());
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_name(name, *this, "module");
  if (!m) throw std::invalid_argument(describe() + ": module '" + name + "' is null");
  for (const auto& [n, c] : children_) {
    if (n == name) throw std::invalid_argument(describe() + ": module '" + name + "' is already registered");
  }
  m->set_path(path_.empty() ? name : path_ + "." + name);
  m->train(training_);
  children_.emplace_back(name, std::move(m));
}

void Module::set_path(const std::string& path) {
  path_ = path;
  for (auto& [n, c] : children_) c->set_path(path + "." + n);
}

void Module::collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  std::vector<std::pair<std::string, Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [name, m] = stack.back();
    stack.pop_back();
    out.emplace_back(name, m);
    for (size_t i = m->children_.size(); i-- > 0;) {
      const auto& [cn, c] = m->children_[i];
      stack.emplace_back(name.empty() ? cn : name + "." + cn, c.get());
    }
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& [n, p] : named_parameters()) p.zero_grad();
}

StateDict Module::state_dict() const {
  // A snapshot: later training steps do not change it.
  StateDict sd;
  for (auto& [n, t] : named_parameters()) sd.set_tensor(n, t.detach().clone());
  for (auto& [n, t] : named_buffers()) sd.set_tensor(n, t.detach().clone());
  // Extra (non-tensor) state of every module in the tree.
  std::vector<std::pair<std::string, const Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [name, m] = stack.back();
    stack.pop_back();
    m->save_extra_state(sd, name.empty() ? "" : name + ".");
    for (const auto& [cn, c] : m->children_) stack.emplace_back(name.empty() ? cn : name + "." + cn, c.get());
  }
  return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  std::vector<std::pair<std::string, Tensor>> entries = named_parameters();
  for (auto& e : named_buffers()) entries.push_back(e);
  std::vector<std::string> known;
  for (auto& [name, t] : entries) {
    known.push_back(name);
    if (!sd.has_tensor(name)) {
      if (strict) {
        throw std::invalid_argument(describe() + ": load_state_dict: missing key '" + name + "' (shape " +
                                    shape_str(t.shape()) + ") in the checkpoint");
      }
      continue;
    }
    const Tensor& src = sd.tensor(name);
    if (src.shape() != t.shape()) {
      throw std::invalid_argument(describe() + ": load_state_dict: shape mismatch for '" + name + "': checkpoint has " +
                                  shape_str(src.shape()) + ", model has " + shape_str(t.shape()));
    }
  }
  if (strict) {
    for (const std::string& n : sd.tensor_names()) {
      if (std::find(known.begin(), known.end(), n) == known.end()) {
        throw std::invalid_argument(describe() + ": load_state_dict: unexpected key '" + n + "' (shape " +
                                    shape_str(sd.tensor(n).shape()) + ") in the checkpoint");
      }
    }
  }
  NoGradGuard no_grad;
  for (auto& [name, t] : entries) {
    if (sd.has_tensor(name)) t.copy_(sd.tensor(name));
  }
  std::vector<std::pair<std::string, Module*>> mods = named_modules();
  for (auto& [name, m] : mods) m->load_extra_state(sd, name.empty() ? "" : name + ".");
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& l : layers_) h = l->forward(h);
  return h;
}

}  // namespace nn
}  // namespace scalpel
