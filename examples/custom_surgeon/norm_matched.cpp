// "norm-matched": d = g0 + Σ λk (‖g0‖/‖gk‖) gk, the auxiliary gradients rescaled to the main
// gradient's norm. One file: the Surgeon subclass and its static registration by name, which every
// executable this file is linked into picks up (so a study's --method norm-matched finds it).
#include <cmath>
#include <memory>

#include "optim/surgery/fused.h"
#include "optim/surgery/surgeon.h"

namespace scalpel::surgery {
namespace {

class NormMatched final : public Surgeon {
 public:
  explicit NormMatched(const SurgeonOptions& o) : Surgeon("norm-matched", o) {}

 protected:
  void combine_impl(const Inputs& in, float* d, SurgeryDiagnostics* diag) override {
    FusedPass gram;  // pass 1: the Gram matrix of g0..gK
    gram.vectors = in.g;
    gram.gram = &G_;
    add_bytes_moved(run_fused_pass(in.P, gram));
    Coef c(in.g.size(), 0.0);  // K x K algebra on the Gram matrix
    c[0] = in.scale;
    for (size_t k = 1; k < in.g.size(); ++k)
      if (G_(k, k) > 0) c[k] = in.scale * in.lambda[k - 1] * std::sqrt(G_(0, 0) / G_(k, k));
    FusedPass out;  // pass 2: d = Σ c_k g_k
    out.vectors = in.g;
    out.out = d;
    out.coef = c;
    add_bytes_moved(run_fused_pass(in.P, out));
    if (diag) fill_common_diagnostics(G_, in.K, -1, c, *diag);
  }

 private:
  Gram G_;
};

const SurgeonRegistration reg("norm-matched", {"nm"}, "aux gradients rescaled to the main gradient's norm",
                              [](const SurgeonOptions& o) { return std::make_unique<NormMatched>(o); });

}  // namespace
}  // namespace scalpel::surgery
