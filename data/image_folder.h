// Image folders: root/<class>/*.{png,jpg,jpeg,bmp}, decoded with stb_image (Debian libstb).
//
// Classes are the sub-directories of root sorted by name (bytewise); label = position in that
// order. Files inside a class are read in sorted order; other extensions (case-insensitive match)
// and hidden entries are ignored. Every image is decoded at construction (errors surface early)
// into `channels` channels (1: grayscale, RGB images are converted by stb's luma rule; 3: RGB,
// grayscale images are replicated; alpha is dropped) and brought to height x width:
//   - Resize: bicubic resize to exactly height x width (aspect not kept; antialiased when
//     shrinking);
//   - CenterCrop: bicubic resize so the shorter side fits (aspect kept), then the centre window.
// Errors (std::runtime_error, naming the path): a missing root, a root without class folders, a
// class folder without images, an undecodable image (stb's reason included). With
// skip_undecodable(true) such an image is skipped instead and a warning naming it is recorded
// in warnings() and printed to stderr.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace scalpel {
namespace data {

enum class FitMode { Resize, CenterCrop };

struct ImageFolderOptions {
  int64_t height_ = 32, width_ = 32;
  int64_t channels_ = 3;
  FitMode mode_ = FitMode::Resize;
  bool skip_undecodable_ = false;
  bool print_warnings_ = true;

  ImageFolderOptions& size(int64_t h, int64_t w) {
    height_ = h;
    width_ = w;
    return *this;
  }
  ImageFolderOptions& channels(int64_t c) {
    channels_ = c;
    return *this;
  }
  ImageFolderOptions& mode(FitMode m) {
    mode_ = m;
    return *this;
  }
  ImageFolderOptions& skip_undecodable(bool v) {
    skip_undecodable_ = v;
    return *this;
  }
  ImageFolderOptions& print_warnings(bool v) {
    print_warnings_ = v;
    return *this;
  }
};

// Decodes one image file to bytes [channels, height, width] fitted as the options say. Throws
// std::runtime_error naming the path when it cannot be read or decoded.
std::vector<uint8_t> load_image_file(const std::string& path, const ImageFolderOptions& options);
// The same from the file's bytes; `source` names it in errors. PNG structure is verified first
// (data/png_check.h); an image of more than kMaxImagePixels pixels is refused before decoding.
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
std::vector<uint8_t> decode_image(const uint8_t* bytes, size_t size, const std::string& source,
                                  const ImageFolderOptions& options);

class ImageFolderDataset : public U8ImageDataset {
 public:
  ImageFolderDataset(const std::string& root, const ImageFolderOptions& options = ImageFolderOptions());
  const std::vector<std::string>& files() const { return files_; }        // path of each example
  const std::vector<std::string>& warnings() const { return warnings_; }  // skipped files
  const std::vector<std::string>& classes() const { return classes_; }

 private:
  struct Loaded;
  ImageFolderDataset(Loaded&& loaded);
  static Loaded load(const std::string& root, const ImageFolderOptions& options);
  std::vector<std::string> files_, warnings_, classes_;
};

// Writes bytes [C, H, W] (C = 1 or 3) as a PNG file (atomic write).
void write_png(const std::string& path, const uint8_t* chw, int64_t c, int64_t h, int64_t w);
// Writes the dataset as root/<class name>/<index>.png, class taken from label set `label_set`.
void write_image_folder(const U8ImageDataset& ds, const std::string& root, int64_t label_set = 0);

}  // namespace data
}  // namespace scalpel
