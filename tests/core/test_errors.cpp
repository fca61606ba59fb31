// Error messages of core: every user-facing error names the op and the shapes involved (what was
// expected and what was found), and is of the documented type: std::invalid_argument for bad
// arguments, std::runtime_error for misuse of the autograd state (freed graph, in-place changes),
// std::logic_error for broken invariants inside an op's backward.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/grad_vector.h"
#include "core/ops.h"

using namespace scalpel;

namespace {

// The message of the E that f() throws ("" and a test failure if it throws nothing or another type).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a different exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

#define EXPECT_MSG(msg, part) \
  EXPECT_NE((msg).find(part), std::string::npos) << "missing '" << (part) << "' in: " << (msg)

Tensor zeros(const Shape& s) { return Tensor::zeros(s); }
Tensor leaf(const Shape& s) { return Tensor::ones(s).set_requires_grad(); }

}  // namespace

// ---- shapes of binary ops and matrix products ----------------------------------------------------

TEST(Errors, MatmulInnerMismatchReadsExactly) {
  const std::string m = message_of<std::invalid_argument>([] { matmul(zeros({32, 784}), zeros({512, 10})); });
  EXPECT_EQ(m, "matmul: inner dimensions differ: a is [32, 784], b is [512, 10]");
  const std::string b = message_of<std::invalid_argument>([] { matmul(zeros({2, 3, 4}), zeros({2, 5, 6})); });
  EXPECT_EQ(b, "matmul: inner dimensions differ: a is [2, 3, 4], b is [2, 5, 6]");
}

TEST(Errors, MatmulRankAndBatchMismatch) {
  const std::string r = message_of<std::invalid_argument>([] { matmul(zeros({4}), zeros({4, 2})); });
  EXPECT_MSG(r, "matmul: both operands need at least 2 dimensions");
  EXPECT_MSG(r, "a is [4], b is [4, 2]");
  EXPECT_MSG(r, "unsqueeze");
  const std::string b = message_of<std::invalid_argument>([] { matmul(zeros({2, 3, 4}), zeros({3, 4, 5})); });
  EXPECT_MSG(b, "matmul (batch dimensions): shapes [2] and [3] cannot be broadcast");
}

TEST(Errors, BroadcastFailuresNameOpAndBothShapes) {
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              add(zeros({3, 4}), zeros({5}));
            }),
            "add: shapes [3, 4] and [5] cannot be broadcast (dimension -1: 4 vs 5)");
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              sub(zeros({2, 3, 4}), zeros({2, 1, 5}));
            }),
            "sub: shapes [2, 3, 4] and [2, 1, 5] cannot be broadcast (dimension -1: 4 vs 5)");
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              mul(zeros({2, 3}), zeros({4, 3}));
            }),
            "mul: shapes [2, 3] and [4, 3] cannot be broadcast (dimension -2: 2 vs 4)");
  EXPECT_MSG(message_of<std::invalid_argument>([] { div(zeros({3}), zeros({2})); }), "div: shapes [3] and [2]");
  EXPECT_MSG(message_of<std::invalid_argument>([] { maximum(zeros({3}), zeros({2})); }), "maximum: shapes [3] and [2]");
  EXPECT_MSG(message_of<std::invalid_argument>([] { where(zeros({3}), zeros({2}), zeros({1})); }),
             "where: shapes [3] and [2]");
  // The operators go through the same ops.
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               (void)(zeros({3, 4}) + zeros({5}));
             }),
             "add: shapes [3, 4] and [5]");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               (void)(zeros({3, 4}) * zeros({5}));
             }),
             "mul: shapes [3, 4] and [5]");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               (void)(zeros({3, 4}) - zeros({5}));
             }),
             "sub: shapes [3, 4] and [5]");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               (void)(zeros({3, 4}) / zeros({5}));
             }),
             "div: shapes [3, 4] and [5]");
}

TEST(Errors, LinearWrongInputWeightOrBias) {
  const std::string x = message_of<std::invalid_argument>([] { linear(zeros({8, 5}), zeros({3, 4})); });
  EXPECT_EQ(x, "linear: input has shape [8, 5], expected [..., 4] to match weight [3, 4]");
  const std::string w = message_of<std::invalid_argument>([] { linear(zeros({8, 4}), zeros({3, 4, 1})); });
  EXPECT_EQ(w, "linear: weight must be 2-D [out, in], got [3, 4, 1]");
  const std::string b = message_of<std::invalid_argument>([] { linear(zeros({8, 4}), zeros({3, 4}), zeros({4})); });
  EXPECT_EQ(b, "linear: bias has shape [4], expected [3]");
  const std::string s = message_of<std::invalid_argument>([] { linear(Tensor::scalar(1.0f), zeros({3, 1})); });
  EXPECT_MSG(s, "linear: input has shape []");
}

// ---- losses ---------------------------------------------------------------------------------------

TEST(Errors, CrossEntropyTargetsOutOfRangeOrWrongShape) {
  const Tensor logits = zeros({4, 5});
  const std::string hi = message_of<std::invalid_argument>([&] { cross_entropy(logits, IndexTensor({0, 7, 1, 2})); });
  EXPECT_MSG(hi, "cross_entropy: target 7 at row 1 is out of range [0, 5)");
  EXPECT_MSG(hi, "logits of shape [4, 5]");
  const std::string neg = message_of<std::invalid_argument>([&] { cross_entropy(logits, IndexTensor({0, 1, -1, 2})); });
  EXPECT_MSG(neg, "cross_entropy: target -1 at row 2 is out of range [0, 5)");
  // -1 is fine when it is the ignore_index.
  EXPECT_NO_THROW(cross_entropy(logits, IndexTensor({0, 1, -1, 2}), CrossEntropyOptions().set_ignore_index(-1)));
  const std::string shape = message_of<std::invalid_argument>([&] { cross_entropy(logits, IndexTensor({0, 1, 2})); });
  EXPECT_EQ(shape, "cross_entropy: targets have shape [3], expected [4] to match logits [4, 5]");
  const std::string shape2 = message_of<std::invalid_argument>([&] {
    cross_entropy(logits, IndexTensor({0, 1, 2, 3}, {2, 2}));
  });
  EXPECT_MSG(shape2, "targets have shape [2, 2], expected [4]");
  const std::string rank = message_of<std::invalid_argument>([] {
    cross_entropy(zeros({2, 3, 5}), IndexTensor({0, 1}));
  });
  EXPECT_MSG(rank, "cross_entropy: logits must be [N, C], got [2, 3, 5]");
  EXPECT_MSG(rank, "reshape({-1, C})");
  const std::string ls = message_of<std::invalid_argument>([&] {
    cross_entropy(logits, IndexTensor({0, 1, 2, 3}), CrossEntropyOptions().set_label_smoothing(1.0f));
  });
  EXPECT_MSG(ls, "cross_entropy: label_smoothing must be in [0, 1), got 1");
}

TEST(Errors, MseDotNormShapes) {
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              mse_loss(zeros({3, 4}), zeros({4, 3}));
            }),
            "mse_loss: shapes differ: input is [3, 4], target is [4, 3]");
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              dot(zeros({6}), zeros({2, 3}));
            }),
            "dot: shapes differ: a is [6], b is [2, 3]");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               norm(zeros({2, 3}), 2);
             }),
             "norm: dimension 2 is out of range for a tensor of rank 2");
}

// ---- index ops ----------------------------------------------------------------------------------

TEST(Errors, EmbeddingIdOutOfRange) {
  const Tensor w = zeros({5, 3});
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              embedding(w, IndexTensor({1, 5}));
            }),
            "embedding: id 5 is out of range for a vocabulary of 5 (weight [5, 3])");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { embedding(w, IndexTensor({-2})); }),
             "embedding: id -2 is out of range");
  EXPECT_MSG(message_of<std::invalid_argument>([] { embedding(zeros({5}), IndexTensor({1})); }),
             "embedding: weight must be [V, D], got [5]");
}

TEST(Errors, GatherAndIndexSelect) {
  const Tensor x = zeros({3, 4});
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              gather(x, 1, IndexTensor({0, 4}, {1, 2}));
            }),
            "gather: index 4 is out of range [0, 4) for dimension 1 of shape [3, 4]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] {
               gather(x, 1, IndexTensor({0, 1}));
             }),
             "gather: index has shape [2], expected rank 2 like the input [3, 4]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] {
               gather(x, 1, IndexTensor({0, 0, 0, 0}, {4, 1}));
             }),
             "gather: index shape [4, 1] exceeds input shape [3, 4] in dimension 0");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              index_select(x, 0, IndexTensor({0, 3}));
            }),
            "index_select: index 3 is out of range [0, 3) for dimension 0 of shape [3, 4]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] {
               index_select(x, 0, IndexTensor({0, 1}, {1, 2}));
             }),
             "index_select: index must be 1-D, got shape [1, 2]");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               IndexTensor({1, 2, 3}, {2, 2});
             }),
             "IndexTensor: 3 values do not fill shape [2, 2]");
}

// ---- shape ops ----------------------------------------------------------------------------------

TEST(Errors, ConcatAndStackMismatch) {
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              concat({zeros({2, 3}), zeros({2, 4})}, 0);
            }),
            "concat: tensor 1 has shape [2, 4], expected [2, 3] except in dimension 0");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               concat({zeros({2, 3}), zeros({2, 3, 1})}, 1);
             }),
             "concat: tensor 1 has shape [2, 3, 1], expected [2, 3] except in dimension 1");
  EXPECT_MSG(message_of<std::invalid_argument>([] { concat({}, 0); }), "concat: expected at least one tensor");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               concat({zeros({2, 3})}, 2);
             }),
             "concat: dimension 2 is out of range for a tensor of rank 2");
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              stack({zeros({2, 3}), zeros({3, 2})}, 0);
            }),
            "stack: tensor 1 has shape [3, 2], expected [2, 3] like tensor 0");
}

TEST(Errors, NarrowSelectOutOfRange) {
  const Tensor x = zeros({3, 4});
  EXPECT_EQ(message_of<std::invalid_argument>([&] { narrow(x, 1, 2, 3); }),
            "narrow: range [2, 5) is out of bounds for dimension 1 of shape [3, 4]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { narrow(x, 0, 0, -1); }), "narrow: range [0, -1)");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { narrow(x, 2, 0, 1); }),
             "narrow: dimension 2 is out of range for a tensor of rank 2 (expected -2 <= dim < 2)");
  EXPECT_EQ(message_of<std::invalid_argument>([&] { select(x, 0, 3); }),
            "select: index 3 is out of range for dimension 0 of shape [3, 4]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { select(x, 1, -5); }), "select: index -5 is out of range");
}

TEST(Errors, PermuteTransposeSqueezeExpandT) {
  const Tensor x = zeros({2, 3, 4});
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              permute(x, {0, 0, 1});
            }),
            "permute: dimension 0 is repeated in [0, 0, 1] (tensor of shape [2, 3, 4])");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { permute(x, {2, 1, -1}); }), "permute: dimension -1 is repeated");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              permute(x, {1, 0});
            }),
            "permute: got 2 dims for a tensor of shape [2, 3, 4]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { transpose(x, 0, 3); }),
             "transpose: dimension 3 is out of range for a tensor of rank 3");
  EXPECT_EQ(message_of<std::invalid_argument>([&] { squeeze(x, 1); }),
            "squeeze: dimension 1 has size 3, expected 1 (shape [2, 3, 4])");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { unsqueeze(x, 4); }), "unsqueeze: dimension 4 is out of range");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              expand(x, {3, 4});
            }),
            "expand: shape [2, 3, 4] cannot be expanded to [3, 4]");
  EXPECT_EQ(message_of<std::invalid_argument>([&] { (void)x.t(); }), "t: expected a 2-D tensor, got shape [2, 3, 4]");
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              pad2d(zeros({2, 2}), -1, 0);
            }),
            "pad2d: padding must be non-negative, got pad_h -1 and pad_w 0 for shape [2, 2]");
  EXPECT_MSG(message_of<std::invalid_argument>([] { pad2d(zeros({2}), 1, 1); }),
             "pad2d: expected at least 2 dims, got [2]");
}

// ---- reductions and elementwise parameters --------------------------------------------------------

TEST(Errors, ReductionDimsAndEmptyInputs) {
  const Tensor x = zeros({2, 3});
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              sum(x, {1, -1});
            }),
            "sum: dimension -1 is listed twice in [1, -1] (tensor of shape [2, 3])");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { mean(x, {0, 0}); }), "mean: dimension 0 is listed twice");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { sum(x, {2}); }),
             "sum: dimension 2 is out of range for a tensor of rank 2");
  EXPECT_EQ(message_of<std::invalid_argument>([] { mean(zeros({0, 3})); }), "mean: the tensor is empty (shape [0, 3])");
  EXPECT_MSG(message_of<std::invalid_argument>([] {
               mean(zeros({0, 3}), {0});
             }),
             "mean: reducing over an empty dimension (shape [0, 3])");
  EXPECT_EQ(message_of<std::invalid_argument>([] {
              max(zeros({2, 0}), 1);
            }),
            "max: dimension 1 is empty (shape [2, 0])");
  EXPECT_MSG(message_of<std::invalid_argument>([] { max(zeros({0})); }), "max: dimension 0 is empty (shape [0])");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { logsumexp(x, -3); }), "logsumexp: dimension -3 is out of range");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { softmax(x, 2); }), "softmax: dimension 2 is out of range");
  EXPECT_EQ(message_of<std::invalid_argument>([&] { sum_to(x, {4}); }),
            "sum_to: shapes [4] and [2, 3] cannot be broadcast (dimension -1: 4 vs 3)");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              sum_to(x, {2, 1, 3});
            }),
            "sum_to: shape [2, 3] cannot be summed down to [2, 1, 3]");
  EXPECT_MSG(message_of<std::invalid_argument>([] { clamp(zeros({2}), 1.0f, -1.0f); }),
             "clamp: low (1.000000) is greater than high (-1.000000)");
}

// ---- autograd misuse ----------------------------------------------------------------------------

TEST(Errors, BackwardOnNonScalarWithoutSeedOrWithAWrongSeed) {
  Tensor x = leaf({2, 3});
  Tensor y = mul(x, 2.0f);
  EXPECT_EQ(message_of<std::invalid_argument>([&] { y.backward(); }),
            "backward: output 0 has shape [2, 3]; a seed (gradient of the same shape) is required for a non-scalar "
            "output");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              y.backward(zeros({3, 2}));
            }),
            "backward: the seed has shape [3, 2], expected [2, 3]");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { grad({y}, {x}); }), "grad: output 0 has shape [2, 3]; a seed");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              backward({y, y.sum()}, {zeros({2, 3})});
            }),
            "backward: got 1 seeds for 2 outputs (give one per output, or none)");
  // Nothing happened to x.grad on the failed calls.
  EXPECT_FALSE(x.grad().defined());
}

TEST(Errors, GradOfInputOrOutputNotRequiringGrad) {
  Tensor x = leaf({2});
  Tensor c = zeros({2});
  Tensor y = mul(x, c).sum();
  EXPECT_EQ(message_of<std::invalid_argument>([&] { grad({y}, {c}, GradOptions().set_retain_graph(true)); }),
            "grad: input 0 (shape [2]) does not require grad; call set_requires_grad() on it before the forward pass");
  Tensor k = mul(c, c).sum();
  EXPECT_MSG(message_of<std::invalid_argument>([&] { k.backward(); }),
             "backward: output 0 (shape []) does not require grad: nothing it was computed from requires grad");
  Tensor n;
  {
    NoGradGuard ng;
    n = mul(x, x).sum();
  }
  EXPECT_MSG(message_of<std::invalid_argument>([&] { grad({n}, {x}); }), "or it was computed under NoGradGuard");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { grad({y}, {Tensor()}); }), "grad: input 0 is undefined");
}

TEST(Errors, VersionCounterErrorNamesTheOp) {
  {
    Tensor x = leaf({2});
    Tensor c = Tensor::from_vector({3, 4});
    Tensor y = mul(x, c).sum();
    c.add_(Tensor::ones({2}));
    EXPECT_EQ(message_of<std::runtime_error>([&] { y.backward(); }),
              "mul: a tensor saved for backward (shape [2]) was modified in place after the forward pass (version 0 -> "
              "1); clone() it before modifying, or modify a copy");
  }
  {
    // exp saves its output; changing the output through a view is caught too.
    Tensor x = leaf({2, 2});
    Tensor e = exp(x);
    Tensor y = e.sum();
    {
      NoGradGuard ng;
      e.detach().t().select(0, 1).fill_(0.0f);
      e.set({0, 0}, 1.0f);
    }
    const std::string m = message_of<std::runtime_error>([&] { y.backward(); });
    EXPECT_MSG(m, "exp: a tensor saved for backward (shape [2, 2])");
    EXPECT_MSG(m, "version 0 -> 2");
  }
  {
    Tensor a = leaf({2, 3});
    Tensor b = Tensor::ones({3, 4});
    Tensor y = matmul(a, b).sum();
    b.mul_(2.0f);
    EXPECT_MSG(message_of<std::runtime_error>([&] { y.backward(); }),
               "matmul: a tensor saved for backward (shape [3, 4])");
  }
}

TEST(Errors, SecondBackwardWithoutRetainGraphNamesTheOp) {
  Tensor x = leaf({2});
  Tensor y = tanh(x).sum();
  y.backward();
  const std::string m = message_of<std::runtime_error>([&] { y.backward(); });
  EXPECT_MSG(m, "sum: trying to differentiate through this part of the graph a second time");
  EXPECT_MSG(m, "retain_graph=true");
  // The same for grad() after a backward that freed an inner node.
  Tensor h = tanh(x);
  Tensor l0 = h.sum();
  Tensor l1 = square(h).sum();
  l0.backward();
  EXPECT_MSG(message_of<std::runtime_error>([&] { grad({l1}, {x}); }), "tanh: trying to differentiate");
}

TEST(Errors, InPlaceOnLeafRequiringGrad) {
  Tensor x = leaf({2, 2});
  const char* tail =
      ": in-place operation on a tensor that requires grad while grad mode is on; run it under "
      "NoGradGuard, or detach() the tensor first";
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.mul_(2.0f); }), std::string("mul_") + tail);
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.fill_(2.0f); }), std::string("fill_") + tail);
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.zero_(); }), std::string("fill_") + tail);
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.copy_(zeros({2, 2})); }), std::string("copy_") + tail);
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.add_(zeros({2, 2})); }), std::string("add_") + tail);
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.clamp_(0.0f, 1.0f); }), std::string("clamp_") + tail);
  EXPECT_EQ(message_of<std::runtime_error>([&] { x.set({0, 0}, 1.0f); }), std::string("set") + tail);
  // Nothing was written and the version did not move.
  EXPECT_EQ(x.to_vector(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(x.version(), 0u);
  // A non-leaf that requires grad is refused too (its view of the leaf would corrupt saved values).
  Tensor y = mul(x, 2.0f);
  EXPECT_MSG(message_of<std::runtime_error>([&] { y.mul_(2.0f); }), "mul_: in-place operation");
}

TEST(Errors, SetRequiresGradOnNonLeafAndSetGradShape) {
  Tensor x = leaf({2});
  Tensor y = mul(x, x);
  EXPECT_EQ(message_of<std::invalid_argument>([&] { y.set_requires_grad(); }),
            "set_requires_grad: only leaf tensors can be marked; this tensor was produced by 'mul' (use detach() to "
            "make a new leaf)");
  EXPECT_EQ(message_of<std::invalid_argument>([&] { x.set_grad(zeros({3})); }),
            "set_grad: the gradient has shape [3], expected [2]");
}

TEST(Errors, GradIntoBuffers) {
  Tensor w = leaf({2, 3});
  Tensor y = square(w).sum();
  EXPECT_EQ(message_of<std::invalid_argument>([&] { grad_into({y}, {w}, {}); }),
            "grad_into: got 0 buffers for 1 inputs");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              grad_into({y}, {w}, {zeros({3, 2})});
            }),
            "grad_into: buffer 0 has shape [3, 2], expected [2, 3]");
  EXPECT_EQ(message_of<std::invalid_argument>([&] {
              grad_into({y}, {w}, {zeros({3, 2}).t()});
            }),
            "grad_into: buffer 0 must be contiguous");
  Tensor h = mul(w, 2.0f);
  EXPECT_MSG(message_of<std::invalid_argument>([&] {
               grad_into({square(h).sum()}, {h}, {zeros({2, 3})});
             }),
             "grad_into: input 0 is not a leaf (produced by 'mul_scalar')");
}

TEST(Errors, GradVectorSizes) {
  Tensor a = leaf({2, 2});
  GradVector v(3);
  EXPECT_MSG(message_of<std::invalid_argument>([&] { v.scatter_to_grads({a}); }),
             "GradVector::scatter_to_grads: vector has 3");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { v.views({a}); }), "GradVector::views: vector has 3");
  EXPECT_MSG(message_of<std::invalid_argument>([&] { v.axpy(1.0f, GradVector(4)); }),
             "GradVector::axpy: sizes differ (3");
}

// ---- broken invariants inside a custom op's backward: std::logic_error -----------------------------

TEST(Errors, BackwardInvariantViolationsAreLogicErrors) {
  Tensor x = leaf({2, 3});
  {
    // A backward that returns a gradient of an incompatible shape.
    Tensor out = Tensor::zeros({2, 3});
    record("bad_shape_op", out, {x}, [](const Tensor&, GradSink& s) { s.add(0, Tensor::ones({4})); });
    const std::string m = message_of<std::logic_error>([&] { out.sum().backward(); });
    EXPECT_MSG(m, "bad_shape_op");
    EXPECT_MSG(m, "[4]");
    EXPECT_MSG(m, "[2, 3]");
  }
  {
    // accumulate() for an input that needs no gradient.
    Tensor c = zeros({2, 3});
    Tensor out = Tensor::zeros({2, 3});
    record("bad_accumulate_op", out, {x, c}, [](const Tensor&, GradSink& s) {
      if (s.needs(0)) s.add(0, Tensor::ones({2, 3}));
      s.accumulate(1);
    });
    const std::string m = message_of<std::logic_error>([&] { out.sum().backward(); });
    EXPECT_MSG(m, "bad_accumulate_op: accumulate() called for input 1 which needs no gradient");
  }
}
