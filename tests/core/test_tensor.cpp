#include <gtest/gtest.h>

#include "core/ops.h"

using namespace scalpel;

TEST(Smoke, AddBackward) {
  Tensor a = Tensor::from_vector({1, 2, 3}).set_requires_grad();
  Tensor b = Tensor::from_vector({4, 5, 6}).set_requires_grad();
  Tensor l = sum(mul(a, b));
  l.backward();
  EXPECT_FLOAT_EQ(l.item(), 32);
  EXPECT_FLOAT_EQ(a.grad().at({1}), 5);
  EXPECT_FLOAT_EQ(b.grad().at({2}), 3);
}
