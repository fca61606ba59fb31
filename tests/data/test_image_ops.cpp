// Bicubic resize against PyTorch values, the Cifar10Mnist composite rule on a tiny known case, and
// the transforms (normalize, random crop, flip, flatten).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "data/composite.h"
#include "data/image_ops.h"
#include "data/synthetic.h"
#include "data/transforms.h"

using namespace scalpel;
using namespace scalpel::data;

TEST(Bicubic, KernelValuesMatchKeysFormula) {
  // a = -0.75: W(0) = 1, W(1) = 0, W(2) = 0, W(0.5) = (a+2)/8 - (a+3)/4 + 1 = 0.59375,
  // W(1.5) = a(1.5^3 - 5*1.5^2 + 8*1.5 - 4) = -0.75 * -0.125 = 0.09375... with sign: -0.09375.
  EXPECT_DOUBLE_EQ(cubic_kernel(0.0), 1.0);
  EXPECT_DOUBLE_EQ(cubic_kernel(1.0), 0.0);
  EXPECT_DOUBLE_EQ(cubic_kernel(2.0), 0.0);
  EXPECT_DOUBLE_EQ(cubic_kernel(0.5), 0.59375);
  EXPECT_DOUBLE_EQ(cubic_kernel(-0.5), 0.59375);
  EXPECT_DOUBLE_EQ(cubic_kernel(1.5), -0.09375);
  EXPECT_DOUBLE_EQ(cubic_kernel(2.5), 0.0);
  // The 4 weights of any phase sum to 1 (partition of unity).
  for (double t : {0.0, 0.1, 0.37, 0.5, 0.9}) {
    EXPECT_NEAR(cubic_kernel(t + 1) + cubic_kernel(t) + cubic_kernel(1 - t) + cubic_kernel(2 - t), 1.0, 1e-12);
  }
}

TEST(Bicubic, UpscaleMatchesTorchInterpolate) {
  // torch 1.13: F.interpolate(x.reshape(1,1,3,3), size=(5,4), mode="bicubic", align_corners=False)
  const Tensor x = Tensor::from_vector({0, 1, 2, 3, 5, 4, 9, 0, 1}, {3, 3});
  const std::vector<float> expected = {-0.3528866f, 0.1592854f, 1.144856f, 1.893559f, 0.5755276f, 2.117645f, 3.18033f,
                                       2.997742f,   2.856446f,  4.38916f,  4.859375f, 3.928223f,  7.222483f, 3.898449f,
                                       1.744865f,   2.313742f,  10.29779f, 3.012739f, -1.155246f, 0.7975589f};
  const Tensor y = resize_bicubic(x, 5, 4);
  ASSERT_EQ(y.shape(), (Shape{5, 4}));
  const std::vector<float> got = y.to_vector();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[i], expected[i], 2e-5f) << "at " << i;
}

TEST(Bicubic, DownscaleMatchesTorchWithAndWithoutAntialias) {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = std::pow(static_cast<float>(i), 1.5f);
  const Tensor x = Tensor::from_vector(v, {1, 4, 4});
  const std::vector<float> plain = {2.86802f, 5.795864f, 9.788494f, 34.09023f, 40.96384f, 48.29002f};
  const std::vector<float> aa = {5.229418f, 8.44555f, 12.45653f, 31.2999f, 37.6715f, 44.40306f};
  const std::vector<float> got_plain = resize_bicubic(x, 2, 3, false).to_vector();
  const std::vector<float> got_aa = resize_bicubic(x, 2, 3, true).to_vector();
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(got_plain[i], plain[i], 1e-4f) << "plain at " << i;
    EXPECT_NEAR(got_aa[i], aa[i], 1e-4f) << "antialias at " << i;
  }
}

TEST(Bicubic, IdentityAndConstantArePreserved) {
  Generator g(3);
  const Tensor x = Tensor::uniform({2, 5, 7}, g);
  EXPECT_EQ(resize_bicubic(x, 5, 7).to_vector(), x.to_vector());  // integer phase: weights (0, 1, 0, 0)
  const Tensor c = Tensor::full({1, 6, 6}, 0.25f);
  for (float v : resize_bicubic(c, 9, 4).to_vector()) EXPECT_NEAR(v, 0.25f, 1e-6f);
}

TEST(Bicubic, RejectsBadShapes) {
  try {
    resize_bicubic(Tensor::zeros({4}), 2, 2);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bicubic_axis(0, 3), std::invalid_argument);
}

TEST(Composite, TinyKnownCase) {
  // 1 x 4 image: resized digit values 0, 0.3 (rounds to 0: no mask), 100.4 (-> 100), 300 (-> 255).
  const float digit[4] = {0.0f, 0.3f, 100.4f, 300.0f};
  const float bg[12] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f, 0.0f, 0.5f};
  float out[12];
  composite_pixels(bg, digit, 1, 4, out);
  const float a = 128.0f / 255.0f;
  const float gray[4] = {0.0f, 0.0f, 100.0f / 255.0f, 1.0f};
  const bool masked[4] = {false, false, true, true};
  for (int c = 0; c < 3; ++c) {
    for (int p = 0; p < 4; ++p) {
      const float al = masked[p] ? a : 0.0f;
      EXPECT_FLOAT_EQ(out[c * 4 + p], (1.0f - al) * bg[c * 4 + p] + al * gray[p]) << "channel " << c << " pixel " << p;
    }
  }
  EXPECT_FLOAT_EQ(out[0], 0.1f);                       // unmasked pixels keep the background exactly
  EXPECT_FLOAT_EQ(out[7], (1 - a) * 0.8f + a * 1.0f);  // a fully white digit pixel
}

namespace {
// A dataset of fixed images for composite tests.
std::shared_ptr<U8ImageDataset> fixed(int64_t c, int64_t h, int64_t w, std::vector<uint8_t> px,
                                      std::vector<int64_t> labels) {
  return std::make_shared<U8ImageDataset>("fixed", c, h, w, std::move(px), std::move(labels), std::vector<int64_t>{10});
}
}  // namespace

TEST(Composite, DatasetResizesDigitBicubicAndPairsByIndex) {
  // Two backgrounds (constant 51 and 204) and three digits (size = min = 2), 28x28 -> 32x32.
  std::vector<uint8_t> bgp(2 * 3 * 32 * 32);
  std::fill(bgp.begin(), bgp.begin() + 3072, 51);
  std::fill(bgp.begin() + 3072, bgp.end(), 204);
  std::vector<uint8_t> dp(3 * 28 * 28, 0);
  for (int y = 10; y < 18; ++y) {
    for (int x = 12; x < 15; ++x) dp[static_cast<size_t>(784 + y * 28 + x)] = 255;  // digit 1: a bar
  }
  CompositeDataset comp(fixed(3, 32, 32, bgp, {3, 7}), fixed(1, 28, 28, dp, {5, 1, 9}));
  ASSERT_EQ(comp.size(), 2);
  const DatasetInfo inf = comp.info();
  EXPECT_EQ(inf.input_shape, (Shape{3, 32, 32}));
  EXPECT_EQ(inf.num_classes, (std::vector<int64_t>{10, 10}));
  // Example 0: blank digit -> the background unchanged; labels (3, 5).
  Example e0 = comp.get(0);
  EXPECT_EQ(e0.labels, (std::vector<int64_t>{3, 5}));
  for (float v : e0.input.to_vector()) EXPECT_FLOAT_EQ(v, 51.0f / 255.0f);
  // Example 1: expected from our bicubic (checked against torch above) and the rule.
  Example e1 = comp.get(1);
  EXPECT_EQ(e1.labels, (std::vector<int64_t>{7, 1}));
  std::vector<float> digit(784);
  for (int i = 0; i < 784; ++i) digit[static_cast<size_t>(i)] = dp[static_cast<size_t>(784 + i)];
  std::vector<float> resized(1024);
  resize_bicubic(digit.data(), 1, 28, 28, resized.data(), 32, 32);
  std::vector<float> bgf(3072, 204.0f / 255.0f), expect(3072);
  composite_pixels(bgf.data(), resized.data(), 32, 32, expect.data());
  const std::vector<float> got = e1.input.to_vector();
  int masked = 0;
  for (int i = 0; i < 3072; ++i) {
    EXPECT_NEAR(got[static_cast<size_t>(i)], expect[static_cast<size_t>(i)], 1e-6f) << "at " << i;
    if (std::fabs(got[static_cast<size_t>(i)] - 204.0f / 255.0f) > 1e-6f) ++masked;
  }
  // The bar covers 8x3 source pixels -> roughly 9x3.4 resized, plus bicubic ringing.
  EXPECT_GT(masked / 3, 27);
  EXPECT_LT(masked / 3, 80);
}

TEST(Composite, RejectsWrongSourceShapes) {
  auto gray = fixed(1, 28, 28, std::vector<uint8_t>(784, 0), {0});
  try {
    CompositeDataset bad(gray, gray);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("background images must be [3, H, W]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[1, 28, 28]"), std::string::npos) << e.what();
  }
}

TEST(Transforms, NormalizePerChannel) {
  Generator g(0);
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 1, 3});
  const Tensor y = (*normalize({1.0f, 2.0f}, {2.0f, 4.0f}))(x, g);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{0.0f, 0.5f, 1.0f, 0.5f, 0.75f, 1.0f}));
  try {
    normalize({0.5f, 0.5f, 0.5f}, {1, 1, 1})->output_shape({1, 28, 28});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("3 channel statistics"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[1, 28, 28]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(normalize({0.0f}, {0.0f}), std::invalid_argument);
}

TEST(Transforms, RandomCropIsAShiftWithZeroFill) {
  // 1 x 4 x 4 image with values 1..16; every crop must be the image shifted by (dy, dx) in
  // [-2, 2]^2 with zeros where it leaves the image.
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  const Tensor x = Tensor::from_vector(v, {1, 4, 4});
  auto crop = random_crop(2);
  std::set<std::pair<int, int>> shifts;
  for (uint64_t s = 0; s < 200; ++s) {
    Generator g(s);
    const std::vector<float> y = (*crop)(x, g).to_vector();
    bool found = false;
    for (int dy = -2; dy <= 2 && !found; ++dy) {
      for (int dx = -2; dx <= 2 && !found; ++dx) {
        bool ok = true;
        for (int r = 0; r < 4; ++r) {
          for (int c = 0; c < 4; ++c) {
            const int sr = r + dy, sc = c + dx;
            const float want = (sr >= 0 && sr < 4 && sc >= 0 && sc < 4) ? v[static_cast<size_t>(sr * 4 + sc)] : 0.0f;
            if (y[static_cast<size_t>(r * 4 + c)] != want) ok = false;
          }
        }
        if (ok) {
          found = true;
          shifts.insert({dy, dx});
        }
      }
    }
    EXPECT_TRUE(found) << "seed " << s;
  }
  EXPECT_EQ(shifts.size(), 25u);  // all 25 offsets occur
}

TEST(Transforms, FlipIsSeededAndMirrorsWidth) {
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  int flipped = 0;
  for (uint64_t s = 0; s < 100; ++s) {
    Generator g1(s), g2(s);
    const std::vector<float> a = (*random_horizontal_flip())(x, g1).to_vector();
    EXPECT_EQ(a, (*random_horizontal_flip())(x, g2).to_vector());  // same seed, same result
    if (a == std::vector<float>{3, 2, 1, 6, 5, 4}) {
      ++flipped;
    } else {
      EXPECT_EQ(a, x.to_vector());
    }
  }
  EXPECT_GT(flipped, 30);
  EXPECT_LT(flipped, 70);
  Generator g(0);
  EXPECT_EQ((*random_horizontal_flip(1.0f))(x, g).to_vector(), (std::vector<float>{3, 2, 1, 6, 5, 4}));
}

TEST(Transforms, FlattenAndComposeShapes) {
  auto t = compose({random_crop(1), random_horizontal_flip(), normalize(kMnistMean, kMnistStd), flatten()});
  EXPECT_EQ(t->output_shape({1, 28, 28}), (Shape{784}));
  EXPECT_TRUE(t->is_random());
  EXPECT_FALSE(flatten()->is_random());
  try {
    compose({flatten(), random_crop(2)})->output_shape({1, 4, 4});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("random_crop: expects an image [C, H, W], got shape [16]"), std::string::npos)
        << e.what();
  }
}
