// A surgery method defined and registered OUTSIDE the library, in one file, exactly as the README
// shows: it is found by make_surgeon(), and the property tests that loop over surgeon_names() (finite
// output on the zoo, λ = 0, no allocation, thread determinism) cover it too.
//
// "norm-matched": each auxiliary gradient is rescaled to the main gradient's norm before mixing,
//   d = g0 + Σ_k λk (‖g0‖ / ‖gk‖) gk      (a zero gk contributes nothing).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"
#include "surgery_test_util.h"

namespace {

using namespace scalpel;
using namespace scalpel::surgery;

class NormMatched final : public Surgeon {
 public:
  explicit NormMatched(const SurgeonOptions& o) : Surgeon("norm-matched", o) {}

 protected:
  // g0..gK [P] -> d [P]: pass 1 computes the Gram matrix, pass 2 writes d.
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    FusedPass gram;
    gram.vectors = in.g;
    gram.gram = &G_;
    add_bytes_moved(run_fused_pass(in.P, gram));

    Coef c(in.g.size(), 0.0);
    c[0] = 1.0;
    const double n0 = std::sqrt(G_(0, 0));
    for (size_t k = 1; k < in.g.size(); ++k) {
      const double nk = std::sqrt(G_(k, k));
      if (nk > 0.0) c[k] = in.lambda[k - 1] * n0 / nk;
    }
    for (double& x : c) x *= in.scale;

    FusedPass out;
    out.vectors = in.g;
    out.out = d;
    out.coef = c;
    add_bytes_moved(run_fused_pass(in.P, out));
    if (diag) fill_common_diagnostics(G_, in.K, /*ema_index=*/-1, c, *diag);
  }

 private:
  Gram G_;
};

const SurgeonRegistration kRegistration("norm-matched", {"nm"}, "d = g0 + sum_k lambda_k |g0|/|gk| gk",
                                        [](const SurgeonOptions& o) { return std::make_unique<NormMatched>(o); });

}  // namespace

TEST(CustomSurgeon, RegisteredFromOneFileAndComputesItsFormula) {
  auto s = make_surgeon("nm", SurgeonOptions().lambdas({0.5, 2.0}));
  EXPECT_EQ(s->name(), "norm-matched");
  GradVector g0 = scalpel::testing::gv({3, 4}), g1 = scalpel::testing::gv({0, 10}), g2 = scalpel::testing::gv({0, 0});
  GradVector d;
  SurgeryDiagnostics diag;
  s->combine({&g0, &g1, &g2}, {}, d, &diag);
  // ‖g0‖ = 5, ‖g1‖ = 10: d = (3, 4) + 0.5 · 0.5 · (0, 10) = (3, 6.5); g2 = 0 is skipped.
  EXPECT_TRUE(scalpel::testing::vec_near(d.to_vector(), {3.0, 6.5}, 1e-6, "norm-matched"));
  EXPECT_NEAR(diag.g0_norm, 5.0, 1e-12);
  EXPECT_NEAR(diag.d_norm, std::sqrt(9 + 6.5 * 6.5), 1e-9);
  const std::vector<std::string> names = surgeon_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "norm-matched"), names.end());
}
