// Multi-task aggregators against TorchJD's published golden values (issue 12):
// J = [[-4, 1, 1], [6, 1, 1]] (rows = tasks), atol 1e-4. TorchJD returns d = Jᵀw with the scaling
// of docs/mtl.md; MGDA also checks w.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

namespace scalpel {
namespace {

using surgery::make_surgeon;
using surgery::SurgeonOptions;
using testing::gv;

std::vector<float> run(const std::string& method, SurgeonOptions o, std::vector<double>* w = nullptr) {
  auto s = make_surgeon(method, o);
  std::vector<GradVector> g = {gv({-4, 1, 1}), gv({6, 1, 1})};
  GradVector d;
  surgery::SurgeryDiagnostics diag;
  s->combine(g, d, &diag);
  if (w) *w = diag.weights;
  return d.to_vector();
}

void expect_near(const std::vector<float>& d, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(d.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(d[i], want[i], 1e-4) << what << " index " << i;
}

TEST(MtlGolden, Mgda) {
  std::vector<double> w;
  expect_near(run("mgda", SurgeonOptions(), &w), {0, 1, 1}, "mgda d");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0], 0.6, 1e-4);
  EXPECT_NEAR(w[1], 0.4, 1e-4);
}

TEST(MtlGolden, ImtlG) { expect_near(run("imtl-g", SurgeonOptions()), {0.0767, 1, 1}, "imtl-g"); }

TEST(MtlGolden, CAGrad) {
  expect_near(run("cagrad", SurgeonOptions().set("c", "0.5")), {0.1835, 1.2041, 1.2041}, "cagrad c=0.5");
}

TEST(MtlGolden, AlignedMtlMin) {
  expect_near(run("aligned-mtl", SurgeonOptions().set("scale", "min")), {0.2133, 0.9673, 0.9673}, "aligned-mtl");
}

TEST(MtlGolden, UPGrad) { expect_near(run("upgrad", SurgeonOptions()), {0.2929, 1.9004, 1.9004}, "upgrad"); }

TEST(MtlGolden, DualProj) { expect_near(run("dualproj", SurgeonOptions()), {0.5563, 1.1109, 1.1109}, "dualproj"); }

}  // namespace
}  // namespace scalpel
