// Ops on strided inputs: for seeded random layouts (transposed, permuted, narrowed, expanded
// batch dims), every op must give the same output and gradients as on contiguous copies of the
// same values. This exercises the no-copy BLAS paths of matmul (row- and column-major operands,
// merged batch rows, broadcast batches) and the strided iteration of the elementwise kernels.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "golden.h"

using namespace scalpel;
using scalpel::testing::tensors_close;

namespace {

// A tensor of `shape` with the given values whose storage layout is randomised: its dims are
// stored in a random order, possibly inside a larger buffer (narrowed), so strides are arbitrary.
Tensor random_layout(const Tensor& values, Generator& g) {
  const int64_t r = values.dim();
  std::vector<int64_t> order(r);
  for (int64_t i = 0; i < r; ++i) order[i] = i;
  for (int64_t i = r - 1; i > 0; --i) std::swap(order[i], order[g.randint(i + 1)]);
  // Storage shape: the permuted dims, each padded by 0 or 1 extra element.
  Shape storage_shape(r), pad(r);
  for (int64_t i = 0; i < r; ++i) {
    pad[i] = g.randint(2);
    storage_shape[i] = values.shape()[order[i]] + pad[i];
  }
  Tensor storage = Tensor::zeros(storage_shape);
  Tensor view = storage;
  for (int64_t i = 0; i < r; ++i) view = view.narrow(i, pad[i], values.shape()[order[i]]);
  std::vector<int64_t> inverse(r);
  for (int64_t i = 0; i < r; ++i) inverse[order[i]] = i;
  Tensor out = r > 0 ? view.permute(inverse) : view;
  out.copy_(values);
  return out.detach();
}

// Runs f on contiguous inputs and on strided copies; compares output and all gradients.
::testing::AssertionResult same_on_strided(const std::string& what,
                                           const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                           const std::vector<Tensor>& values, Generator& g, double tol) {
  std::vector<Tensor> dense, strided;
  for (const Tensor& v : values) {
    dense.push_back(v.clone().set_requires_grad());
    strided.push_back(random_layout(v, g).set_requires_grad());
  }
  Tensor yd = f(dense), ys = f(strided);
  auto res = tensors_close(ys, yd, tol, tol, what + " output");
  if (!res) return res;
  Generator rg(5);
  const Tensor seed = Tensor::normal(yd.shape(), rg);
  const auto gd = grad({yd}, dense, GradOptions().set_seeds({seed}));
  const auto gs = grad({ys}, strided, GradOptions().set_seeds({seed}));
  for (size_t k = 0; k < values.size(); ++k) {
    res = tensors_close(gs[k], gd[k], tol, tol, what + " gradient " + std::to_string(k));
    if (!res) return res;
  }
  return ::testing::AssertionSuccess();
}

Shape random_shape(Generator& g, int64_t rank, int64_t max_size) {
  Shape s;
  for (int64_t i = 0; i < rank; ++i) s.push_back(1 + g.randint(max_size));
  return s;
}

}  // namespace

// Tolerance 1e-5 (absolute and relative): BLAS may sum in a different order for transposed
// operands; values are O(1) with K <= 6.
TEST(Strided, MatmulOnRandomLayoutsAndBroadcastBatches) {
  Generator g(2025);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t M = 1 + g.randint(4), K = 1 + g.randint(6), N = 1 + g.randint(4);
    // Batch shapes of a and b that broadcast: each batch dim is shared, 1 on one side, or missing.
    const int64_t nb = g.randint(3);
    Shape ba, bb;
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t size = 1 + g.randint(3);
      const int64_t kind = g.randint(3);
      ba.push_back(kind == 1 ? 1 : size);
      bb.push_back(kind == 2 ? 1 : size);
    }
    if (nb > 0 && g.randint(2)) ba.erase(ba.begin());  // a has fewer batch dims
    Shape sa = ba, sb = bb;
    sa.insert(sa.end(), {M, K});
    sb.insert(sb.end(), {K, N});
    const Tensor a = Tensor::normal(sa, g), b = Tensor::normal(sb, g);
    EXPECT_TRUE(same_on_strided(
        "matmul " + shape_str(sa) + " x " + shape_str(sb), [](const auto& x) { return matmul(x[0], x[1]); }, {a, b}, g,
        1e-5));
  }
}

TEST(Strided, LinearOnRandomLayouts) {
  Generator g(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t in = 1 + g.randint(5), out = 1 + g.randint(4);
    Shape xs = random_shape(g, 1 + g.randint(3), 4);
    xs.back() = in;
    const Tensor x = Tensor::normal(xs, g), w = Tensor::normal({out, in}, g), b = Tensor::normal({out}, g);
    EXPECT_TRUE(same_on_strided(
        "linear " + shape_str(xs), [](const auto& v) { return linear(v[0], v[1], v[2]); }, {x, w, b}, g, 1e-5));
  }
}

// Elementwise, reduction, softmax and shape ops: the same arithmetic in the same order on any
// layout, so the results must be bit-identical (tolerance 0).
TEST(Strided, ElementwiseReductionSoftmaxAreLayoutIndependent) {
  Generator g(11);
  const std::vector<std::pair<std::string, std::function<Tensor(const std::vector<Tensor>&)>>> unary = {
      {"tanh", [](const auto& x) { return tanh(x[0]); }},
      {"gelu", [](const auto& x) { return gelu(x[0]); }},
      {"exp*x", [](const auto& x) { return mul(exp(x[0]), x[0]); }},
      {"sum dim 1", [](const auto& x) { return sum(x[0], {1}); }},
      {"mean dims 0,2",
       [](const auto& x) {
         return mean(x[0], {0, 2}, true);
       }},
      {"max dim -1", [](const auto& x) { return max(x[0], -1); }},
      {"logsumexp dim 0", [](const auto& x) { return logsumexp(x[0], 0); }},
      {"softmax dim 1", [](const auto& x) { return softmax(x[0], 1); }},
      {"log_softmax dim -1", [](const auto& x) { return log_softmax(x[0], -1); }},
      {"norm dim 2", [](const auto& x) { return norm(x[0], 2); }},
      {"reshape flatten", [](const auto& x) { return square(x[0].reshape({-1})); }},
      {"concat self",
       [](const auto& x) {
         return concat({x[0], mul(x[0], 2.0f)}, 1);
       }},
      {"pad2d", [](const auto& x) { return pad2d(x[0], 1, 1); }},
  };
  for (int trial = 0; trial < 4; ++trial) {
    const Tensor x = Tensor::normal(random_shape(g, 3, 5), g);
    for (const auto& [name, f] : unary) {
      EXPECT_TRUE(same_on_strided(name + " " + shape_str(x.shape()), f, {x}, g, 0.0));
    }
    // Binary ops with a broadcast second operand.
    Shape bs = x.shape();
    bs[g.randint(3)] = 1;
    const Tensor y = Tensor::normal(bs, g);
    EXPECT_TRUE(same_on_strided(
        "add", [](const auto& v) { return add(v[0], v[1]); }, {x, y}, g, 0.0));
    EXPECT_TRUE(same_on_strided(
        "mul", [](const auto& v) { return mul(v[0], v[1]); }, {x, y}, g, 0.0));
    EXPECT_TRUE(same_on_strided(
        "div", [](const auto& v) { return div(v[0], add(abs(v[1]), 1.0f)); }, {x, y}, g, 0.0));
  }
  // Row-wise ops on [N, C].
  const Tensor logits = Tensor::normal({6, 5}, g);
  EXPECT_TRUE(same_on_strided(
      "cross_entropy",
      [](const auto& v) {
        return cross_entropy(v[0], IndexTensor({0, 4, 2, -100, 1, 3}), CrossEntropyOptions().set_label_smoothing(0.1f));
      },
      {logits}, g, 0.0));
  EXPECT_TRUE(same_on_strided(
      "gather",
      [](const auto& v) {
        return gather(v[0], 1, IndexTensor({0, 4, 2, 2, 1, 3}, {6, 1}));
      },
      {logits}, g, 0.0));
  EXPECT_TRUE(same_on_strided(
      "index_select",
      [](const auto& v) {
        return index_select(v[0], 1, IndexTensor({4, 0, 4}));
      },
      {logits}, g, 0.0));
  EXPECT_TRUE(same_on_strided(
      "embedding",
      [](const auto& v) {
        return embedding(v[0], IndexTensor({5, 0, 5, 2}));
      },
      {logits}, g, 0.0));
}

// Stride-0 operands: an expanded batch (b [K, N] expanded to [B, K, N]) must equal plain batch
// broadcasting, and an operand expanded inside its matrix dims must equal its materialised copy.
// Tolerance 1e-5 as above.
TEST(Strided, MatmulWithExpandedOperands) {
  Generator g(3);
  const Tensor a = Tensor::normal({3, 2, 4}, g), b = Tensor::normal({4, 5}, g);
  auto expanded = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1].unsqueeze(0).expand({3, 4, 5})); };
  auto broadcast = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); };
  std::vector<Tensor> in1{a.clone().set_requires_grad(), b.clone().set_requires_grad()};
  std::vector<Tensor> in2{a.clone().set_requires_grad(), b.clone().set_requires_grad()};
  const Tensor y1 = expanded(in1), y2 = broadcast(in2);
  EXPECT_TRUE(tensors_close(y1, y2, 1e-5, 1e-5, "expanded batch output"));
  const Tensor seed = Tensor::normal(y1.shape(), g);
  const auto g1 = grad({y1}, in1, GradOptions().set_seeds({seed}));
  const auto g2 = grad({y2}, in2, GradOptions().set_seeds({seed}));
  EXPECT_TRUE(tensors_close(g1[0], g2[0], 1e-5, 1e-5, "expanded batch grad a"));
  EXPECT_TRUE(tensors_close(g1[1], g2[1], 1e-5, 1e-5, "expanded batch grad b"));

  const Tensor col = Tensor::normal({3, 1}, g), w = Tensor::normal({4, 2}, g);
  std::vector<Tensor> e{col.clone().set_requires_grad(), w.clone().set_requires_grad()};
  std::vector<Tensor> m{col.clone().set_requires_grad(), w.clone().set_requires_grad()};
  const Tensor ye = matmul(e[0].expand({3, 4}), e[1]);
  const Tensor ym = matmul(e[0].expand({3, 4}).contiguous(), e[1]);
  const Tensor yr = matmul(mul(m[0], Tensor::ones({3, 4})), m[1]);
  EXPECT_TRUE(tensors_close(ye, ym, 1e-5, 1e-5, "expanded matrix output"));
  const Tensor s2 = Tensor::normal(ye.shape(), g);
  const auto ge = grad({ye}, e, GradOptions().set_seeds({s2}));
  const auto gr = grad({yr}, m, GradOptions().set_seeds({s2}));
  EXPECT_TRUE(tensors_close(ge[0], gr[0], 1e-5, 1e-5, "expanded matrix grad col"));
  EXPECT_TRUE(tensors_close(ge[1], gr[1], 1e-5, 1e-5, "expanded matrix grad w"));
}
