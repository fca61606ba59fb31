// Module: the base of every layer and model. Holds named parameters, buffers and child modules.
//
// A module registers what it owns by name (no dots: the dotted path is built from the tree):
//
//   class Affine : public nn::Layer {
//    public:
//     Affine(int64_t n, Generator& gen) {
//       scale_ = register_parameter("scale", Tensor::ones({n}));
//       shift_ = register_parameter("shift", Tensor::zeros({n}));
//     }
//     Tensor forward(const Tensor& x) override { return x * scale_ + shift_; }
//    private:
//     Tensor scale_, shift_;
//   };
//
// named_parameters() walks the tree and returns dotted names ("layer1.0.conv1.weight") in
// registration order; these names are the keys of state_dict() and of checkpoint files.
// train()/eval() only switch the behaviour of Dropout and BatchNorm; they never change gradient
// recording (that is NoGradGuard's job). Tensors are handles, so the member `scale_` above and the
// registry share one parameter; load_state_dict() copies values into it in place.
//
// Layer is a Module with `Tensor forward(const Tensor&)`, the interface Sequential chains.
// Options structs use chained setters declared with SCALPEL_ARG (core/options.h).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "core/options.h"
#include "core/random.h"
#include "core/state_dict.h"

namespace scalpel {
namespace nn {

class Module {
 public:
  Module() = default;
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (names must be non-empty and contain no '.') ----
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

  // ---- traversal (registration order, dotted names) ----
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  std::vector<Tensor> buffers() const;
  // Every module in the tree, the root first (name ""), depth-first in registration order.
  std::vector<std::pair<std::string, Module*>> named_modules();
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  int64_t num_parameters() const;

  // ---- mode ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's gradient.
  void zero_grad();

  // ---- state ----
  // A snapshot (copies) of parameters and buffers by dotted name, plus modules' extra state
  // (e.g. dropout RNG).
  StateDict state_dict() const;
  // Copies values in place. Strict: a missing key, an unexpected key or a wrong shape throws
  // std::invalid_argument naming the key (and both shapes).
  void load_state_dict(const StateDict& sd, bool strict = true);
  void save(const std::string& path) const { state_dict().save(path); }
  void load(const std::string& path, bool strict = true) { load_state_dict(StateDict::load(path), strict); }

  // Type name and dotted path in its parent tree ("" for a root), used in error messages.
  const std::string& type_name() const { return type_name_; }
  const std::string& path() const { return path_; }
  // "Linear 'encoder.fc1'" or "Linear" for a root module.
  std::string describe() const;

 protected:
  // Hooks for state that is not a tensor (e.g. an RNG); names are relative to this module.
  virtual void save_extra_state(StateDict& /*sd*/, const std::string& /*prefix*/) const {}
  virtual void load_extra_state(const StateDict& /*sd*/, const std::string& /*prefix*/) {}
  void set_type_name(std::string n) { type_name_ = std::move(n); }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void set_path(const std::string& path);
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::string type_name_ = "Module";
  std::string path_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// A module mapping one tensor to one tensor: what Sequential chains.
class Layer : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// Chains layers; children are named "0", "1", ... in order.
class Sequential : public Layer {
 public:
  Sequential() : Layer("Sequential") {}
  template <class L>
  std::shared_ptr<L> push_back(std::shared_ptr<L> layer) {
    layers_.push_back(layer);
    return register_module(std::to_string(layers_.size() - 1), layer);
  }
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Layer& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

}  // namespace nn
}  // namespace scalpel
