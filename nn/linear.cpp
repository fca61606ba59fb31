#include "nn/linear.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "nn/init.h"

namespace scalpel {
namespace nn {

Linear::Linear(const LinearOptions& options, Generator& gen) : Layer("Linear"), options_(options) {
  if (options.in_features() <= 0 || options.out_features() <= 0) {
    throw std::invalid_argument("Linear: in_features and out_features must be positive, got " +
                                std::to_string(options.in_features()) + " and " +
                                std::to_string(options.out_features()));
  }
  weight = register_parameter("weight", Tensor::empty({options.out_features(), options.in_features()}));
  if (options.bias()) bias = register_parameter("bias", Tensor::empty({options.out_features()}));
  reset_parameters(gen);
}

void Linear::reset_parameters(Generator& gen) {
  // PyTorch's default: kaiming_uniform(a = sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in)); same bound for bias.
  const double bound = 1.0 / std::sqrt(static_cast<double>(options_.in_features()));
  init::uniform_(weight, gen, -bound, bound);
  if (bias.defined()) init::uniform_(bias, gen, -bound, bound);
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != options_.in_features()) {
    std::ostringstream os;
    os << describe() << " (" << options_.in_features() << " -> " << options_.out_features() << "): input has shape "
       << shape_str(x.shape()) << ", expected [..., " << options_.in_features() << "]";
    throw std::invalid_argument(os.str());
  }
  return linear(x, weight, bias);
}

Activation::Activation(const std::string& name) : Layer("Activation"), name_(name) {
  if (name == "relu")
    fn_ = [](const Tensor& x) { return relu(x); };
  else if (name == "gelu")
    fn_ = [](const Tensor& x) { return gelu(x); };
  else if (name == "gelu_tanh")
    fn_ = [](const Tensor& x) { return gelu(x, GeluApprox::Tanh); };
  else if (name == "tanh")
    fn_ = [](const Tensor& x) { return tanh(x); };
  else if (name == "sigmoid")
    fn_ = [](const Tensor& x) { return sigmoid(x); };
  else if (name == "identity")
    fn_ = [](const Tensor& x) { return x; };
  else {
    throw std::invalid_argument("Activation: unknown activation '" + name +
                                "' (expected relu, gelu, gelu_tanh, tanh, sigmoid or identity)");
  }
  set_type_name("Activation(" + name + ")");
}

MLP::MLP(const MLPOptions& options, Generator& gen) : Layer("MLP"), options_(options) {
  const auto& w = options.widths();
  if (w.size() < 2) {
    throw std::invalid_argument("MLP: widths needs at least {in, out}, got " + std::to_string(w.size()) + " entries");
  }
  act_ = std::make_shared<Activation>(options.activation());
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    layers_.push_back(register_module(
        "fc" + std::to_string(i), std::make_shared<Linear>(LinearOptions(w[i], w[i + 1]).bias(options.bias()), gen)));
  }
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i]->forward(h);
    if (i + 1 < layers_.size()) h = act_->forward(h);
  }
  return h;
}

Dropout::Dropout(const DropoutOptions& options, Generator& gen)
    : Layer("Dropout"), options_(options), gen_(gen.split()) {
  if (!(options.p() >= 0.0 && options.p() < 1.0)) {
    throw std::invalid_argument("Dropout: p must be in [0, 1), got " + std::to_string(options.p()));
  }
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || options_.p() == 0.0) return x;
  const float keep = static_cast<float>(1.0 - options_.p());
  const float scale = 1.0f / keep;
  Tensor mask = Tensor::empty(x.shape());
  float* m = mask.data();
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = gen_.uniform() < keep ? scale : 0.0f;
  return mul(x, mask);
}

void Dropout::save_extra_state(StateDict& sd, const std::string& prefix) const {
  sd.set_string(prefix + "rng", gen_.state_string());
}

void Dropout::load_extra_state(const StateDict& sd, const std::string& prefix) {
  if (!sd.has_scalar(prefix + "rng")) return;
  gen_.set_state_string(sd.get_string(prefix + "rng"));
}

}  // namespace nn
}  // namespace scalpel
