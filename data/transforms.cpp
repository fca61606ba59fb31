#include "data/transforms.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace scalpel {
namespace data {

const std::vector<float> kMnistMean = {0.1307f};
const std::vector<float> kMnistStd = {0.3081f};
const std::vector<float> kCifarMean = {0.4914f, 0.4822f, 0.4465f};
const std::vector<float> kCifarStd = {0.2470f, 0.2435f, 0.2616f};

Tensor Transform::operator()(const Tensor& x, Generator& gen) const {
  const Shape out_shape = output_shape(x.shape());
  Tensor y = x.contiguous().clone().detach();
  apply(y.data(), x.shape(), gen);
  return y.reshape(out_shape);
}

namespace {

void require_chw(const Shape& s, const char* what) {
  if (s.size() != 3) {
    throw std::invalid_argument(std::string(what) + ": expects an image [C, H, W], got shape " + shape_str(s) +
                                " (put flatten() last in the pipeline)");
  }
}

class Normalize : public Transform {
 public:
  Normalize(std::vector<float> mean, std::vector<float> stdv) : mean_(std::move(mean)), std_(std::move(stdv)) {
    if (mean_.empty() || mean_.size() != std_.size()) {
      throw std::invalid_argument("normalize: mean and std must be non-empty and of equal length, got " +
                                  std::to_string(mean_.size()) + " and " + std::to_string(std_.size()));
    }
    for (float s : std_) {
      if (!(s > 0.0f)) throw std::invalid_argument("normalize: every std must be positive, got " + std::to_string(s));
    }
  }
  Shape output_shape(const Shape& in) const override {
    if (in.empty()) throw std::invalid_argument("normalize: expects an input with a channel dimension, got a scalar");
    if (mean_.size() != 1 && static_cast<int64_t>(mean_.size()) != in[0]) {
      throw std::invalid_argument("normalize: has " + std::to_string(mean_.size()) +
                                  " channel statistics but the input " + shape_str(in) + " has " +
                                  std::to_string(in[0]) + " channels");
    }
    return in;
  }
  // x [C, ...] in place
  void apply(float* x, const Shape& shape, Generator&) const override {
    const int64_t c = shape[0];
    const int64_t inner = shape_numel(shape) / std::max<int64_t>(c, 1);
    for (int64_t k = 0; k < c; ++k) {
      const size_t j = mean_.size() == 1 ? 0 : static_cast<size_t>(k);
      const float m = mean_[j], inv = 1.0f / std_[j];
      float* p = x + k * inner;
      for (int64_t i = 0; i < inner; ++i) p[i] = (p[i] - m) * inv;
    }
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "normalize(mean=[";
    for (size_t i = 0; i < mean_.size(); ++i) os << (i ? ", " : "") << mean_[i];
    os << "], std=[";
    for (size_t i = 0; i < std_.size(); ++i) os << (i ? ", " : "") << std_[i];
    os << "])";
    return os.str();
  }

 private:
  std::vector<float> mean_, std_;
};

class RandomCrop : public Transform {
 public:
  RandomCrop(int64_t padding, float fill) : pad_(padding), fill_(fill) {
    if (padding < 0) throw std::invalid_argument("random_crop: padding must be >= 0, got " + std::to_string(padding));
  }
  Shape output_shape(const Shape& in) const override {
    require_chw(in, "random_crop");
    return in;
  }
  // x [C, H, W] in place: out[c][y][x] = in[c][y + oy][x + ox] with oy, ox uniform in [-pad, pad], fill outside.
  void apply(float* x, const Shape& shape, Generator& gen) const override {
    const int64_t oy = gen.randint(2 * pad_ + 1) - pad_;
    const int64_t ox = gen.randint(2 * pad_ + 1) - pad_;
    if (oy == 0 && ox == 0) return;
    const int64_t c = shape[0], h = shape[1], w = shape[2];
    // In place, without a copy: row y reads row y + oy, so walk rows away from the side being
    // read (ascending when oy >= 0). Columns [x0, x1) read [x0 + ox, x1 + ox) (memmove handles
    // the overlap when oy == 0); the rest is fill, written after the move.
    const int64_t x0 = std::max<int64_t>(0, -ox), x1 = std::min<int64_t>(w, w - ox);
    for (int64_t k = 0; k < c; ++k) {
      float* plane = x + k * h * w;
      for (int64_t step = 0; step < h; ++step) {
        const int64_t y = oy >= 0 ? step : h - 1 - step;
        const int64_t sy = y + oy;
        float* row = plane + y * w;
        if (sy < 0 || sy >= h || x1 <= x0) {
          std::fill(row, row + w, fill_);
          continue;
        }
        std::memmove(row + x0, plane + sy * w + x0 + ox, static_cast<size_t>(x1 - x0) * sizeof(float));
        std::fill(row, row + x0, fill_);
        std::fill(row + x1, row + w, fill_);
      }
    }
  }
  bool is_random() const override { return true; }
  std::string describe() const override { return "random_crop(padding=" + std::to_string(pad_) + ")"; }

 private:
  int64_t pad_;
  float fill_;
};

class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(float p) : p_(p) {
    if (!(p >= 0.0f && p <= 1.0f))
      throw std::invalid_argument("random_horizontal_flip: p must be in [0, 1], got " + std::to_string(p));
  }
  Shape output_shape(const Shape& in) const override {
    require_chw(in, "random_horizontal_flip");
    return in;
  }
  // x [C, H, W] in place: x[c][y][w-1-x]
  void apply(float* x, const Shape& shape, Generator& gen) const override {
    if (!(gen.uniform() < p_)) return;
    const int64_t rows = shape[0] * shape[1], w = shape[2];
    for (int64_t r = 0; r < rows; ++r) std::reverse(x + r * w, x + (r + 1) * w);
  }
  bool is_random() const override { return true; }
  std::string describe() const override { return "random_horizontal_flip(p=" + std::to_string(p_) + ")"; }

 private:
  float p_;
};

class Flatten : public Transform {
 public:
  Shape output_shape(const Shape& in) const override { return {shape_numel(in)}; }
  void apply(float*, const Shape&, Generator&) const override {}
  bool changes_shape() const override { return true; }
  std::string describe() const override { return "flatten()"; }
};

class Compose : public Transform {
 public:
  explicit Compose(std::vector<TransformPtr> ts) : ts_(std::move(ts)) {
    for (const auto& t : ts_) {
      if (!t) throw std::invalid_argument("compose: transform list contains a null transform");
    }
  }
  Shape output_shape(const Shape& in) const override {
    Shape s = in;
    for (const auto& t : ts_) s = t->output_shape(s);
    return s;
  }
  void apply(float* x, const Shape& shape, Generator& gen) const override {
    if (!changes_shape()) {
      for (const auto& t : ts_) t->apply(x, shape, gen);
      return;
    }
    Shape s = shape;
    for (const auto& t : ts_) {
      t->apply(x, s, gen);
      if (t->changes_shape()) s = t->output_shape(s);
    }
  }
  bool changes_shape() const override {
    return std::any_of(ts_.begin(), ts_.end(), [](const TransformPtr& t) { return t->changes_shape(); });
  }
  bool is_random() const override {
    return std::any_of(ts_.begin(), ts_.end(), [](const TransformPtr& t) { return t->is_random(); });
  }
  std::string describe() const override {
    std::string s = "compose(";
    for (size_t i = 0; i < ts_.size(); ++i) s += (i ? ", " : "") + ts_[i]->describe();
    return s + ")";
  }

 private:
  std::vector<TransformPtr> ts_;
};

}  // namespace

TransformPtr normalize(std::vector<float> mean, std::vector<float> std) {
  return std::make_shared<Normalize>(std::move(mean), std::move(std));
}
TransformPtr random_crop(int64_t padding, float fill) { return std::make_shared<RandomCrop>(padding, fill); }
TransformPtr random_horizontal_flip(float p) { return std::make_shared<RandomHorizontalFlip>(p); }
TransformPtr flatten() { return std::make_shared<Flatten>(); }
TransformPtr compose(std::vector<TransformPtr> transforms) { return std::make_shared<Compose>(std::move(transforms)); }

}  // namespace data
}  // namespace scalpel
