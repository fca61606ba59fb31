// Dense layers: Linear, MLP, the activation modules, Dropout, Flatten and Identity.
//
//   Generator gen(0);
//   auto fc = std::make_shared<nn::Linear>(nn::LinearOptions(784, 256).bias(false), gen);
//   auto mlp = std::make_shared<nn::MLP>(nn::MLPOptions({784, 256, 128, 10}).activation("relu"), gen);
//   Tensor logits = mlp->forward(x);  // x [B, 784] -> [B, 10]
//
// Every layer with parameters takes the Generator its initial values are drawn from; there is no
// hidden global RNG. Linear initialises like PyTorch: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nn/module.h"

namespace scalpel {
namespace nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  SCALPEL_ARG(int64_t, in_features);
  SCALPEL_ARG(int64_t, out_features);
  SCALPEL_ARG(bool, bias) = true;
};

// x [..., in] -> [..., out]; weight [out, in], bias [out]
class Linear : public Layer {
 public:
  Linear(const LinearOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator& gen);
  const LinearOptions& options() const { return options_; }
  Tensor weight;
  Tensor bias;  // undefined without bias

 private:
  LinearOptions options_;
};

// Elementwise activation by name: "relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "identity".
class Activation : public Layer {
 public:
  explicit Activation(const std::string& name);
  Tensor forward(const Tensor& x) override { return fn_(x); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> fn_;
};
class ReLU : public Activation {
 public:
  ReLU() : Activation("relu") {}
};
class GELU : public Activation {
 public:
  explicit GELU(bool tanh_approx = false) : Activation(tanh_approx ? "gelu_tanh" : "gelu") {}
};
class Tanh : public Activation {
 public:
  Tanh() : Activation("tanh") {}
};
class Sigmoid : public Activation {
 public:
  Sigmoid() : Activation("sigmoid") {}
};
class Identity : public Activation {
 public:
  Identity() : Activation("identity") {}
};

struct MLPOptions {
  explicit MLPOptions(std::vector<int64_t> widths) : widths_(std::move(widths)) {}
  SCALPEL_ARG(std::vector<int64_t>, widths);      // {in, hidden..., out}
  SCALPEL_ARG(std::string, activation) = "relu";  // between layers, not after the last
  SCALPEL_ARG(bool, bias) = true;
};

// Linear layers named "fc0", "fc1", ... with the activation in between. x [..., in] -> [..., out]
class MLP : public Layer {
 public:
  MLP(const MLPOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;
  const std::vector<std::shared_ptr<Linear>>& layers() const { return layers_; }

 private:
  MLPOptions options_;
  std::vector<std::shared_ptr<Linear>> layers_;
  std::shared_ptr<Activation> act_;
};

struct DropoutOptions {
  explicit DropoutOptions(double p = 0.5) : p_(p) {}
  SCALPEL_ARG(double, p);
};

// Training: zeroes each element with probability p and scales the rest by 1/(1-p); eval: identity.
// Draws from its own Generator (split from the one given), saved in state_dict as extra state.
class Dropout : public Layer {
 public:
  Dropout(const DropoutOptions& options, Generator& gen);
  Tensor forward(const Tensor& x) override;

 protected:
  void save_extra_state(StateDict& sd, const std::string& prefix) const override;
  void load_extra_state(const StateDict& sd, const std::string& prefix) override;

 private:
  DropoutOptions options_;
  Generator gen_;
};

// [N, d1, d2, ...] -> [N, d1*d2*...]
class Flatten : public Layer {
 public:
  Flatten() : Layer("Flatten") {}
  Tensor forward(const Tensor& x) override { return x.flatten(1); }
};

}  // namespace nn
}  // namespace scalpel
