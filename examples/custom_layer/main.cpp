// A user's own differentiable op and a layer built on it, outside the Scalpel tree.
//
// softsign(x) = x / (1 + |x|), backward dx = dy / (1 + |x|)². The op records itself on the tape
// with scalpel::record (core/autograd.h); the layer SoftsignLinear = softsign(Linear(x)). main()
// checks both against central finite differences (the op's input, the layer's parameters), then
// trains the layer a few SGD steps, and exits 1 if anything is off.
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>

#include "core/autograd.h"
#include "core/ops.h"
#include "nn/linear.h"

using namespace scalpel;

// x [any shape] -> softsign(x), same shape.
Tensor softsign(const Tensor& x) {
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(xc.shape());
  const float* px = xc.data();
  float* po = out.data();
  for (int64_t i = 0; i < xc.numel(); ++i) po[i] = px[i] / (1.0f + std::fabs(px[i]));
  if (should_record({x})) {
    record("softsign", out, {x}, [sx = save(xc, "softsign")](const Tensor& grad_out, GradSink& sink) {
      if (!sink.needs(0)) return;
      const Tensor& xs = sx.get();
      const Tensor g = grad_out.contiguous();
      Tensor dx = Tensor::empty(xs.shape());
      for (int64_t i = 0; i < xs.numel(); ++i) {
        const float a = 1.0f + std::fabs(xs.data()[i]);
        dx.data()[i] = g.data()[i] / (a * a);
      }
      sink.add(0, dx);
    });
  }
  return out;
}

class SoftsignLinear : public nn::Layer {
 public:
  SoftsignLinear(int64_t in, int64_t out, Generator& gen) : Layer("SoftsignLinear") {
    fc = register_module("fc", std::make_shared<nn::Linear>(nn::LinearOptions(in, out), gen));
  }
  Tensor forward(const Tensor& x) override { return softsign(fc->forward(x)); }
  std::shared_ptr<nn::Linear> fc;
};

// Largest |analytic − numeric| of d/dt <r, f(t)> over the elements of t (central differences).
double max_gradient_error(Tensor t, const std::function<Tensor()>& f, const Tensor& r) {
  const Tensor analytic = grad({sum(mul(f(), r))}, {t})[0].contiguous();
  double worst = 0.0;
  const double h = 1e-3;
  for (int64_t i = 0; i < t.numel(); ++i) {
    NoGradGuard ng;
    const float keep = t.data()[i];
    t.data()[i] = static_cast<float>(keep + h);
    const double up = sum(mul(f(), r)).item();
    t.data()[i] = static_cast<float>(keep - h);
    const double down = sum(mul(f(), r)).item();
    t.data()[i] = keep;
    worst = std::max(worst, std::abs((up - down) / (2 * h) - analytic.data()[i]));
  }
  return worst;
}

int main() {
  Generator gen(1);
  Tensor x = Tensor::normal({4, 3}, gen);
  x.set_requires_grad(true);
  const Tensor r = Tensor::normal({4, 3}, gen);
  const double op_err = max_gradient_error(
      x, [&] { return softsign(x); }, r);
  SoftsignLinear layer(3, 2, gen);
  const Tensor r2 = Tensor::normal({4, 2}, gen);
  double layer_err = 0.0;
  for (auto& [name, p] : layer.named_parameters())
    layer_err = std::max(layer_err, max_gradient_error(
                                        p, [&] { return layer.forward(x); }, r2));
  std::printf("softsign gradcheck: max error %.2e (op), %.2e (layer parameters)\n", op_err, layer_err);
  // A few SGD steps towards a fixed target.
  const Tensor target = mul(Tensor::ones({4, 2}), 0.5f);
  double first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    layer.zero_grad();
    const Tensor loss = mean(mul(layer.forward(x) - target, layer.forward(x) - target));
    loss.backward();
    NoGradGuard ng;
    for (Tensor p : layer.parameters()) p.add_(p.grad(), -0.5f);
    (step == 0 ? first : last) = loss.item();
  }
  std::printf("training: loss %.4f -> %.4f\n", first, last);
  const bool ok = op_err < 1e-2 && layer_err < 1e-2 && last < 0.5 * first;
  std::printf("%s\n", ok ? "custom_layer: OK" : "custom_layer: FAILED");
  return ok ? 0 : 1;
}
