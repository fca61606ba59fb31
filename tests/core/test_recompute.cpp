// Recomputed saved tensors (set_recompute in core/autograd.h): batch_norm(_relu)'s output, saved by
// the next op, is rebuilt in backward from the input BN keeps anyway. These tests check that the
// gradients are the same bits with the recipes on and off (first order on every convolution
// algorithm, retained graphs, second order through create_graph), that the output's storage really
// is freed after the forward pass, and that in-place changes are honoured.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/ops.h"
#include "test_util.h"

namespace {

using scalpel::Conv2dParams;
using scalpel::ConvAlgo;
using scalpel::Tensor;
using scalpel::testing::bit_equal;
using scalpel::testing::randn;

// Restores the global switch however a test ends.
class RecomputeSwitch {
 public:
  explicit RecomputeSwitch(bool on) : prev_(scalpel::recompute_enabled()) { scalpel::set_recompute_enabled(on); }
  ~RecomputeSwitch() { scalpel::set_recompute_enabled(prev_); }

 private:
  bool prev_;
};

// A ResNet basic block and a head: conv -> bn_relu -> conv -> bn -> add_relu(x) -> bn -> mul(c).
struct Block {
  std::vector<Tensor> params;  // x, w1, g1, b1, w2, g2, b2, g3, b3, c
  explicit Block(uint64_t seed) {
    const std::vector<scalpel::Shape> shapes{{4, 8, 8, 8}, {8, 8, 3, 3}, {8}, {8}, {8, 8, 3, 3},
                                             {8},          {8},          {8}, {8}, {4, 8, 8, 8}};
    for (size_t i = 0; i < shapes.size(); ++i) {
      params.push_back(randn(shapes[i], seed + i, shapes[i].size() == 1 ? 0.5f : 1.0f).set_requires_grad());
    }
  }
  Tensor loss(ConvAlgo algo) const {
    const std::vector<Tensor>& p = params;
    Conv2dParams cp;
    cp.pad_h = cp.pad_w = 1;
    cp.algo(algo);
    const Tensor h =
        scalpel::batch_norm_relu(scalpel::conv2d(p[0], p[1], Tensor(), cp), p[2], p[3], Tensor(), Tensor(), true);
    const Tensor o = scalpel::add_relu(
        scalpel::batch_norm(scalpel::conv2d(h, p[4], Tensor(), cp), p[5], p[6], Tensor(), Tensor(), true), p[0]);
    const Tensor e = scalpel::batch_norm(o, p[7], p[8], Tensor(), Tensor(), true);
    return scalpel::sum(scalpel::mul(scalpel::mul(e, p[9]), e));
  }
};

std::vector<Tensor> grads_of(const Block& b, ConvAlgo algo, bool recompute, int sweeps = 1) {
  RecomputeSwitch sw(recompute);
  const Tensor l = b.loss(algo);
  std::vector<Tensor> g;
  for (int i = 0; i < sweeps; ++i) {
    g = scalpel::grad({l}, b.params, scalpel::GradOptions().set_retain_graph(i + 1 < sweeps));
  }
  return g;
}

TEST(Recompute, GradientsAreTheSameBitsWithAndWithoutRecipesOnEveryConvAlgorithm) {
  const Block b(11);
  for (ConvAlgo algo : {ConvAlgo::kDirect, ConvAlgo::kIm2col, ConvAlgo::kIm2colRows}) {
    const std::vector<Tensor> off = grads_of(b, algo, false), on = grads_of(b, algo, true);
    ASSERT_EQ(off.size(), on.size());
    for (size_t i = 0; i < off.size(); ++i) {
      EXPECT_TRUE(bit_equal(off[i], on[i])) << "parameter " << i << ", algorithm " << static_cast<int>(algo);
    }
  }
}

TEST(Recompute, ARetainedGraphGivesTheSameGradientOnTheSecondSweep) {
  const Block b(23);
  const std::vector<Tensor> once = grads_of(b, ConvAlgo::kDirect, true, 1);
  const std::vector<Tensor> twice = grads_of(b, ConvAlgo::kDirect, true, 2);
  for (size_t i = 0; i < once.size(); ++i) EXPECT_TRUE(bit_equal(once[i], twice[i])) << "parameter " << i;
}

TEST(Recompute, TheOutputStorageIsFreedAfterTheForwardPassOnlyWithRecipes) {
  for (bool on : {false, true}) {
    RecomputeSwitch sw(on);
    const Tensor x = randn({2, 4, 6, 6}, 5).set_requires_grad(), g = randn({4}, 6), b = randn({4}, 7);
    const Tensor w = randn({4, 4, 3, 3}, 8).set_requires_grad();
    Tensor y = scalpel::batch_norm_relu(x, g, b, Tensor(), Tensor(), true);
    const std::weak_ptr<scalpel::Storage> storage = y.storage();
    const Tensor z = scalpel::conv2d(y, w, Tensor());  // saves y for w's gradient
    y = Tensor();
    EXPECT_EQ(storage.expired(), on) << (on ? "recipes on" : "recipes off");
    const std::vector<Tensor> gr = scalpel::grad({scalpel::sum(scalpel::square(z))}, {x, w});
    EXPECT_EQ(gr[1].shape(), w.shape());
  }
}

TEST(Recompute, AnOutputChangedInPlaceBeforeItIsSavedKeepsItsStorage) {
  // The recipe describes the output as BN wrote it; after mul_ a later save must keep the changed
  // values, so the gradient of c (which reads the saved y) is 3x the unchanged one in both modes.
  std::vector<std::vector<float>> by_mode;
  for (bool on : {false, true}) {
    RecomputeSwitch sw(on);
    const Tensor x = randn({2, 3, 4, 4}, 31).set_requires_grad(), c = randn({2, 3, 4, 4}, 32).set_requires_grad();
    Tensor y = scalpel::batch_norm_relu(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
    {
      scalpel::NoGradGuard no_grad;
      y.mul_(3.0f);
    }
    const Tensor l = scalpel::sum(scalpel::mul(y, c));
    by_mode.push_back(scalpel::grad({l}, {c})[0].to_vector());
  }
  EXPECT_EQ(by_mode[0], by_mode[1]);
  const Tensor x = randn({2, 3, 4, 4}, 31);
  std::vector<float> expect = scalpel::batch_norm_relu(x, Tensor(), Tensor(), Tensor(), Tensor(), true).to_vector();
  for (float& v : expect) v *= 3.0f;
  EXPECT_EQ(by_mode[1], expect);
}

TEST(Recompute, AnInputOfTheRecipeChangedInPlaceIsReportedNamingTheOp) {
  RecomputeSwitch sw(true);
  Tensor x = randn({2, 3, 4, 4}, 41).set_requires_grad();
  const Tensor c = randn({2, 3, 4, 4}, 42).set_requires_grad();
  const Tensor y = scalpel::batch_norm_relu(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  const Tensor l = scalpel::sum(scalpel::mul(y, c));  // mul saves y as a recipe reading x
  {
    scalpel::NoGradGuard no_grad;
    x.mul_(2.0f);  // BN's node, which also saved x, does not run for c's gradient
  }
  try {
    scalpel::grad({l}, {c});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("batch_norm_relu"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("modified in place"), std::string::npos) << e.what();
  }
}

TEST(Recompute, SecondOrderGradientsAreTheSameBitsWithAndWithoutRecipes) {
  // d/dparams <d loss / d w2, u>: the rebuilt y must carry BN's history in a create_graph sweep,
  // or the parts through w1, g1 and b1 go missing.
  const Block b(53);
  const Tensor u = randn({8, 8, 3, 3}, 59);
  std::vector<std::vector<Tensor>> by_mode;
  for (bool on : {false, true}) {
    RecomputeSwitch sw(on);
    const Tensor l = b.loss(ConvAlgo::kDirect);
    const Tensor gw2 = scalpel::grad({l}, {b.params[4]}, scalpel::GradOptions().set_create_graph(true))[0];
    const Tensor inner = scalpel::sum(scalpel::mul(gw2, u));
    by_mode.push_back(scalpel::grad({inner}, {b.params[0], b.params[1], b.params[2], b.params[3]}));
  }
  for (size_t i = 0; i < by_mode[0].size(); ++i) {
    EXPECT_TRUE(bit_equal(by_mode[0][i], by_mode[1][i])) << "input " << i;
    EXPECT_GT(scalpel::sum(scalpel::square(by_mode[1][i])).item(), 0.0f) << "input " << i;
  }
}

}  // namespace
