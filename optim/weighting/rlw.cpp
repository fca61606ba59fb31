// rlw: random loss weighting (Lin et al. 2022, "Reasonable effectiveness of random weighting").
//
//   w = softmax(ε), ε_i ~ N(0, 1) drawn afresh every step      f = Σ w_i L_i      (Σ w_i = 1)
//
// The draws are a counter-based function of (seed, step, task): splitmix64 of the three gives two
// uniforms, Box-Muller one normal. So the weights of step t are reproducible from the seed alone,
// and the step counter is the whole state. Option `seed` (default 0; the studies pass --seed).
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "core/random.h"
#include "optim/weighting/weighting.h"
#include "optim/weighting/weighting_util.h"

namespace scalpel {
namespace weighting {
namespace {

// Uniform in (0, 1) with 53 bits (never 0, so log is finite).
double uniform(uint64_t h) { return (static_cast<double>(h >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

class Rlw : public LossWeighting {
 public:
  explicit Rlw(const WeightingOptions& o) : LossWeighting("rlw", o) {
    check_keys({"seed"});
    const double s = number("seed", 0.0, 0.0, 9007199254740992.0);
    if (s != std::floor(s)) throw std::invalid_argument("weighting 'rlw': option 'seed' must be an integer");
    seed_ = static_cast<uint64_t>(s);
  }

  Tensor combine(const std::vector<Tensor>& losses) const override {
    return weighted_sum(losses, last_weights_, name(), tasks());
  }

  // The normal draw of (step, task), exposed for the reproducibility test.
  static double draw(uint64_t seed, int64_t step, int task) {
    const uint64_t base =
        splitmix64(splitmix64(seed) ^ splitmix64(static_cast<uint64_t>(step) * 0x632BE59BD9B4E019ull) ^
                   (static_cast<uint64_t>(task) + 1) * 0xD1B54A32D192ED03ull);
    const double u1 = uniform(splitmix64(base)), u2 = uniform(splitmix64(base + 1));
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 protected:
  void weigh_impl(const std::vector<double>& L, const GradNormFn&, WeightingResult& out) override {
    std::vector<double> eps(L.size());
    for (size_t i = 0; i < L.size(); ++i) eps[i] = draw(seed_, step(), static_cast<int>(i));
    out.weights = softmax(eps);
    out.loss = 0.0;
    for (size_t i = 0; i < L.size(); ++i) out.loss += out.weights[i] * L[i];
    check_finite(out, name());
  }

 private:
  uint64_t seed_ = 0;
};

WeightingRegistration reg("rlw", "w = softmax(ε), ε ~ N(0, 1) per step, seeded (Lin et al. 2022)",
                          [](const WeightingOptions& o) { return std::make_unique<Rlw>(o); });

}  // namespace
}  // namespace weighting
}  // namespace scalpel
