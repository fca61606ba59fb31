// Tensor basics: factories, views and their storage sharing, contiguous/clone/detach, element
// access, printing, the version counter, storage alignment, and the Generator.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.h"

using namespace scalpel;

namespace {

std::vector<float> iota(int64_t n, float start = 0.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

// Expects `f` to throw E whose message contains every one of `parts`.
template <class E, class F>
void expect_throw_msg(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception containing '" << *parts.begin() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
  }
}

bool shares_storage(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }

}  // namespace

// ---- factories ----------------------------------------------------------------------------------

TEST(TensorFactory, ZerosOnesFullScalar) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.to_vector(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(Tensor::ones({4}).to_vector(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(Tensor::full({2, 2}, -1.5f).to_vector(), std::vector<float>(4, -1.5f));
  Tensor s = Tensor::scalar(2.5f);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_FLOAT_EQ(s.item(), 2.5f);
  EXPECT_EQ(Tensor::zeros_like(z).shape(), z.shape());
  EXPECT_EQ(Tensor::ones_like(z).to_vector(), std::vector<float>(6, 1.0f));
  Tensor e = Tensor::zeros({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector().empty());
  expect_throw_msg<std::invalid_argument>([] { Tensor::zeros({2, -1}); }, {"negative size", "[2, -1]"});
}

TEST(TensorFactory, ArangeBothForms) {
  EXPECT_EQ(Tensor::arange(5).to_vector(), (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::arange(0).numel(), 0);
  EXPECT_EQ(Tensor::arange(1.0f, 2.0f, 0.25f).to_vector(), (std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f}));
  EXPECT_EQ(Tensor::arange(5.0f, 0.0f, -1.5f).to_vector(), (std::vector<float>{5.0f, 3.5f, 2.0f, 0.5f}));
  EXPECT_EQ(Tensor::arange(0.0f, 1.0f, 0.1f).numel(), 10);  // as torch.arange(0, 1, 0.1)
  EXPECT_EQ(Tensor::arange(3.0f, 1.0f).numel(), 0);         // empty range, not an error
  expect_throw_msg<std::invalid_argument>([] { Tensor::arange(0.0f, 1.0f, 0.0f); }, {"arange", "step"});
}

TEST(TensorFactory, FromVector) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_FLOAT_EQ(t.at({1, 0}), 4.0f);
  EXPECT_EQ(Tensor::from_vector({7, 8}).shape(), (Shape{2}));
  EXPECT_EQ(Tensor::from_vector({3}, {}).dim(), 0);
  expect_throw_msg<std::invalid_argument>(
      [] {
        Tensor::from_vector({1, 2, 3, 4, 5}, {2, 3});
      },
      {"from_vector", "5 values", "[2, 3]", "6 elements"});
}

TEST(TensorFactory, UniformAndNormalAreSeededAndHaveTheRightMoments) {
  Generator g1(42), g2(42), g3(43);
  const Tensor a = Tensor::uniform({1000}, g1, -2.0f, 3.0f);
  const Tensor b = Tensor::uniform({1000}, g2, -2.0f, 3.0f);
  const Tensor c = Tensor::uniform({1000}, g3, -2.0f, 3.0f);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());

  Generator g(7);
  const int64_t n = 100000;
  const std::vector<float> u = Tensor::uniform({n}, g, -2.0f, 3.0f).to_vector();
  double mean = 0, var = 0;
  for (float v : u) {
    ASSERT_GE(v, -2.0f);
    ASSERT_LT(v, 3.0f);
    mean += v;
  }
  mean /= n;
  for (float v : u) var += (v - mean) * (v - mean);
  var /= n;
  // U(-2, 3): mean 0.5, variance 25/12. Standard errors: 0.0046 and 0.006.
  EXPECT_NEAR(mean, 0.5, 0.03);
  EXPECT_NEAR(var, 25.0 / 12.0, 0.04);

  const std::vector<float> z = Tensor::normal({n}, g, 1.5f, 2.0f).to_vector();
  mean = var = 0;
  double m3 = 0, m4 = 0;
  for (float v : z) mean += v;
  mean /= n;
  for (float v : z) {
    const double d = (v - mean) / 2.0;
    var += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  var /= n, m3 /= n, m4 /= n;
  // N(1.5, 2^2): standardised skew 0 and kurtosis 3 (standard errors ~0.008 and ~0.015).
  EXPECT_NEAR(mean, 1.5, 0.03);
  EXPECT_NEAR(var, 1.0, 0.02);
  EXPECT_NEAR(m3, 0.0, 0.05);
  EXPECT_NEAR(m4, 3.0, 0.1);
  Generator h1(9), h2(9);
  EXPECT_EQ(Tensor::normal({64}, h1).to_vector(), Tensor::normal({64}, h2).to_vector());
}

// ---- views --------------------------------------------------------------------------------------

TEST(TensorView, ReshapeIsAViewWhenPossibleIncludingMinusOne) {
  Tensor a = Tensor::from_vector(iota(12), {3, 4});
  Tensor r = a.reshape({2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 6}));
  EXPECT_TRUE(shares_storage(a, r));
  EXPECT_EQ(r.to_vector(), iota(12));
  EXPECT_EQ(a.reshape({-1}).shape(), (Shape{12}));
  EXPECT_EQ(a.reshape({2, 1, -1, 2}).shape(), (Shape{2, 1, 3, 2}));
  // A transposed tensor can still split a dimension without copying.
  Tensor t = a.t();  // [4, 3], strides [1, 4]
  Tensor split = t.reshape({2, 2, 3});
  EXPECT_TRUE(shares_storage(a, split));
  EXPECT_FLOAT_EQ(split.at({1, 0, 2}), a.at({2, 2}));
  EXPECT_EQ(split.to_vector(), t.to_vector());
  // A narrowed block of whole rows is contiguous in memory: still a view.
  Tensor rows = a.narrow(0, 1, 2).reshape({8});
  EXPECT_TRUE(shares_storage(a, rows));
  EXPECT_EQ(rows.to_vector(), iota(8, 4.0f));
  expect_throw_msg<std::invalid_argument>([&] { a.reshape({5, -1}); }, {"reshape", "[3, 4]", "12 elements", "[5, -1]"});
  expect_throw_msg<std::invalid_argument>([&] { a.reshape({-1, -1}); }, {"reshape", "only one dimension can be -1"});
  expect_throw_msg<std::invalid_argument>([&] { a.reshape({5, 2}); }, {"reshape", "[3, 4]", "[5, 2]", "10 elements"});
}

TEST(TensorView, ReshapeCopiesWhenStridesDoNotAllowAView) {
  Tensor a = Tensor::from_vector(iota(12), {3, 4});
  Tensor t = a.t();  // [4, 3]
  Tensor flat = t.reshape({12});
  EXPECT_FALSE(shares_storage(a, flat));
  EXPECT_TRUE(flat.is_contiguous());
  EXPECT_EQ(flat.to_vector(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // A copy: writing into the source afterwards does not show up.
  a.set({0, 1}, 100.0f);
  EXPECT_FLOAT_EQ(flat.at({3}), 1.0f);
  // Every other column is not mergeable either.
  Tensor cols = Tensor::from_vector(iota(12), {3, 4}).slice(1, 0, 4).narrow(1, 1, 2);
  EXPECT_EQ(cols.reshape({6}).to_vector(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
}

// Property check of the view/copy decision: for seeded random strided views and random target
// shapes with the same element count, reshape() must give the row-major values of the source, and
// must be a view (shared storage) exactly when view() succeeds.
TEST(TensorView, ReshapeMatchesRowMajorOrderOnRandomStridedViews) {
  Generator g(99);
  int views = 0, copies = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t rank = 1 + g.randint(4);
    Shape shape;
    for (int64_t d = 0; d < rank; ++d) shape.push_back(1 + g.randint(4));
    Tensor base = Tensor::arange(shape_numel(shape)).reshape(shape);
    Tensor x = base;
    // A random chain of view ops.
    for (int step = 0; step < 3; ++step) {
      const int64_t kind = g.randint(4);
      const int64_t d = g.randint(x.dim());
      if (kind == 0 && x.dim() >= 2) {
        x = x.transpose(d, (d + 1) % x.dim());
      } else if (kind == 1 && x.size(d) > 1) {
        const int64_t len = 1 + g.randint(x.size(d) - 1);
        x = x.narrow(d, g.randint(x.size(d) - len + 1), len);
      } else if (kind == 2) {
        x = x.unsqueeze(d);
      } else if (kind == 3 && x.size(d) == 1) {
        Shape e = x.shape();
        e[d] = 2 + g.randint(2);
        x = x.expand(e);
      }
    }
    // A random factorisation of numel into a new shape (with size-1 dims sprinkled in).
    int64_t rest = x.numel();
    Shape target;
    while (rest > 1) {
      int64_t f = 2;
      while (rest % f != 0) ++f;
      int64_t size = 1;
      while (rest % f == 0 && g.randint(2) == 0) {
        size *= f;
        rest /= f;
      }
      if (size == 1) {
        size = f;
        rest /= f;
      }
      target.push_back(size);
      if (g.randint(4) == 0) target.push_back(1);
    }
    if (target.empty()) target.push_back(1);
    const std::vector<float> expected = x.contiguous().to_vector();
    Tensor r = x.reshape(target);
    ASSERT_EQ(r.shape(), target);
    ASSERT_EQ(r.to_vector(), expected) << "shape " << shape_str(x.shape()) << " strides " << shape_str(x.strides())
                                       << " -> " << shape_str(target);
    bool viewable = true;
    try {
      Tensor v = x.view(target);
      EXPECT_EQ(v.to_vector(), expected);
    } catch (const std::invalid_argument&) {
      viewable = false;
    }
    EXPECT_EQ(shares_storage(r, base), viewable);
    // A contiguous source is always viewable.
    if (x.is_contiguous()) {
      EXPECT_TRUE(viewable) << shape_str(x.shape()) << " -> " << shape_str(target);
    }
    (viewable ? views : copies) += 1;
  }
  // Both paths were exercised.
  EXPECT_GT(views, 50);
  EXPECT_GT(copies, 20);
}

TEST(TensorView, ViewRefusesNonViewableStrides) {
  Tensor a = Tensor::from_vector(iota(12), {3, 4});
  EXPECT_TRUE(shares_storage(a, a.view({4, 3})));
  expect_throw_msg<std::invalid_argument>([&] { a.t().view({12}); },
                                          {"view", "shape [4, 3]", "strides [1, 4]", "[12]", "reshape()"});
  expect_throw_msg<std::invalid_argument>([&] { a.view({7}); }, {"view", "[3, 4]", "[7]"});
}

TEST(TensorView, TransposePermuteShareStorageAndIndexCorrectly) {
  Tensor a = Tensor::from_vector(iota(24), {2, 3, 4});
  Tensor t = a.transpose(0, 2);  // [4, 3, 2]
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_TRUE(shares_storage(a, t));
  EXPECT_FALSE(t.is_contiguous());
  Tensor p = a.permute({1, 2, 0});  // [3, 4, 2]
  EXPECT_EQ(p.shape(), (Shape{3, 4, 2}));
  EXPECT_TRUE(shares_storage(a, p));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        const float v = static_cast<float>(i * 12 + j * 4 + k);
        ASSERT_FLOAT_EQ(t.at({k, j, i}), v);
        ASSERT_FLOAT_EQ(p.at({j, k, i}), v);
      }
  EXPECT_EQ(a.permute({-1, 0, 1}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(Tensor::from_vector(iota(6), {2, 3}).t().to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // Writes through a view land in the base.
  NoGradGuard ng;
  p.set({2, 3, 1}, -1.0f);
  EXPECT_FLOAT_EQ(a.at({1, 2, 3}), -1.0f);
}

TEST(TensorView, NarrowSliceSelectShareStorageAndIndexCorrectly) {
  Tensor a = Tensor::from_vector(iota(20), {4, 5});
  Tensor n = a.narrow(1, 1, 3);  // columns 1..3
  EXPECT_EQ(n.shape(), (Shape{4, 3}));
  EXPECT_TRUE(shares_storage(a, n));
  EXPECT_EQ(n.offset(), 1);
  EXPECT_EQ(n.to_vector(), (std::vector<float>{1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18}));
  EXPECT_EQ(a.narrow(0, -1, 1).to_vector(), (std::vector<float>{15, 16, 17, 18, 19}));  // negative start
  EXPECT_EQ(a.slice(1, -2, 5).to_vector(), (std::vector<float>{3, 4, 8, 9, 13, 14, 18, 19}));
  EXPECT_EQ(a.slice(0, 1, -1).shape(), (Shape{2, 5}));
  EXPECT_EQ(a.slice(0, 3, 100).shape(), (Shape{1, 5}));  // clipped like Python slices
  EXPECT_EQ(a.slice(0, 3, 1).shape(), (Shape{0, 5}));
  Tensor row = a.select(0, 2);
  EXPECT_EQ(row.shape(), (Shape{5}));
  EXPECT_TRUE(shares_storage(a, row));
  EXPECT_EQ(row.to_vector(), iota(5, 10.0f));
  Tensor col = a.select(1, -1);
  EXPECT_EQ(col.to_vector(), (std::vector<float>{4, 9, 14, 19}));
  EXPECT_EQ(col.strides(), (Shape{5}));
  // Views of views compose.
  EXPECT_FLOAT_EQ(a.narrow(1, 1, 3).select(0, 3).at({2}), 18.0f);
}

TEST(TensorView, UnsqueezeSqueezeFlattenExpand) {
  Tensor a = Tensor::from_vector(iota(6), {2, 3});
  Tensor u = a.unsqueeze(1);
  EXPECT_EQ(u.shape(), (Shape{2, 1, 3}));
  EXPECT_TRUE(shares_storage(a, u));
  EXPECT_EQ(a.unsqueeze(-1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(a.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(u.squeeze(1).shape(), (Shape{2, 3}));
  EXPECT_EQ(u.squeeze(1).to_vector(), iota(6));
  expect_throw_msg<std::invalid_argument>([&] { a.squeeze(0); }, {"squeeze", "size 2", "expected 1", "[2, 3]"});

  Tensor b = Tensor::from_vector(iota(24), {2, 3, 4});
  EXPECT_EQ(b.flatten().shape(), (Shape{24}));
  EXPECT_EQ(b.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(b.flatten(0, 1).shape(), (Shape{6, 4}));
  EXPECT_TRUE(shares_storage(b, b.flatten(1)));
  EXPECT_EQ(Tensor::scalar(3.0f).flatten().shape(), (Shape{1}));
  expect_throw_msg<std::invalid_argument>([&] { b.flatten(2, 1); }, {"flatten", "start_dim 2", "end_dim 1"});

  Tensor c = Tensor::from_vector({1, 2, 3}, {3, 1});
  Tensor e = c.expand({2, 3, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_TRUE(shares_storage(c, e));
  EXPECT_FLOAT_EQ(e.at({1, 2, 3}), 3.0f);
  EXPECT_EQ(e.to_vector().size(), 24u);
  EXPECT_EQ(e.select(0, 1).select(0, 1).to_vector(), (std::vector<float>{2, 2, 2, 2}));
  {
    NoGradGuard ng;
    c.set({1, 0}, 20.0f);  // visible through every expanded position
  }
  EXPECT_FLOAT_EQ(e.at({0, 1, 0}), 20.0f);
  EXPECT_FLOAT_EQ(e.at({1, 1, 3}), 20.0f);
  expect_throw_msg<std::invalid_argument>([&] { c.expand({3}); }, {"expand", "[3, 1]", "expanded to [3]"});
  expect_throw_msg<std::invalid_argument>(
      [&] {
        c.expand({2, 2});
      },
      {"expand", "[3, 1]", "[2, 2]", "cannot be broadcast"});
}

TEST(TensorView, ContiguousReturnsSelfOrACopy) {
  Tensor a = Tensor::from_vector(iota(6), {2, 3});
  Tensor same = a.contiguous();
  EXPECT_TRUE(same.same(a));
  Tensor t = a.t();
  Tensor c = t.contiguous();
  EXPECT_FALSE(c.same(t));
  EXPECT_FALSE(shares_storage(c, a));
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.strides(), (Shape{2, 1}));
  EXPECT_EQ(c.to_vector(), t.to_vector());
  // Size-1 dimensions do not break contiguity, whatever their stride.
  Tensor u = a.unsqueeze(0).expand({1, 2, 3});
  EXPECT_TRUE(u.is_contiguous());
  EXPECT_TRUE(a.narrow(0, 1, 1).is_contiguous());
  EXPECT_FALSE(a.narrow(1, 0, 2).is_contiguous());
  EXPECT_FALSE(Tensor::from_vector({1, 2}, {2, 1}).expand({2, 3}).is_contiguous());
}

TEST(TensorView, CloneCopiesDetachShares) {
  Tensor a = Tensor::from_vector(iota(6), {2, 3}).set_requires_grad();
  Tensor c = a.clone();
  EXPECT_FALSE(shares_storage(a, c));
  EXPECT_EQ(c.to_vector(), a.to_vector());
  EXPECT_TRUE(c.requires_grad());  // clone is differentiable
  ASSERT_NE(c.grad_fn(), nullptr);
  EXPECT_STREQ(c.grad_fn()->name(), "clone");
  Tensor ct = a.t().clone();  // clone of a view is contiguous
  EXPECT_TRUE(ct.is_contiguous());
  EXPECT_EQ(ct.to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));

  Tensor d = a.detach();
  EXPECT_TRUE(shares_storage(a, d));
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.grad_fn(), nullptr);
  d.set({0, 0}, 42.0f);  // allowed: d does not require grad
  EXPECT_FLOAT_EQ(a.at({0, 0}), 42.0f);
  EXPECT_FLOAT_EQ(c.at({0, 0}), 0.0f);
  // A detached view keeps the view's geometry.
  Tensor dv = a.t().detach();
  EXPECT_EQ(dv.strides(), (Shape{1, 3}));
}

// ---- element access -----------------------------------------------------------------------------

TEST(TensorAccess, AtAndSetWithNegativeIndicesAndRangeErrors) {
  Tensor a = Tensor::from_vector(iota(12), {3, 4});
  EXPECT_FLOAT_EQ(a.at({0, 0}), 0.0f);
  EXPECT_FLOAT_EQ(a.at({2, 3}), 11.0f);
  EXPECT_FLOAT_EQ(a.at({-1, -1}), 11.0f);
  EXPECT_FLOAT_EQ(a.at({-3, 1}), 1.0f);
  a.set({-2, 2}, 50.0f);
  EXPECT_FLOAT_EQ(a.at({1, 2}), 50.0f);
  EXPECT_FLOAT_EQ(Tensor::scalar(4.0f).at({}), 4.0f);
  expect_throw_msg<std::invalid_argument>([&] { a.at({3, 0}); }, {"at", "index 3", "dimension 0 of size 3", "[3, 4]"});
  expect_throw_msg<std::invalid_argument>([&] { a.at({0, -5}); }, {"at", "index -5", "dimension 1 of size 4"});
  expect_throw_msg<std::invalid_argument>([&] { a.set({0, 4}, 1.0f); }, {"set", "index 4", "dimension 1"});
  expect_throw_msg<std::invalid_argument>([&] { a.at({1}); }, {"at", "1 coordinates", "[3, 4]", "needs 2"});
  // A failed set does not bump the version.
  const uint64_t v = a.version();
  EXPECT_THROW(a.set({9, 9}, 1.0f), std::invalid_argument);
  EXPECT_EQ(a.version(), v);
}

TEST(TensorAccess, ItemNeedsExactlyOneElement) {
  EXPECT_FLOAT_EQ(Tensor::scalar(3.0f).item(), 3.0f);
  EXPECT_FLOAT_EQ(Tensor::full({1, 1, 1}, -2.0f).item(), -2.0f);
  expect_throw_msg<std::invalid_argument>([] { Tensor::zeros({2, 3}).item(); }, {"item", "one element", "[2, 3]"});
  expect_throw_msg<std::invalid_argument>([] { Tensor::zeros({0}).item(); }, {"item", "[0]"});
}

TEST(TensorAccess, ToVectorOfNonContiguousViewsIsRowMajor) {
  Tensor a = Tensor::from_vector(iota(12), {3, 4});
  EXPECT_EQ(a.t().to_vector(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(a.narrow(1, 2, 2).to_vector(), (std::vector<float>{2, 3, 6, 7, 10, 11}));
  EXPECT_EQ(a.t().narrow(0, 1, 2).to_vector(), (std::vector<float>{1, 5, 9, 2, 6, 10}));
  EXPECT_EQ(a.select(1, 0).unsqueeze(1).expand({3, 2}).to_vector(), (std::vector<float>{0, 0, 4, 4, 8, 8}));
  EXPECT_EQ(Tensor::from_vector(iota(24), {2, 3, 4}).permute({2, 0, 1}).select(0, 3).to_vector(),
            (std::vector<float>{3, 7, 11, 15, 19, 23}));
}

TEST(TensorAccess, SizeAndUndefinedTensors) {
  Tensor a = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(a.size(0), 2);
  EXPECT_EQ(a.size(-1), 4);
  expect_throw_msg<std::invalid_argument>([&] { a.size(3); }, {"size", "dimension 3", "rank 3"});
  Tensor u;
  EXPECT_FALSE(u.defined());
  expect_throw_msg<std::invalid_argument>([&] { (void)u.shape(); }, {"shape", "undefined"});
  expect_throw_msg<std::invalid_argument>([&] { add(u, a); }, {"add", "undefined"});
}

// ---- printing -----------------------------------------------------------------------------------

TEST(TensorPrint, ShowsValuesShapeAndAutogradState) {
  Tensor a = Tensor::from_vector({1.5f, -2.0f, 3.25f, 0.0f}, {2, 2});
  const std::string s = a.to_string();
  EXPECT_NE(s.find("tensor("), std::string::npos) << s;
  EXPECT_NE(s.find("1.5000"), std::string::npos) << s;
  EXPECT_NE(s.find("-2.0000"), std::string::npos) << s;
  EXPECT_NE(s.find("3.2500"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=[2, 2]"), std::string::npos) << s;
  EXPECT_EQ(s.find("grad"), std::string::npos) << s;
  // Values appear in logical (row-major) order also for a transposed view.
  const std::string st = a.t().to_string();
  EXPECT_LT(st.find("1.5000"), st.find("3.2500")) << st;
  EXPECT_LT(st.find("3.2500"), st.find("-2.0000")) << st;

  a.set_requires_grad();
  EXPECT_NE(a.to_string().find("requires_grad"), std::string::npos) << a.to_string();
  Tensor m = mul(a, a);
  EXPECT_NE(m.to_string().find("grad_fn=mul"), std::string::npos) << m.to_string();
  std::ostringstream os;
  os << Tensor::scalar(0.5f);
  EXPECT_EQ(os.str(), "tensor(0.5000, shape=[])");
  os.str("");
  os << Tensor();
  EXPECT_EQ(os.str(), "tensor(undefined)");
  EXPECT_NE(Tensor::zeros({0, 3}).to_string().find("[], shape=[0, 3]"), std::string::npos);
  // The stream's own formatting is restored afterwards.
  std::ostringstream os2;
  os2 << Tensor::scalar(1.0f) << ' ' << 0.125;
  EXPECT_EQ(os2.str(), "tensor(1.0000, shape=[]) 0.125");
}

TEST(TensorPrint, LargeTensorsAreSummarized) {
  const std::string s = Tensor::arange(2000).to_string();
  EXPECT_NE(s.find("..."), std::string::npos);
  EXPECT_NE(s.find("0.0000"), std::string::npos);
  EXPECT_NE(s.find("1999.0000"), std::string::npos);
  EXPECT_EQ(s.find("1000.0000"), std::string::npos);
  EXPECT_LT(s.size(), 300u) << s.size();
  EXPECT_NE(s.find("shape=[2000]"), std::string::npos);
  const std::string m = Tensor::arange(1200).reshape({30, 40}).to_string();
  EXPECT_NE(m.find("..."), std::string::npos);
  EXPECT_NE(m.find("1199.0000"), std::string::npos);  // last row, last column
  EXPECT_EQ(m.find("600.0000"), std::string::npos);   // row 15 is elided
  // A small tensor is printed in full.
  EXPECT_EQ(Tensor::arange(20).to_string().find("..."), std::string::npos);
}

// ---- version counter ----------------------------------------------------------------------------

TEST(TensorVersion, BumpedByEveryInPlaceOpAndSharedByViews) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_EQ(a.version(), 0u);
  a.fill_(1.0f);
  EXPECT_EQ(a.version(), 1u);
  a.copy_(Tensor::from_vector({1, 2, 3}));  // broadcast source
  EXPECT_EQ(a.version(), 2u);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  a.add_(Tensor::ones({2, 3}), 2.0f);
  EXPECT_EQ(a.version(), 3u);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{3, 4, 5, 3, 4, 5}));
  a.mul_(0.5f);
  EXPECT_EQ(a.version(), 4u);
  a.set({0, 0}, 9.0f);
  EXPECT_EQ(a.version(), 5u);
  a.zero_();
  EXPECT_EQ(a.version(), 6u);
  a.clamp_(-1.0f, 1.0f);
  EXPECT_EQ(a.version(), 7u);
  // Views share the counter in both directions.
  Tensor v = a.t();
  Tensor d = a.detach();
  EXPECT_EQ(v.version(), 7u);
  v.narrow(0, 0, 1).fill_(2.0f);
  EXPECT_EQ(a.version(), 8u);
  EXPECT_EQ(d.version(), 8u);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{2, 0, 0, 2, 0, 0}));
  // A clone has its own counter; reading never bumps.
  Tensor c = a.clone();
  EXPECT_EQ(c.version(), 0u);
  (void)a.to_vector();
  (void)a.at({0, 0});
  EXPECT_EQ(a.version(), 8u);
  // In-place ops into a strided view write only the view's elements.
  Tensor b = Tensor::zeros({3, 3});
  b.narrow(1, 1, 1).fill_(5.0f);
  EXPECT_EQ(b.to_vector(), (std::vector<float>{0, 5, 0, 0, 5, 0, 0, 5, 0}));
  expect_throw_msg<std::invalid_argument>([&] { b.copy_(Tensor::zeros({2})); }, {"copy_", "[2]", "[3, 3]"});
  expect_throw_msg<std::invalid_argument>([&] { b.add_(Tensor::zeros({4, 3, 3})); }, {"add_", "[4, 3, 3]", "[3, 3]"});
}

TEST(TensorVersion, InPlaceOpsReadAnOverlappingSourceAsItWasBefore) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  a.copy_(a.t());
  EXPECT_EQ(a.to_vector(), (std::vector<float>{1, 3, 2, 4}));
  Tensor b = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  b.add_(b.t());  // symmetric result
  EXPECT_EQ(b.to_vector(), (std::vector<float>{2, 5, 5, 8}));
  Tensor c = Tensor::arange(6);
  c.narrow(0, 1, 5).copy_(c.narrow(0, 0, 5));  // shift right by one
  EXPECT_EQ(c.to_vector(), (std::vector<float>{0, 0, 1, 2, 3, 4}));
  Tensor d = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  d.add_(d.select(0, 0), 10.0f);  // a broadcast row of d itself
  EXPECT_EQ(d.to_vector(), (std::vector<float>{11, 22, 13, 24, 15, 26}));
  Tensor e = Tensor::from_vector({1, 2, 3});
  e.add_(e);  // exact aliasing is element for element
  EXPECT_EQ(e.to_vector(), (std::vector<float>{2, 4, 6}));
}

TEST(TensorVersion, InPlaceWritesIntoExpandedViewsAreRefused) {
  Tensor c = Tensor::from_vector({1, 2, 3}, {3, 1});
  Tensor e = c.expand({3, 4});
  for (const auto& op : std::vector<std::function<void()>>{[&] { e.mul_(2.0f); }, [&] { e.fill_(0.0f); },
                                                           [&] {
                                                             e.add_(Tensor::ones({3, 4}));
                                                           },
                                                           [&] {
                                                             e.copy_(Tensor::ones({3, 4}));
                                                           },
                                                           [&] { e.clamp_(0.0f, 1.0f); }}) {
    expect_throw_msg<std::invalid_argument>(op, {"in-place", "overlap", "shape [3, 4]", "strides [1, 0]", "expand()"});
  }
  EXPECT_EQ(c.to_vector(), (std::vector<float>{1, 2, 3}));  // untouched
  EXPECT_EQ(c.version(), 0u);
  // A size-1 expanded dim (stride 0 but a single element) is fine, and so is the clone.
  Tensor one = Tensor::from_vector({5}, {1}).expand({1});
  one.mul_(2.0f);
  EXPECT_FLOAT_EQ(one.item(), 10.0f);
  Tensor copy = e.clone();
  copy.mul_(2.0f);
  EXPECT_EQ(copy.to_vector(), (std::vector<float>{2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6}));
}

// ---- storage ------------------------------------------------------------------------------------

TEST(TensorStorage, Is64ByteAligned) {
  for (int64_t n : {1, 3, 16, 17, 1000, 4099}) {
    Tensor t = Tensor::empty({n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.storage()->data()) % 64, 0u) << "size " << n;
    EXPECT_EQ(t.storage()->size(), n);
  }
  Generator g(1);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(Tensor::normal({5, 7}, g).data()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(Tensor::from_vector(iota(12), {3, 4}).t().contiguous().data()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(matmul(Tensor::ones({3, 5}), Tensor::ones({5, 2})).data()) % 64, 0u);
  expect_throw_msg<std::invalid_argument>([] { Storage s(-1); }, {"Storage", "negative size -1"});
}

// ---- Generator ----------------------------------------------------------------------------------

TEST(GeneratorTest, SameSeedSameStreamDifferentSeedDifferentStream) {
  Generator a(123), b(123), c(124);
  EXPECT_EQ(a.seed(), 123u);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differ += x != c.next_u64();
  }
  EXPECT_EQ(differ, 100);
  // Seed 0 is a valid seed (splitmix64 never yields the all-zero xoshiro state).
  Generator z(0);
  EXPECT_NE(z.next_u64(), z.next_u64());
  // uniform() in [0, 1), with 24 bits.
  Generator u(5);
  for (int i = 0; i < 10000; ++i) {
    const float v = u.uniform();
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 1.0f);
    ASSERT_EQ(v * 16777216.0f, std::floor(v * 16777216.0f));
  }
}

TEST(GeneratorTest, SplitIsDeterministicAndIndependent) {
  Generator p1(77), p2(77);
  Generator c1 = p1.split();
  Generator c2 = p2.split();
  EXPECT_EQ(c1.state(), c2.state());  // deterministic
  EXPECT_NE(c1.state(), p1.state());
  Generator c3 = p1.split();  // a second split differs from the first
  EXPECT_NE(c3.state(), c1.state());
  // The child's stream is uncorrelated with the parent's continuation and with its sibling.
  const int n = 20000;
  double s_pc = 0, s_cc = 0;
  for (int i = 0; i < n; ++i) {
    const double x = p1.uniform_double() - 0.5, y = c1.uniform_double() - 0.5, w = c3.uniform_double() - 0.5;
    s_pc += x * y;
    s_cc += y * w;
  }
  // Correlation of independent U(-0.5, 0.5): mean 0, standard error 1/(12 sqrt n) ~ 5.9e-4.
  EXPECT_LT(std::fabs(s_pc / n) * 12.0, 0.03);
  EXPECT_LT(std::fabs(s_cc / n) * 12.0, 0.03);
  // Drawing from the child does not advance the parent.
  Generator q(5);
  Generator child = q.split();
  const auto before = q.state();
  for (int i = 0; i < 10; ++i) child.next_u64();
  EXPECT_EQ(q.state(), before);
}

TEST(GeneratorTest, RandintRangeAndUnbiasedness) {
  Generator g(2024);
  const int64_t n = 7, draws = 70000;
  std::vector<int64_t> count(n, 0);
  for (int64_t i = 0; i < draws; ++i) {
    const int64_t v = g.randint(n);
    ASSERT_GE(v, 0);
    ASSERT_LT(v, n);
    ++count[v];
  }
  // Each bucket expects 10000 (standard deviation ~93); chi-square with 6 dof stays well below 30.
  double chi2 = 0;
  for (int64_t c : count) chi2 += (c - 10000.0) * (c - 10000.0) / 10000.0;
  EXPECT_LT(chi2, 30.0);
  EXPECT_EQ(g.randint(1), 0);
  // For n = 3 * 2^61, plain `next_u64() % n` would put 9/16 of the draws below n/2; rejection
  // sampling gives 1/2.
  const int64_t big = int64_t{3} << 61;
  int64_t low = 0;
  for (int i = 0; i < 20000; ++i) {
    const int64_t v = g.randint(big);
    ASSERT_GE(v, 0);
    ASSERT_LT(v, big);
    low += v < big / 2;
  }
  EXPECT_NEAR(static_cast<double>(low) / 20000.0, 0.5, 0.015);
  expect_throw_msg<std::invalid_argument>([&] { g.randint(0); }, {"randint", "positive", "0"});
  expect_throw_msg<std::invalid_argument>([&] { g.randint(-3); }, {"randint", "-3"});
}

TEST(GeneratorTest, StateSaveAndRestore) {
  Generator g(31);
  for (int i = 0; i < 5; ++i) g.next_u64();
  const Generator::State saved = g.state();
  std::vector<float> first;
  for (int i = 0; i < 8; ++i) first.push_back(g.normal());
  const Tensor t1 = Tensor::uniform({16}, g);
  g.set_state(saved);
  std::vector<float> second;
  for (int i = 0; i < 8; ++i) second.push_back(g.normal());
  EXPECT_EQ(first, second);
  EXPECT_EQ(Tensor::uniform({16}, g).to_vector(), t1.to_vector());
  // The state moves a different generator onto the same stream.
  Generator other(999);
  other.set_state(saved);
  g.set_state(saved);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(other.next_u64(), g.next_u64());
}

// ---- non-differentiable helpers of core/ops.h ----------------------------------------------------

TEST(TensorHelpers, Argmax) {
  Tensor a = Tensor::from_vector({1, 5, 5, 0, -1, 2, 9, 9, 3, 4, 4, 4}, {2, 2, 3});
  IndexTensor last = argmax(a, -1);
  EXPECT_EQ(last.shape, (Shape{2, 2}));
  EXPECT_EQ(last.data, (std::vector<int64_t>{1, 2, 0, 0}));  // ties: the first maximum
  IndexTensor mid = argmax(a, 1);
  EXPECT_EQ(mid.shape, (Shape{2, 3}));
  EXPECT_EQ(mid.data, (std::vector<int64_t>{0, 0, 0, 0, 0, 1}));
  IndexTensor first = argmax(a, 0);
  EXPECT_EQ(first.data, (std::vector<int64_t>{1, 1, 0, 1, 1, 1}));
  // Works on a non-contiguous view, and agrees with max() on NaN (NaN is maximal).
  EXPECT_EQ(argmax(a.select(0, 0).t(), 1).data, (std::vector<int64_t>{0, 0, 0}));
  const float nan = std::nanf("");
  EXPECT_EQ(argmax(Tensor::from_vector({1, nan, 3}), 0).data, (std::vector<int64_t>{1}));
  EXPECT_TRUE(std::isnan(max(Tensor::from_vector({1, nan, 3})).item()));
  EXPECT_THROW(argmax(a, 3), std::invalid_argument);
  expect_throw_msg<std::invalid_argument>(
      [] {
        argmax(Tensor::zeros({2, 0}), 1);
      },
      {"argmax", "dimension 1 is empty", "[2, 0]"});
}

TEST(TensorHelpers, MaxAbsDiffAndAllclose) {
  Tensor a = Tensor::from_vector({1, 2, 3});
  Tensor b = Tensor::from_vector({1, 2.5f, 2});
  EXPECT_FLOAT_EQ(max_abs_diff(a, b), 1.0f);
  EXPECT_FLOAT_EQ(max_abs_diff(a, a), 0.0f);
  EXPECT_TRUE(std::isnan(max_abs_diff(a, Tensor::from_vector({1, std::nanf(""), 3}))));
  expect_throw_msg<std::invalid_argument>([&] { max_abs_diff(a, Tensor::zeros({2})); }, {"max_abs_diff", "[3]", "[2]"});
  EXPECT_TRUE(allclose(a, a));
  EXPECT_FALSE(allclose(a, b));
  EXPECT_TRUE(allclose(a, b, 0.0f, 1.0f));
  EXPECT_FALSE(allclose(a, b, 0.0f, 0.99f));
  EXPECT_TRUE(allclose(Tensor::from_vector({100}), Tensor::from_vector({101}), 0.01f));
  EXPECT_FALSE(allclose(a, Tensor::zeros({3, 1})));  // shapes differ
  EXPECT_FALSE(allclose(Tensor::from_vector({std::nanf("")}), Tensor::from_vector({std::nanf("")})));
  Tensor m = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  EXPECT_TRUE(allclose(m.t(), Tensor::from_vector({1, 3, 2, 4}, {2, 2}), 0.0f, 0.0f));  // views compare by value
}
