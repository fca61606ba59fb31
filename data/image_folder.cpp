#include "data/image_folder.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "data/image_ops.h"
#include "data/io.h"
#include "data/png_check.h"

namespace scalpel {
namespace data {

namespace {

bool has_image_extension(const std::string& name) {
  const size_t dot = name.find_last_of('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "bmp";
}

// Bytes [c, h, w] -> bytes [c, oh, ow] through float bicubic resampling.
std::vector<uint8_t> resize_bytes(const std::vector<uint8_t>& src, int64_t c, int64_t h, int64_t w, int64_t oh,
                                  int64_t ow) {
  if (h == oh && w == ow) return src;
  std::vector<float> in(src.begin(), src.end()), out(static_cast<size_t>(c * oh * ow));
  resize_bicubic(in.data(), c, h, w, out.data(), oh, ow, /*antialias=*/true);
  std::vector<uint8_t> b(out.size());
  for (size_t i = 0; i < out.size(); ++i) b[i] = to_byte(out[i]);
  return b;
}

}  // namespace

std::vector<uint8_t> load_image_file(const std::string& path, const ImageFolderOptions& opt) {
  const std::vector<uint8_t> file = read_file(path);
  return decode_image(file.data(), file.size(), path, opt);
}

std::vector<uint8_t> decode_image(const uint8_t* bytes, size_t size, const std::string& path,
                                  const ImageFolderOptions& opt) {
  if (opt.channels_ != 1 && opt.channels_ != 3) {
    throw std::invalid_argument("ImageFolder: channels must be 1 or 3, got " + std::to_string(opt.channels_));
  }
  if (opt.height_ <= 0 || opt.width_ <= 0) {
    throw std::invalid_argument("ImageFolder: size must be positive, got " + std::to_string(opt.height_) + "x" +
                                std::to_string(opt.width_));
  }
  if (size > static_cast<size_t>(INT32_MAX))
    throw std::runtime_error(path + ": image file too large (" + std::to_string(size) + " bytes)");
  if (is_png(bytes, size)) verify_png(bytes, size, path);
  // Refused before decoding when the header says so, and again after (stb's info and load can
  // disagree): stb reports a top-down BMP's height as negative (found by fuzz_image).
  auto check_pixels = [&](int64_t w, int64_t h) {
    if (std::abs(w) * std::abs(h) > kMaxImagePixels) {
      throw std::runtime_error(path + ": image of " + std::to_string(std::abs(w)) + "x" + std::to_string(std::abs(h)) +
                               " pixels is larger than the " + std::to_string(kMaxImagePixels) +
                               "-pixel limit (a corrupted header, or resize it first)");
    }
  };
  int w = 0, h = 0, comp = 0;
  if (stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &comp)) check_pixels(w, h);
  const int want = static_cast<int>(opt.channels_);
  const std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &comp, want), stbi_image_free);
  if (!decoded) {
    const char* why = stbi_failure_reason();
    throw std::runtime_error(path + ": cannot decode image (" + std::string(why ? why : "unknown reason") +
                             "); expected a PNG, JPEG or BMP file");
  }
  const stbi_uc* px = decoded.get();
  if (w <= 0 || h <= 0) {  // stb accepts e.g. a BMP of height 0 (found by fuzz_image)
    throw std::runtime_error(path + ": image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  }
  check_pixels(w, h);
  if (opt.mode_ == FitMode::CenterCrop) {
    // The intermediate image covers the output at the source's aspect ratio; refuse one that
    // would be absurdly large (a 1 x 60000 strip cropped to 224 x 224 needs 224 x 13 M pixels).
    const double cover = std::max(static_cast<double>(opt.height_) / h, static_cast<double>(opt.width_) / w);
    if (cover * h * cover * w > static_cast<double>(kMaxImagePixels)) {
      throw std::runtime_error(path + ": a " + std::to_string(w) + "x" + std::to_string(h) +
                               " image is too elongated to centre-crop to " + std::to_string(opt.height_) + "x" +
                               std::to_string(opt.width_) + " (use the Resize fit mode)");
    }
  }
  // Interleaved HWC -> planar CHW.
  std::vector<uint8_t> chw(static_cast<size_t>(want) * static_cast<size_t>(w) * static_cast<size_t>(h));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < want; ++c) {
        chw[(static_cast<size_t>(c) * h + y) * w + x] = px[(static_cast<size_t>(y) * w + x) * want + c];
      }
    }
  }
  if (opt.mode_ == FitMode::Resize) return resize_bytes(chw, want, h, w, opt.height_, opt.width_);
  // CenterCrop: scale so that the image covers height x width, then cut the centre.
  const double scale = std::max(static_cast<double>(opt.height_) / h, static_cast<double>(opt.width_) / w);
  const int64_t sh = std::max<int64_t>(opt.height_, static_cast<int64_t>(std::lround(h * scale)));
  const int64_t sw = std::max<int64_t>(opt.width_, static_cast<int64_t>(std::lround(w * scale)));
  const std::vector<uint8_t> scaled = resize_bytes(chw, want, h, w, sh, sw);
  return center_crop(scaled, want, sh, sw, opt.height_, opt.width_);
}

struct ImageFolderDataset::Loaded {
  std::string name;
  ImageFolderOptions opt;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  std::vector<std::string> files, warnings, classes;
};

ImageFolderDataset::Loaded ImageFolderDataset::load(const std::string& root, const ImageFolderOptions& opt) {
  if (!dir_exists(root)) {
    throw std::runtime_error(root + ": image folder not found (expected a directory root/<class>/*.png|jpg|jpeg|bmp)");
  }
  Loaded L;
  L.name = "image folder " + root;
  L.opt = opt;
  L.classes = list_dir(root, true);
  if (L.classes.empty()) {
    throw std::runtime_error(
        root + ": empty image folder: expected one sub-directory per class (root/<class>/*.png), found none");
  }
  for (size_t c = 0; c < L.classes.size(); ++c) {
    const std::string dir = join_path(root, L.classes[c]);
    std::vector<std::string> names = list_dir(dir, false);
    names.erase(
        std::remove_if(names.begin(), names.end(), [](const std::string& n) { return !has_image_extension(n); }),
        names.end());
    if (names.empty()) {
      throw std::runtime_error(dir + ": class folder holds no images (expected *.png, *.jpg, *.jpeg or *.bmp)");
    }
    for (const std::string& n : names) {
      const std::string path = join_path(dir, n);
      std::vector<uint8_t> img;
      try {
        img = load_image_file(path, opt);
      } catch (const std::runtime_error& e) {
        if (!opt.skip_undecodable_) throw;
        L.warnings.push_back(std::string("skipped ") + e.what());
        if (opt.print_warnings_) std::cerr << "warning: ImageFolder: " << L.warnings.back() << "\n";
        continue;
      }
      L.pixels.insert(L.pixels.end(), img.begin(), img.end());
      L.labels.push_back(static_cast<int64_t>(c));
      L.files.push_back(path);
    }
  }
  if (L.files.empty()) throw std::runtime_error(root + ": every image was undecodable and skipped; no examples left");
  return L;
}

ImageFolderDataset::ImageFolderDataset(const std::string& root, const ImageFolderOptions& options)
    : ImageFolderDataset(load(root, options)) {}

ImageFolderDataset::ImageFolderDataset(Loaded&& L)
    : U8ImageDataset(L.name, L.opt.channels_, L.opt.height_, L.opt.width_, std::move(L.pixels), std::move(L.labels),
                     std::vector<int64_t>{static_cast<int64_t>(L.classes.size())},
                     std::vector<std::vector<std::string>>{L.classes}),
      files_(std::move(L.files)),
      warnings_(std::move(L.warnings)),
      classes_(std::move(L.classes)) {}

void write_png(const std::string& path, const uint8_t* chw, int64_t c, int64_t h, int64_t w) {
  if (c != 1 && c != 3)
    throw std::invalid_argument("write_png(" + path + "): expected 1 or 3 channels, found " + std::to_string(c));
  std::vector<uint8_t> hwc(static_cast<size_t>(c * h * w));
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t p = 0; p < h * w; ++p) hwc[static_cast<size_t>(p * c + k)] = chw[k * h * w + p];
  }
  std::vector<uint8_t> png;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(sink, &png, static_cast<int>(w), static_cast<int>(h), static_cast<int>(c), hwc.data(),
                              static_cast<int>(w * c))) {
    throw std::runtime_error(path + ": PNG encoding failed");
  }
  write_bytes_atomic(path, png);
}

void write_image_folder(const U8ImageDataset& ds, const std::string& root, int64_t label_set) {
  const DatasetInfo inf = ds.info();
  if (label_set < 0 || label_set >= static_cast<int64_t>(inf.num_classes.size())) {
    throw std::invalid_argument("write_image_folder(" + inf.name + "): label set " + std::to_string(label_set) +
                                " does not exist (the dataset has " + std::to_string(inf.num_classes.size()) + ")");
  }
  const int64_t nc = inf.num_classes[static_cast<size_t>(label_set)];
  std::vector<std::string> names;
  for (int64_t c = 0; c < nc; ++c) {
    names.push_back(inf.class_names.empty() ? std::to_string(c)
                                            : inf.class_names[static_cast<size_t>(label_set)][static_cast<size_t>(c)]);
  }
  // The loader numbers classes in sorted folder order; when the names do not sort in label order,
  // prefix them with the zero-padded label ("03-checks") so that a round trip keeps the labels.
  if (!std::is_sorted(names.begin(), names.end()) || std::adjacent_find(names.begin(), names.end()) != names.end()) {
    const size_t digits = std::to_string(nc - 1).size();
    for (int64_t c = 0; c < nc; ++c) {
      const std::string num = std::to_string(c);
      names[static_cast<size_t>(c)] = std::string(digits - num.size(), '0') + num + "-" + names[static_cast<size_t>(c)];
    }
  }
  for (const auto& n : names) make_dirs(join_path(root, n));
  const size_t digits = std::to_string(std::max<int64_t>(ds.size() - 1, 0)).size();
  for (int64_t i = 0; i < ds.size(); ++i) {
    std::string idx = std::to_string(i);
    idx = std::string(digits - idx.size(), '0') + idx;
    const std::string& cls = names[static_cast<size_t>(ds.label(i, label_set))];
    write_png(join_path(join_path(root, cls), idx + ".png"), ds.pixels(i), ds.channels(), ds.height(), ds.width());
  }
}

}  // namespace data
}  // namespace scalpel
