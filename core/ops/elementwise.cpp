// Elementwise ops: forward and backward side by side.
//
// Binary ops broadcast like NumPy; each backward returns full-size gradients and the engine sums
// them down to each input's shape (GradSink::add), so no op here handles broadcasting itself.
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/kernels/loops.h"
#include "core/kernels/vmath.h"
#include "core/ops.h"

namespace scalpel {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kGeluCoeff = 0.044715f;

void check_defined(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": " + what + " is undefined");
}
}  // namespace

// ---- binary -------------------------------------------------------------------------------------

// a (A), b (B) -> out (broadcast(A, B))
Tensor add(const Tensor& a, const Tensor& b) {
  check_defined(a, "add", "a");
  check_defined(b, "add", "b");
  Tensor out =
      kernels::map2(a, b, broadcast_shapes(a.shape(), b.shape(), "add"), [](float x, float y) { return x + y; });
  if (should_record({a, b})) {
    record("add", out, {a, b}, [](const Tensor& g, GradSink& s) {
      s.add(0, g);
      s.add(1, g);
    });
  }
  return out;
}

// a (A), b (B) -> out (broadcast(A, B))
Tensor sub(const Tensor& a, const Tensor& b) {
  check_defined(a, "sub", "a");
  check_defined(b, "sub", "b");
  Tensor out =
      kernels::map2(a, b, broadcast_shapes(a.shape(), b.shape(), "sub"), [](float x, float y) { return x - y; });
  if (should_record({a, b})) {
    record("sub", out, {a, b}, [](const Tensor& g, GradSink& s) {
      s.add(0, g);
      if (s.needs(1)) s.add(1, neg(g));
    });
  }
  return out;
}

// a (A), b (B) -> out (broadcast(A, B))
Tensor mul(const Tensor& a, const Tensor& b) {
  check_defined(a, "mul", "a");
  check_defined(b, "mul", "b");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "mul");
  Tensor out = kernels::map2(a, b, shape, [](float x, float y) { return x * y; });
  if (should_record({a, b})) {
    SavedTensor sa, sb;
    if (b.requires_grad()) sa = save(a, "mul");
    if (a.requires_grad()) sb = save(b, "mul");
    record("mul", out, {a, b}, [sa, sb](const Tensor& g, GradSink& s) {
      if (s.needs(0)) s.add(0, mul(g, s.saved(sb)));
      if (s.needs(1)) s.add(1, mul(g, s.saved(sa)));
    });
  }
  return out;
}

// a (A), b (B) -> out (broadcast(A, B))
Tensor div(const Tensor& a, const Tensor& b) {
  check_defined(a, "div", "a");
  check_defined(b, "div", "b");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "div");
  Tensor out = kernels::map2(a, b, shape, [](float x, float y) { return x / y; });
  if (should_record({a, b})) {
    record("div", out, {a, b}, [sb = save(b, "div"), so = save_output(out, "div")](const Tensor& g, GradSink& s) {
      if (s.needs(0)) s.add(0, div(g, s.saved(sb)));
      if (s.needs(1) && s.create_graph()) {
        s.add(1, mul(g, neg(div(s.saved(so), s.saved(sb)))));
      } else if (s.needs(1)) {
        // d/db (a/b) = -out/b
        Tensor t = kernels::map2(so.get(), sb.get(), so.get().shape(), [](float o, float y) { return -o / y; });
        s.add(1, mul(g, t));
      }
    });
  }
  return out;
}

// a (A) + scalar -> out (A)
Tensor add(const Tensor& a, float b) {
  check_defined(a, "add", "a");
  Tensor out = kernels::map(a, [b](float x) { return x + b; });
  if (should_record({a})) record("add_scalar", out, {a}, [](const Tensor& g, GradSink& s) { s.add(0, g); });
  return out;
}

// a (A) * scalar -> out (A)
Tensor mul(const Tensor& a, float b) {
  check_defined(a, "mul", "a");
  Tensor out = kernels::map(a, [b](float x) { return x * b; });
  if (should_record({a})) {
    record("mul_scalar", out, {a}, [b](const Tensor& g, GradSink& s) { s.add(0, mul(g, b)); });
  }
  return out;
}

// scalar - b (B) -> out (B)
Tensor rsub(float a, const Tensor& b) {
  check_defined(b, "rsub", "b");
  Tensor out = kernels::map(b, [a](float x) { return a - x; });
  if (should_record({b})) record("rsub", out, {b}, [](const Tensor& g, GradSink& s) { s.add(0, neg(g)); });
  return out;
}

// a (A), b (B) -> out (broadcast(A, B)); ties send the gradient to a.
Tensor maximum(const Tensor& a, const Tensor& b) {
  check_defined(a, "maximum", "a");
  check_defined(b, "maximum", "b");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "maximum");
  Tensor out = kernels::map2(a, b, shape, [](float x, float y) { return x >= y ? x : y; });
  if (should_record({a, b})) {
    record("maximum", out, {a, b},
           [sa = save(a, "maximum"), sb = save(b, "maximum"), shape](const Tensor& g, GradSink& s) {
             Tensor pick_a =
                 kernels::map2(sa.get(), sb.get(), shape, [](float x, float y) { return x >= y ? 1.0f : 0.0f; });
             if (s.needs(0)) s.add(0, mul(g, pick_a));
             if (s.needs(1) && s.create_graph()) {
               s.add(1, mul(g, rsub(1.0f, pick_a)));
             } else if (s.needs(1))
               s.add(1, kernels::map2(g, pick_a, shape, [](float gv, float p) { return gv * (1.0f - p); }));
           });
  }
  return out;
}

// mask (M), a (A), b (B) -> out (broadcast(M, A, B))
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  check_defined(mask, "where", "mask");
  check_defined(a, "where", "a");
  check_defined(b, "where", "b");
  const Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = kernels::map3(mask, a, b, shape, [](float m, float x, float y) { return m != 0.0f ? x : y; });
  if (should_record({a, b})) {
    record("where", out, {a, b}, [sm = save(mask, "where"), shape](const Tensor& g, GradSink& s) {
      if (s.create_graph()) {  // the mask is a constant; where() routes g differentiably
        const Tensor zero = Tensor::zeros({});
        if (s.needs(0)) s.add(0, where(sm.get(), g, zero));
        if (s.needs(1)) s.add(1, where(sm.get(), zero, g));
        return;
      }
      if (s.needs(0))
        s.add(0, kernels::map2(g, sm.get(), shape, [](float gv, float m) { return m != 0.0f ? gv : 0.0f; }));
      if (s.needs(1))
        s.add(1, kernels::map2(g, sm.get(), shape, [](float gv, float m) { return m != 0.0f ? 0.0f : gv; }));
    });
  }
  return out;
}

// ---- unary --------------------------------------------------------------------------------------

namespace {
// Records a unary op whose derivative is a function of the input x: dx = g * df(x). dft is the
// same derivative built from differentiable ops (for create_graph sweeps): dx = g * dft(x).
template <class DF, class DFT>
void record_unary_x(const char* name, Tensor& out, const Tensor& a, DF df, DFT dft) {
  record(name, out, {a}, [sa = save(a, name), df, dft](const Tensor& g, GradSink& s) {
    if (s.create_graph()) {
      s.add(0, mul(g, dft(s.saved(sa))));
      return;
    }
    s.add(0, kernels::map2(g, sa.get(), g.shape(), [df](float gv, float x) { return gv * df(x); }));
  });
}
// Records a unary op whose derivative is a function of the output y: dx = g * df(y), and
// g * dft(y) in a create_graph sweep (y re-attached to this node, so it differentiates again).
template <class DF, class DFT>
void record_unary_y(const char* name, Tensor& out, const Tensor& a, DF df, DFT dft) {
  record(name, out, {a}, [so = save_output(out, name), df, dft](const Tensor& g, GradSink& s) {
    if (s.create_graph()) {
      s.add(0, mul(g, dft(s.saved(so))));
      return;
    }
    s.add(0, kernels::map2(g, so.get(), g.shape(), [df](float gv, float y) { return gv * df(y); }));
  });
}
// A derivative that is piecewise constant (a mask, a sign): the same values, no history.
template <class DF>
auto constant_derivative(DF df) {
  return [df](const Tensor& x) { return kernels::map(x, df); };
}

// Phi(x) = P(Z <= x) for a standard normal Z, differentiable to any order (gelu's derivative is
// Phi(x) + x phi(x)); internal to gelu's create_graph branch.
Tensor normal_pdf(const Tensor& x) { return mul(exp(mul(square(x), -0.5f)), kInvSqrt2Pi); }
Tensor normal_cdf(const Tensor& x) {
  Tensor out = kernels::map(x, [](float v) { return __builtin_fmaf(0.5f, kernels::erf_approx(v * kInvSqrt2), 0.5f); });
  if (should_record({x})) {
    record("normal_cdf", out, {x},
           [sx = save(x, "normal_cdf")](const Tensor& g, GradSink& s) { s.add(0, mul(g, normal_pdf(s.saved(sx)))); });
  }
  return out;
}
}  // namespace

// a (A) -> out (A)
Tensor neg(const Tensor& a) {
  check_defined(a, "neg", "a");
  Tensor out = kernels::map(a, [](float x) { return -x; });
  if (should_record({a})) record("neg", out, {a}, [](const Tensor& g, GradSink& s) { s.add(0, neg(g)); });
  return out;
}

// a (A) ^ p -> out (A)
Tensor pow(const Tensor& a, float p) {
  check_defined(a, "pow", "a");
  if (p == 2.0f) return square(a);
  Tensor out = kernels::map(a, [p](float x) { return std::pow(x, p); });
  // p = 0: the derivative is 0 everywhere (as in PyTorch), not 0 * x^-1 = NaN at x = 0.
  if (should_record({a})) {
    record_unary_x(
        "pow", out, a, [p](float x) { return p == 0.0f ? 0.0f : p * std::pow(x, p - 1.0f); },
        [p](const Tensor& x) { return p == 0.0f ? Tensor::zeros(x.shape()) : mul(pow(x, p - 1.0f), p); });
  }
  return out;
}

Tensor square(const Tensor& a) {
  check_defined(a, "square", "a");
  Tensor out = kernels::map(a, [](float x) { return x * x; });
  if (should_record({a})) {
    record_unary_x(
        "square", out, a, [](float x) { return 2.0f * x; }, [](const Tensor& x) { return mul(x, 2.0f); });
  }
  return out;
}

Tensor exp(const Tensor& a) {
  check_defined(a, "exp", "a");
  Tensor out = kernels::map(a, [](float x) { return kernels::exp_approx(x); });
  if (should_record({a})) {
    record_unary_y(
        "exp", out, a, [](float y) { return y; }, [](const Tensor& y) { return y; });
  }
  return out;
}

Tensor log(const Tensor& a) {
  check_defined(a, "log", "a");
  Tensor out = kernels::map(a, [](float x) { return std::log(x); });
  if (should_record({a})) {
    record_unary_x(
        "log", out, a, [](float x) { return 1.0f / x; }, [](const Tensor& x) { return pow(x, -1.0f); });
  }
  return out;
}

Tensor sqrt(const Tensor& a) {
  check_defined(a, "sqrt", "a");
  Tensor out = kernels::map(a, [](float x) { return std::sqrt(x); });
  if (should_record({a})) {
    record_unary_y(
        "sqrt", out, a, [](float y) { return 0.5f / y; }, [](const Tensor& y) { return mul(pow(y, -1.0f), 0.5f); });
  }
  return out;
}

Tensor abs(const Tensor& a) {
  check_defined(a, "abs", "a");
  Tensor out = kernels::map(a, [](float x) { return std::fabs(x); });
  if (should_record({a})) {
    const auto sign = [](float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); };
    record_unary_x("abs", out, a, sign, constant_derivative(sign));
  }
  return out;
}

Tensor tanh(const Tensor& a) {
  check_defined(a, "tanh", "a");
  Tensor out = kernels::map(a, [](float x) { return std::tanh(x); });
  if (should_record({a})) {
    record_unary_y(
        "tanh", out, a, [](float y) { return 1.0f - y * y; }, [](const Tensor& y) { return rsub(1.0f, square(y)); });
  }
  return out;
}

Tensor sigmoid(const Tensor& a) {
  check_defined(a, "sigmoid", "a");
  Tensor out = kernels::map(a, [](float x) {
    // Stable for large |x|: never exponentiates a large positive number.
    if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
    const float e = std::exp(x);
    return e / (1.0f + e);
  });
  if (should_record({a})) {
    record_unary_y(
        "sigmoid", out, a, [](float y) { return y * (1.0f - y); },
        [](const Tensor& y) { return mul(y, rsub(1.0f, y)); });
  }
  return out;
}

Tensor relu(const Tensor& a) {
  check_defined(a, "relu", "a");
  Tensor out = kernels::map(a, [](float x) { return x > 0.0f ? x : 0.0f; });
  if (should_record({a})) {
    const auto step = [](float y) { return y > 0.0f ? 1.0f : 0.0f; };
    record_unary_y("relu", out, a, step, constant_derivative(step));
  }
  return out;
}

// a (A), b (B) -> out (broadcast(A, B)) = relu(a + b); dA = dB = g * (out > 0 ? 1 : 0), as relu's
// backward followed by add's.
Tensor add_relu(const Tensor& a, const Tensor& b) {
  check_defined(a, "add_relu", "a");
  check_defined(b, "add_relu", "b");
  Tensor out = kernels::map2(a, b, broadcast_shapes(a.shape(), b.shape(), "add_relu"), [](float x, float y) {
    const float v = x + y;
    return v > 0.0f ? v : 0.0f;
  });
  if (should_record({a, b})) {
    record("add_relu", out, {a, b}, [so = save(out, "add_relu")](const Tensor& g, GradSink& s) {
      const Tensor gm =
          s.create_graph()
              ? mul(g, kernels::map(so.get(), [](float y) { return y > 0.0f ? 1.0f : 0.0f; }))
              : kernels::map2(g, so.get(), g.shape(), [](float gv, float y) { return gv * (y > 0.0f ? 1.0f : 0.0f); });
      s.add(0, gm);
      s.add(1, gm);
    });
  }
  return out;
}

Tensor gelu(const Tensor& a, GeluApprox approx) {
  check_defined(a, "gelu", "a");
  if (approx == GeluApprox::Tanh) {
    Tensor out = kernels::map(a, [](float x) {
      const float u = kSqrt2OverPi * (x + kGeluCoeff * x * x * x);
      return 0.5f * x * (1.0f + std::tanh(u));
    });
    if (should_record({a})) {
      record_unary_x(
          "gelu_tanh", out, a,
          [](float x) {
            const float u = kSqrt2OverPi * (x + kGeluCoeff * x * x * x);
            const float t = std::tanh(u);
            return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCoeff * x * x);
          },
          [](const Tensor& x) {
            const Tensor t = tanh(mul(add(x, mul(pow(x, 3.0f), kGeluCoeff)), kSqrt2OverPi));
            const Tensor inner = add(mul(square(x), 3.0f * kGeluCoeff), 1.0f);
            return add(mul(add(t, 1.0f), 0.5f), mul(mul(mul(x, rsub(1.0f, square(t))), 0.5f * kSqrt2OverPi), inner));
          });
    }
    return out;
  }
  // Explicit fused multiply-adds (and vmath.h inside): the same bits whether a loop is vectorized.
  Tensor out = kernels::map(a, [](float x) {
    const float h = 0.5f * x;
    return __builtin_fmaf(h, kernels::erf_approx(x * kInvSqrt2), h);
  });
  if (should_record({a})) {
    record_unary_x(
        "gelu", out, a,
        [](float x) {
          const float phi = kInvSqrt2Pi * kernels::exp_approx((-0.5f * x) * x);  // standard normal pdf
          return __builtin_fmaf(x, phi, __builtin_fmaf(0.5f, kernels::erf_approx(x * kInvSqrt2), 0.5f));
        },
        [](const Tensor& x) { return add(normal_cdf(x), mul(x, normal_pdf(x))); });
  }
  return out;
}

Tensor clamp(const Tensor& a, float low, float high) {
  check_defined(a, "clamp", "a");
  if (low > high) {
    throw std::invalid_argument("clamp: low (" + std::to_string(low) + ") is greater than high (" +
                                std::to_string(high) + ")");
  }
  Tensor out = kernels::map(a, [low, high](float x) { return x < low ? low : (x > high ? high : x); });
  if (should_record({a})) {
    const auto inside = [low, high](float x) { return (x >= low && x <= high) ? 1.0f : 0.0f; };
    record_unary_x("clamp", out, a, inside, constant_derivative(inside));
  }
  return out;
}

}  // namespace scalpel
