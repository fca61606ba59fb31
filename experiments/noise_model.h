// The projection-noise model of paper Fig. 2, shared by scalpel-noise and its test.
//
// Fixed g0, g1 ~ N(0, I_p) from `seed`. For each σ, Monte-Carlo estimates (`samples` draws) of
// E[d] for d = g0 + λ π(g1; g0 + s ε), with s = σ (naive projection on the batch gradient) and
// s = σ·sqrt(ρ/(2−ρ)) (projection on an EMA with rate ρ, whose stationary noise is that), and
// their distances to the noise-free Bloop direction and to the Mixed direction, relative to
// ‖d_Bloop‖.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace scalpel {
namespace experiments {

// Rows of (σ, naive→Bloop, naive→Mixed, EMA→Bloop, EMA→Mixed).
std::vector<std::array<double, 5>> noise_curves(int64_t p, double lambda, const std::vector<double>& sigmas, double rho,
                                                int64_t samples, uint64_t seed);

}  // namespace experiments
}  // namespace scalpel
