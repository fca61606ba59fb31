#include "core/random.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace scalpel {
uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {

// The stateful form: returns splitmix64(x) and advances x.
uint64_t next_splitmix64(uint64_t& x) {
  const uint64_t r = splitmix64(x);
  x += 0x9E3779B97F4A7C15ull;
  return r;
}

inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Generator::Generator(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& w : s_) w = next_splitmix64(x);
}

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Generator::uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }

double Generator::uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

float Generator::normal() {
  // Box-Muller; u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - uniform_double();
  const double u2 = uniform_double();
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

int64_t Generator::randint(int64_t n) {
  if (n <= 0) throw std::invalid_argument("Generator::randint: n must be positive, got " + std::to_string(n));
  const uint64_t un = static_cast<uint64_t>(n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % un;
  uint64_t v;
  do {
    v = next_u64();
  } while (v >= limit);
  return static_cast<int64_t>(v % un);
}

std::string Generator::state_string() const {
  std::ostringstream os;
  os << s_[0] << ' ' << s_[1] << ' ' << s_[2] << ' ' << s_[3];
  return os.str();
}

void Generator::set_state_string(const std::string& text) {
  std::istringstream is(text);
  State s;
  if (!(is >> s[0] >> s[1] >> s[2] >> s[3])) {
    throw std::invalid_argument("Generator::set_state_string: '" + text +
                                "' is not a generator state (expected 4 integers)");
  }
  s_ = s;
}

Generator Generator::split() {
  Generator child(next_u64());
  return child;
}

}  // namespace scalpel
