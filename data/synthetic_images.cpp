// synthetic-digits, synthetic-textures and synthetic-composite (see data/synthetic.h).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/parallel.h"
#include "core/random.h"
#include "data/image_ops.h"
#include "data/synthetic.h"

namespace scalpel {
namespace data {

namespace {

constexpr double kPi = 3.14159265358979323846;

float uni(Generator& g, float lo, float hi) { return lo + (hi - lo) * g.uniform(); }

// Cheap approximately normal pixel noise (Irwin-Hall: 4 uniforms, mean 0, variance 1).
float noise_draw(Generator& g) {
  const uint64_t r = g.next_u64();
  const float s = static_cast<float>(r & 0xFFFF) + static_cast<float>((r >> 16) & 0xFFFF) +
                  static_cast<float>((r >> 32) & 0xFFFF) + static_cast<float>(r >> 48);
  return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

// Balanced labels: label[i] = perm[i] % classes for a permutation drawn from `seed`.
std::vector<int64_t> balanced_labels(int64_t n, int64_t classes, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  Generator g(seed);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(g.randint(i + 1))]);
  for (auto& v : perm) v %= classes;
  return perm;
}

uint64_t split_seed(uint64_t seed, Split split, uint64_t salt) {
  return mix_seed(seed, salt, split == Split::Train ? 0 : 1);
}

// ---- the stroke font ----------------------------------------------------------------------------
// Glyph coordinates: x to the right, y down, the digit body inside [0.2, 0.8] x [0.1, 0.9].

struct Pt {
  float x, y;
};
using Stroke = std::vector<Pt>;

// Elliptic arc from angle a0 to a1 (degrees; 0 = right, 90 = down), inclusive end points.
Stroke arc(float cx, float cy, float rx, float ry, float a0, float a1) {
  const int segs = std::max(4, static_cast<int>(std::fabs(a1 - a0) / 15.0f));
  Stroke s;
  for (int k = 0; k <= segs; ++k) {
    const double a = (a0 + (a1 - a0) * static_cast<float>(k) / static_cast<float>(segs)) * kPi / 180.0;
    s.push_back({cx + rx * static_cast<float>(std::cos(a)), cy + ry * static_cast<float>(std::sin(a))});
  }
  return s;
}

std::vector<Stroke> glyph(int64_t d, Generator& g) {
  const bool variant = g.uniform() < 0.5f;
  switch (d) {
    case 0:
      return {arc(0.5f, 0.5f, uni(g, 0.22f, 0.3f), 0.4f, 0.0f, 360.0f)};
    case 1: {
      std::vector<Stroke> s = {{{0.5f, 0.1f}, {0.5f, 0.9f}}};
      if (variant) s.push_back({{0.33f, 0.28f}, {0.5f, 0.1f}});
      if (g.uniform() < 0.3f) s.push_back({{0.35f, 0.9f}, {0.65f, 0.9f}});
      return s;
    }
    case 2: {
      Stroke s = arc(0.5f, 0.33f, 0.26f, 0.23f, 190.0f, 395.0f);
      s.push_back({0.22f, 0.9f});
      s.push_back({0.8f, 0.9f});
      return {s};
    }
    case 3:
      return {arc(0.49f, 0.3f, 0.24f, 0.2f, 200.0f, 450.0f), arc(0.49f, 0.7f, 0.28f, 0.2f, 270.0f, 520.0f)};
    case 4:
      if (variant) return {{{0.62f, 0.9f}, {0.62f, 0.1f}, {0.2f, 0.65f}, {0.82f, 0.65f}}};
      return {{{0.3f, 0.1f}, {0.24f, 0.6f}, {0.82f, 0.6f}}, {{0.66f, 0.3f}, {0.66f, 0.9f}}};
    case 5: {
      Stroke top = {{0.76f, 0.1f}, {0.32f, 0.1f}, {0.29f, 0.47f}};
      return {top, arc(0.5f, 0.66f, 0.27f, 0.24f, 225.0f, 510.0f)};
    }
    case 6:
      return {arc(0.55f, 0.58f, 0.32f, 0.48f, 290.0f, 170.0f), arc(0.5f, 0.68f, 0.26f, 0.22f, 0.0f, 360.0f)};
    case 7: {
      std::vector<Stroke> s = {{{0.2f, 0.1f}, {0.8f, 0.1f}, {0.42f, 0.9f}}};
      if (variant) s.push_back({{0.38f, 0.5f}, {0.74f, 0.5f}});
      return s;
    }
    case 8:
      return {arc(0.5f, 0.3f, 0.21f, 0.2f, 0.0f, 360.0f), arc(0.5f, 0.7f, 0.27f, 0.2f, 0.0f, 360.0f)};
    case 9: {
      std::vector<Stroke> s = {arc(0.5f, 0.32f, 0.26f, 0.22f, 0.0f, 360.0f)};
      if (variant)
        s.push_back({{0.76f, 0.32f}, {0.72f, 0.9f}});
      else
        s.push_back(arc(0.3f, 0.32f, 0.46f, 0.58f, 0.0f, 75.0f));
      return s;
    }
    default:
      throw std::invalid_argument("render_digit: digit must be 0..9, got " + std::to_string(d));
  }
}

// Squared distance from p to the segment [a, b].
inline float seg_dist2(float px, float py, const Pt& a, const Pt& b) {
  const float vx = b.x - a.x, vy = b.y - a.y;
  const float wx = px - a.x, wy = py - a.y;
  const float vv = vx * vx + vy * vy;
  float t = vv > 0.0f ? (wx * vx + wy * vy) / vv : 0.0f;
  t = std::min(1.0f, std::max(0.0f, t));
  const float dx = wx - t * vx, dy = wy - t * vy;
  return dx * dx + dy * dy;
}

// Lowers d2[28*28] to the squared distance to the polyline, only near it.
void distance_field(const std::vector<Stroke>& strokes, float reach, float* d2) {
  for (const Stroke& s : strokes) {
    for (size_t k = 0; k + 1 < s.size(); ++k) {
      const Pt& a = s[k];
      const Pt& b = s[k + 1];
      const int x0 = std::max(0, static_cast<int>(std::floor(std::min(a.x, b.x) - reach)));
      const int x1 = std::min(27, static_cast<int>(std::ceil(std::max(a.x, b.x) + reach)));
      const int y0 = std::max(0, static_cast<int>(std::floor(std::min(a.y, b.y) - reach)));
      const int y1 = std::min(27, static_cast<int>(std::ceil(std::max(a.y, b.y) + reach)));
      for (int y = y0; y <= y1; ++y) {
        for (int x = x0; x <= x1; ++x) {
          const float v = seg_dist2(static_cast<float>(x) + 0.5f, static_cast<float>(y) + 0.5f, a, b);
          float& cur = d2[y * 28 + x];
          if (v < cur) cur = v;
        }
      }
    }
  }
}

}  // namespace

void render_digit(int64_t digit, Generator& g, uint8_t* out) {
  std::vector<Stroke> strokes = glyph(digit, g);
  // Random geometry: glyph units -> pixels.
  const float rot = uni(g, -0.38f, 0.38f);  // about +-22 degrees
  const float shear = uni(g, -0.35f, 0.35f);
  const float sy = uni(g, 14.0f, 21.5f);
  const float sx = sy * uni(g, 0.75f, 1.25f);
  const float tx = uni(g, -3.5f, 3.5f), ty = uni(g, -3.0f, 3.0f);
  const float warp = uni(g, 0.0f, 0.06f);
  const float f1 = uni(g, 0.6f, 1.6f), f2 = uni(g, 0.6f, 1.6f);
  const float p1 = uni(g, 0.0f, 6.2832f), p2 = uni(g, 0.0f, 6.2832f);
  const float cr = std::cos(rot), sr = std::sin(rot);
  for (Stroke& s : strokes) {
    for (Pt& p : s) {
      const float wx = p.x + warp * std::sin(6.2832f * f1 * p.y + p1) - 0.5f;
      const float wy = p.y + warp * std::sin(6.2832f * f2 * p.x + p2) - 0.5f;
      const float ax = sx * (wx + shear * wy), ay = sy * wy;
      p.x = cr * ax - sr * ay + 14.0f + tx;
      p.y = sr * ax + cr * ay + 14.0f + ty;
    }
  }
  const float width = uni(g, 0.75f, 1.9f);  // half-width of the stroke, pixels
  const float blur = uni(g, 0.25f, 0.6f);   // edge softness (logistic scale), pixels
  const float level = uni(g, 0.7f, 1.0f);
  const float reach = width + 6.0f * blur + 1.0f;

  float d2[28 * 28];
  std::fill(d2, d2 + 28 * 28, 1e9f);
  distance_field(strokes, reach, d2);
  // A stray mark (pen slip / dirt) on some digits.
  float s2[28 * 28];
  const bool stray = g.uniform() < 0.25f;
  float stray_level = 0.0f;
  if (stray) {
    std::fill(s2, s2 + 28 * 28, 1e9f);
    const Pt a{uni(g, 3.0f, 25.0f), uni(g, 3.0f, 25.0f)};
    const float ang = uni(g, 0.0f, 6.2832f), len = uni(g, 1.5f, 6.0f);
    const Pt b{a.x + len * std::cos(ang), a.y + len * std::sin(ang)};
    distance_field({{a, b}}, reach, s2);
    stray_level = uni(g, 0.3f, 0.8f);
  }
  const float peak = 1.0f / (1.0f + std::exp(-width / blur));
  const float gain = uni(g, 0.0f, 0.12f), noise = uni(g, 0.0f, 0.06f);
  for (int p = 0; p < 28 * 28; ++p) {
    const bool near = d2[p] < reach * reach || (stray && s2[p] < reach * reach);
    if (!near) {
      out[p] = 0;  // clean background, as in MNIST
      continue;
    }
    float v = 0.0f;
    if (d2[p] < reach * reach) v = level / (1.0f + std::exp((std::sqrt(d2[p]) - width) / blur)) / peak;
    if (stray && s2[p] < reach * reach) {
      v = std::max(v, stray_level / (1.0f + std::exp((std::sqrt(s2[p]) - 0.8f) / blur)) / peak);
    }
    // Multiplicative grain on the ink and additive noise around it; faint values drop to 0.
    v = v * (1.0f + gain * noise_draw(g)) + noise * noise_draw(g);
    if (v < 0.1f) v = 0.0f;
    out[p] = to_byte(v * 255.0f);
  }
}

std::shared_ptr<U8ImageDataset> make_synthetic_digits(Split split, const SyntheticOptions& options) {
  const int64_t n = options.size_ >= 0 ? options.size_ : (split == Split::Train ? 60000 : 10000);
  const uint64_t seed = split_seed(options.seed_, split, 0x444947495453ull);  // "DIGITS"
  std::vector<int64_t> labels = balanced_labels(n, 10, mix_seed(seed, 0xABCDEFull));
  std::vector<uint8_t> pixels(static_cast<size_t>(n * 784));
  parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      Generator g(mix_seed(seed, static_cast<uint64_t>(i)));
      render_digit(labels[static_cast<size_t>(i)], g, pixels.data() + i * 784);
    }
  });
  std::vector<std::vector<std::string>> names(1);
  for (int c = 0; c < 10; ++c) names[0].push_back(std::to_string(c));
  return std::make_shared<U8ImageDataset>(std::string("synthetic-digits ") + split_name(split), 1, 28, 28,
                                          std::move(pixels), std::move(labels), std::vector<int64_t>{10},
                                          std::move(names));
}

// ---- textures -------------------------------------------------------------------------------------

const std::vector<std::string> kTextureClasses = {"hstripes", "vstripes", "dstripes", "checks", "blobs",
                                                  "rings",    "gradient", "dots",     "clouds", "waves"};

namespace {

float smoothstep01(float v) {
  v = std::min(1.0f, std::max(0.0f, v));
  return v * v * (3.0f - 2.0f * v);
}

// Sharpens a [0, 1] periodic profile towards a square wave by `hard` in [0, 1].
float sharpen(float p, float hard) { return (1.0f - hard) * p + hard * smoothstep01((p - 0.5f) * 4.0f + 0.5f); }

// The pattern of class `cls` in [0, 1] on a 32x32 grid.
void texture_pattern(int64_t cls, Generator& g, float* p) {
  const float hard = uni(g, 0.0f, 1.0f);
  auto stripes = [&](float theta, float freq, float phase, float warp_amp, float warp_freq) {
    const float c = std::cos(theta), s = std::sin(theta);
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        const float u = (static_cast<float>(x) + 0.5f) / 32.0f - 0.5f,
                    v = (static_cast<float>(y) + 0.5f) / 32.0f - 0.5f;
        const float along = u * c + v * s, across = -u * s + v * c;
        const float t = along + warp_amp * std::sin(6.2832f * warp_freq * across);
        p[y * 32 + x] = sharpen(0.5f + 0.5f * std::sin(6.2832f * freq * t + phase), hard);
      }
    }
  };
  const float phase = uni(g, 0.0f, 6.2832f);
  switch (cls) {
    case 0:  // bands along y: the wave vector points down (theta ~ 90 deg)
      stripes(1.5708f + uni(g, -0.3f, 0.3f), uni(g, 2.5f, 8.0f), phase, 0.0f, 0.0f);
      break;
    case 1:
      stripes(uni(g, -0.3f, 0.3f), uni(g, 2.5f, 8.0f), phase, 0.0f, 0.0f);
      break;
    case 2:
      stripes((g.uniform() < 0.5f ? 0.785f : 2.356f) + uni(g, -0.22f, 0.22f), uni(g, 2.5f, 8.0f), phase, 0.0f, 0.0f);
      break;
    case 3: {
      const float th = uni(g, 0.0f, 1.5708f), f = uni(g, 1.5f, 4.5f), c = std::cos(th), s = std::sin(th);
      const float ph2 = uni(g, 0.0f, 6.2832f);
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) {
          const float u = (x + 0.5f) / 32.0f - 0.5f, v = (y + 0.5f) / 32.0f - 0.5f;
          const float a = std::sin(6.2832f * f * (u * c + v * s) + phase),
                      b = std::sin(6.2832f * f * (-u * s + v * c) + ph2);
          p[y * 32 + x] = smoothstep01(0.5f + 3.0f * a * b);
        }
      }
      break;
    }
    case 4: {
      std::fill(p, p + 1024, 0.0f);
      const int k = 3 + static_cast<int>(g.randint(7));
      for (int b = 0; b < k; ++b) {
        const float cx = uni(g, 0.0f, 32.0f), cy = uni(g, 0.0f, 32.0f), r = uni(g, 2.0f, 5.5f);
        for (int y = 0; y < 32; ++y) {
          for (int x = 0; x < 32; ++x) {
            const float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
            p[y * 32 + x] += std::exp(-(dx * dx + dy * dy) / (2.0f * r * r));
          }
        }
      }
      for (int i = 0; i < 1024; ++i) p[i] = std::min(1.0f, p[i]);
      break;
    }
    case 5: {
      const float cx = uni(g, 6.0f, 26.0f), cy = uni(g, 6.0f, 26.0f), f = uni(g, 2.5f, 6.5f);
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) {
          const float r = std::hypot(x + 0.5f - cx, y + 0.5f - cy) / 32.0f;
          p[y * 32 + x] = sharpen(0.5f + 0.5f * std::sin(6.2832f * f * r + phase), hard);
        }
      }
      break;
    }
    case 6: {
      const float th = uni(g, 0.0f, 6.2832f), k = uni(g, 0.8f, 1.8f), off = uni(g, -0.2f, 0.2f);
      const float c = std::cos(th), s = std::sin(th);
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) {
          const float u = (x + 0.5f) / 32.0f - 0.5f, v = (y + 0.5f) / 32.0f - 0.5f;
          p[y * 32 + x] = std::min(1.0f, std::max(0.0f, 0.5f + off + k * (u * c + v * s)));
        }
      }
      break;
    }
    case 7: {
      const float th = uni(g, 0.0f, 1.5708f), spacing = uni(g, 5.0f, 9.0f), r = spacing * uni(g, 0.15f, 0.3f);
      const float c = std::cos(th), s = std::sin(th), ox = uni(g, 0.0f, spacing), oy = uni(g, 0.0f, spacing);
      for (int y = 0; y < 32; ++y) {
        for (int x = 0; x < 32; ++x) {
          const float u = (x + 0.5f) * c + (y + 0.5f) * s + ox, v = -(x + 0.5f) * s + (y + 0.5f) * c + oy;
          const float du = u - spacing * std::round(u / spacing), dv = v - spacing * std::round(v / spacing);
          p[y * 32 + x] = std::exp(-(du * du + dv * dv) / (2.0f * r * r));
        }
      }
      break;
    }
    case 8: {  // value noise: a random 5x5 grid, bicubic-upsampled
      float grid[25];
      for (float& v : grid) v = g.uniform();
      resize_bicubic(grid, 1, 5, 5, p, 32, 32);
      for (int i = 0; i < 1024; ++i) p[i] = std::min(1.0f, std::max(0.0f, p[i]));
      break;
    }
    case 9:
      stripes(uni(g, 0.0f, 6.2832f), uni(g, 2.5f, 6.0f), phase, uni(g, 0.04f, 0.09f), uni(g, 1.5f, 3.0f));
      break;
    default:
      throw std::invalid_argument("render_texture: class must be 0..9, got " + std::to_string(cls));
  }
}

}  // namespace

void render_texture(int64_t cls, Generator& g, uint8_t* out) {
  float p[1024];
  texture_pattern(cls, g, p);
  // A faint overlay of another class's pattern makes the classes overlap a little.
  if (g.uniform() < 0.5f) {
    float q[1024];
    const int64_t other = (cls + 1 + g.randint(9)) % 10;
    texture_pattern(other, g, q);
    const float w = uni(g, 0.15f, 0.3f);
    for (int i = 0; i < 1024; ++i) p[i] = (1.0f - w) * p[i] + w * q[i];
  }
  float fg[3], bg[3];
  for (;;) {
    for (int c = 0; c < 3; ++c) {
      fg[c] = g.uniform();
      bg[c] = g.uniform();
    }
    const float dl = std::fabs(0.3f * (fg[0] - bg[0]) + 0.59f * (fg[1] - bg[1]) + 0.11f * (fg[2] - bg[2]));
    const float dc = std::fabs(fg[0] - bg[0]) + std::fabs(fg[1] - bg[1]) + std::fabs(fg[2] - bg[2]);
    if (dl > 0.15f || dc > 0.6f) break;  // enough contrast to see the pattern
  }
  const float contrast = uni(g, 0.6f, 1.0f), bright = uni(g, -0.1f, 0.1f), noise = uni(g, 0.0f, 0.06f);
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 1024; ++i) {
      float v = bg[c] + (fg[c] - bg[c]) * p[i];
      v = 0.5f + contrast * (v - 0.5f) + bright + noise * noise_draw(g);
      out[c * 1024 + i] = to_byte(v * 255.0f);
    }
  }
}

std::shared_ptr<U8ImageDataset> make_synthetic_textures(Split split, const SyntheticOptions& options) {
  const int64_t n = options.size_ >= 0 ? options.size_ : (split == Split::Train ? 50000 : 10000);
  const uint64_t seed = split_seed(options.seed_, split, 0x544558545552ull);  // "TEXTUR"
  std::vector<int64_t> labels = balanced_labels(n, 10, mix_seed(seed, 0xABCDEFull));
  std::vector<uint8_t> pixels(static_cast<size_t>(n * 3072));
  parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      Generator g(mix_seed(seed, static_cast<uint64_t>(i)));
      render_texture(labels[static_cast<size_t>(i)], g, pixels.data() + i * 3072);
    }
  });
  return std::make_shared<U8ImageDataset>(std::string("synthetic-textures ") + split_name(split), 3, 32, 32,
                                          std::move(pixels), std::move(labels), std::vector<int64_t>{10},
                                          std::vector<std::vector<std::string>>{kTextureClasses});
}

std::shared_ptr<CompositeDataset> make_synthetic_composite(Split split, const SyntheticOptions& options) {
  SyntheticOptions o = options;
  if (o.size_ < 0) o.size_ = split == Split::Train ? 50000 : 10000;
  return std::make_shared<CompositeDataset>(make_synthetic_textures(split, o), make_synthetic_digits(split, o),
                                            std::string("synthetic-composite ") + split_name(split));
}

}  // namespace data
}  // namespace scalpel
