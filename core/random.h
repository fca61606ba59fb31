// Generator: the explicit, seeded random-number source every random draw in Scalpel takes.
//
// There is no hidden global RNG. Initialisers, dropout, data shuffling and synthetic data all take
// a Generator&, so a run is reproducible from its seeds alone. The engine is xoshiro256** seeded
// through splitmix64; uniform and normal draws are implemented here (not with <random>'s
// distributions, whose output differs between standard libraries), so the numbers are the same on
// every platform. The state is four 64-bit words and can be saved and restored for checkpoints.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace scalpel {

// One splitmix64 step as a pure function of its state x: a well-spread 64-bit hash of x (the value
// the generator's seeding draws from state x). For counter-based streams (hash of seed and step).
uint64_t splitmix64(uint64_t x);

class Generator {
 public:
  explicit Generator(uint64_t seed = 0);

  // Next raw 64-bit value.
  uint64_t next_u64();
  // Uniform float in [0, 1) with 24 random bits.
  float uniform();
  // Uniform double in [0, 1) with 53 random bits.
  double uniform_double();
  // Standard normal draw (Box-Muller on doubles, one value per call).
  float normal();
  // Uniform integer in [0, n), unbiased (rejection sampling). n must be positive.
  int64_t randint(int64_t n);

  // A child generator with an independent stream, derived deterministically from this one.
  Generator split();

  using State = std::array<uint64_t, 4>;
  State state() const { return s_; }
  void set_state(const State& s) { s_ = s; }
  uint64_t seed() const { return seed_; }
  // The state as text ("s0 s1 s2 s3"), for checkpoints; set_state_string throws on malformed text.
  std::string state_string() const;
  void set_state_string(const std::string& text);

 private:
  State s_;
  uint64_t seed_;
};

}  // namespace scalpel
