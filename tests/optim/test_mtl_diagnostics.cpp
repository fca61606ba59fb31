// Issue 12, item 4: the per-step diagnostics every surgeon logs from its Gram matrix (every pairwise
// cosine, gradient-magnitude similarity, the Gram matrix's inverse condition number), checked on
// matrices whose values are known by hand; and the `stl` single-task baseline method.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/grad_vector.h"
#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

using namespace scalpel;
using surgery::make_surgeon;
using surgery::SurgeonOptions;
using surgery::SurgeryDiagnostics;

namespace {

SurgeryDiagnostics diagnose(const std::string& method, const std::vector<std::vector<float>>& rows,
                            std::vector<float>* d_out = nullptr, SurgeonOptions o = SurgeonOptions()) {
  SurgeryDiagnostics diag;
  const std::vector<float> d = scalpel::testing::combine_rows(method, rows, o, &diag);
  if (d_out) *d_out = d;
  return diag;
}

std::map<std::string, double> as_map(const SurgeryDiagnostics& d) {
  std::map<std::string, double> m;
  for (const auto& [k, v] : d.to_map()) m[k] = v;
  return m;
}

}  // namespace

// Orthogonal gradients of norms 1, 2, 3: every cosine 0, Gram diag(1, 4, 9), so λmin/λmax = 1/9,
// and GMS(0,1) = 2·1·2/5, GMS(0,2) = 6/10, GMS(1,2) = 12/13. The same for an asymmetric method
// (mixed) and an aggregator (mgda): both come from the Gram matrix of the task gradients.
TEST(MtlDiagnostics, PairwiseCosinesMagnitudeSimilarityAndConditioningByHand) {
  const std::vector<std::vector<float>> J{{1, 0, 0, 0}, {0, 2, 0, 0}, {0, 0, 3, 0}};
  for (const char* method : {"mixed", "mgda", "pcgrad"}) {
    const std::map<std::string, double> m = as_map(diagnose(method, J));
    EXPECT_NEAR(m.at("cos_g0_g1"), 0.0, 1e-12) << method;
    EXPECT_NEAR(m.at("cos_g1_g2"), 0.0, 1e-12) << method;
    EXPECT_NEAR(m.at("gms_g0_g1"), 0.8, 1e-12) << method;
    EXPECT_NEAR(m.at("gms_g0_g2"), 0.6, 1e-12) << method;
    EXPECT_NEAR(m.at("gms_g1_g2"), 12.0 / 13.0, 1e-12) << method;
    EXPECT_NEAR(m.at("gram_rcond"), 1.0 / 9.0, 1e-12) << method;
    EXPECT_EQ(m.count("cos_g0_g0"), 0u) << method;
  }
}

// g2 = g0 + g1 (45°-apart unit vectors): cos(g1, g2) = cos(22.5°) and the Gram matrix is singular.
TEST(MtlDiagnostics, DependentGradientsGiveZeroInverseConditionAndTheRightCosine) {
  const float s = static_cast<float>(std::sqrt(0.5));
  const std::vector<std::vector<float>> J{{1, 0, 0}, {s, s, 0}, {1 + s, s, 0}};
  const std::map<std::string, double> m = as_map(diagnose("mgda", J));
  EXPECT_NEAR(m.at("cos_g0_g1"), s, 1e-6);
  EXPECT_NEAR(m.at("cos_g1_g2"), std::cos(M_PI / 8), 1e-6);
  EXPECT_LT(m.at("gram_rcond"), 1e-6);
  EXPECT_GE(m.at("gram_rcond"), 0.0);
  // Equal norms: GMS 1; a zero gradient: GMS 0 (not NaN).
  const std::map<std::string, double> z = as_map(diagnose("mgda", {{1, 0}, {0, 1}, {0, 0}}));
  EXPECT_NEAR(z.at("gms_g0_g1"), 1.0, 1e-12);
  EXPECT_EQ(z.at("gms_g0_g2"), 0.0);
  EXPECT_EQ(z.at("gram_rcond"), 0.0);
}

TEST(MtlDiagnostics, StlFollowsOneTaskAndNamesABadTask) {
  const std::vector<std::vector<float>> J{{1, 2, 3}, {-4, 5, 6}, {7, -8, 9}};
  for (int t = 0; t < 3; ++t) {
    std::vector<float> d;
    const SurgeryDiagnostics diag = diagnose("stl", J, &d, SurgeonOptions().set("task", std::to_string(t)));
    EXPECT_EQ(d, J[static_cast<size_t>(t)]) << t;
    ASSERT_EQ(diag.weights.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(diag.weights[static_cast<size_t>(i)], i == t ? 1.0 : 0.0);
  }
  std::string e;
  try {
    diagnose("stl", J, nullptr, SurgeonOptions().set("task", "3"));
  } catch (const std::invalid_argument& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("stl: option 'task' is 3 but there are only 3 tasks"), std::string::npos) << e;
  e.clear();
  try {
    make_surgeon("stl", SurgeonOptions().set("task", "-1"));
  } catch (const std::invalid_argument& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("'task'"), std::string::npos) << e;
}
