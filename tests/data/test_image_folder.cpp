// Image folders (stb_image): class order, exact pixels from lossless PNG/BMP, gray/RGB
// conversion, resize and centre crop, and the error paths.
#include <gtest/gtest.h>

#include <stb/stb_image_write.h>

#include "data/image_folder.h"
#include "data/io.h"
#include "temp_dir.h"

using namespace scalpel;
using namespace scalpel::data;
using scalpel::testing::error_of;
using scalpel::testing::TempDir;
using scalpel::testing::write_bytes;
using scalpel::testing::write_text;

namespace {

// Interleaved HWC bytes with value (seed + y*w*c + x*c + k) % 256.
std::vector<uint8_t> pattern(int h, int w, int c, int seed) {
  std::vector<uint8_t> v(static_cast<size_t>(h * w * c));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((static_cast<int>(i) + seed) % 256);
  return v;
}

void write_png_hwc(const std::string& path, const std::vector<uint8_t>& hwc, int h, int w, int c) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, c, hwc.data(), w * c));
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST(ImageFolder, SortedClassesExactPixelsGrayAndRgb) {
  TempDir dir;
  const auto rgb = pattern(4, 5, 3, 10), gray = pattern(4, 5, 1, 50);
  write_png_hwc(dir / "zebra/b.png", rgb, 4, 5, 3);
  write_png_hwc(dir / "zebra/a.png", gray, 4, 5, 1);
  std::filesystem::create_directories(dir / "ant");
  ASSERT_TRUE(stbi_write_bmp((dir / "ant/x.BMP").c_str(), 5, 4, 3, rgb.data()));
  write_text(dir / "ant/notes.txt", "ignored");
  auto ds = std::make_shared<ImageFolderDataset>(dir.path(), ImageFolderOptions().size(4, 5).channels(3));
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->classes(), (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(ds->label(0), 0);  // ant/x.BMP
  EXPECT_EQ(ds->label(1), 1);  // zebra/a.png (sorted by name)
  EXPECT_EQ(ds->files()[1], dir / "zebra/a.png");
  // RGB: planar [3, 4, 5] from interleaved; no resize (same size).
  for (int k = 0; k < 3; ++k)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) {
        EXPECT_EQ(ds->pixels(2)[(k * 4 + y) * 5 + x], rgb[static_cast<size_t>((y * 5 + x) * 3 + k)]);
        EXPECT_EQ(ds->pixels(0)[(k * 4 + y) * 5 + x],
                  rgb[static_cast<size_t>((y * 5 + x) * 3 + k)]);                             // BMP is lossless too
        EXPECT_EQ(ds->pixels(1)[(k * 4 + y) * 5 + x], gray[static_cast<size_t>(y * 5 + x)]);  // gray replicated
      }
  // Grayscale output converts RGB by stb's luma rule and keeps gray images as they are.
  auto g = std::make_shared<ImageFolderDataset>(dir.path(), ImageFolderOptions().size(4, 5).channels(1));
  EXPECT_EQ(g->info().input_shape, (Shape{1, 4, 5}));
  EXPECT_EQ(g->pixels(1)[7], gray[7]);
  const int r = rgb[0], gg = rgb[1], b = rgb[2];
  EXPECT_EQ(g->pixels(2)[0], static_cast<uint8_t>((r * 77 + gg * 150 + b * 29) >> 8));
}

TEST(ImageFolder, ResizeAndCenterCrop) {
  TempDir dir;
  // 8 x 16 gray image: left half 0, right half 200.
  std::vector<uint8_t> img(8 * 16);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) img[static_cast<size_t>(y * 16 + x)] = x < 8 ? 0 : 200;
  write_png_hwc(dir / "c/i.png", img, 8, 16, 1);
  auto resized = ImageFolderDataset(dir.path(), ImageFolderOptions().size(4, 4).channels(1).mode(FitMode::Resize));
  EXPECT_EQ(resized.info().input_shape, (Shape{1, 4, 4}));
  // Far left stays dark, far right bright (the cubic lobes overshoot a little, clamped at 0).
  EXPECT_EQ(resized.pixels(0)[0], 0);
  EXPECT_GE(resized.pixels(0)[3], 200);
  EXPECT_LE(resized.pixels(0)[3], 215);
  // Centre crop: scale 8x16 -> 4x8 (shorter side fits), then the centre 4x4 straddles the edge.
  auto cropped = ImageFolderDataset(dir.path(), ImageFolderOptions().size(4, 4).channels(1).mode(FitMode::CenterCrop));
  EXPECT_EQ(cropped.pixels(0)[0], 0);
  EXPECT_GE(cropped.pixels(0)[3], 200);
  EXPECT_LT(cropped.pixels(0)[1], 60);
  EXPECT_GT(cropped.pixels(0)[2], 140);
  // Resize squeezes 16 columns into 4 with an antialiasing kernel: the inner columns mix both halves.
  EXPECT_GT(resized.pixels(0)[1], 0);
  EXPECT_LT(resized.pixels(0)[1], 100);
  EXPECT_GT(resized.pixels(0)[2], 100);
  // Every row is the same.
  for (int y = 1; y < 4; ++y)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(resized.pixels(0)[y * 4 + x], resized.pixels(0)[x]);
}

TEST(ImageFolder, MissingOrEmptyFolder) {
  TempDir dir;
  const std::string missing = error_of<std::runtime_error>([&] { ImageFolderDataset d(dir / "nope"); });
  EXPECT_TRUE(contains(missing, "nope: image folder not found")) << missing;
  const std::string empty = error_of<std::runtime_error>([&] { ImageFolderDataset d(dir.path()); });
  EXPECT_TRUE(contains(empty, ": empty image folder: expected one sub-directory per class")) << empty;
  std::filesystem::create_directories(dir / "cls");
  write_text(dir / "cls/readme.txt", "no images here");
  const std::string noimg = error_of<std::runtime_error>([&] { ImageFolderDataset d(dir.path()); });
  EXPECT_TRUE(contains(noimg, "cls: class folder holds no images")) << noimg;
}

TEST(ImageFolder, UndecodableImageIsNamedOrSkippedWithAWarning) {
  TempDir dir;
  write_png_hwc(dir / "a/good.png", pattern(3, 3, 3, 0), 3, 3, 3);
  write_text(dir / "a/broken.png", "this is not a png");
  const std::string msg =
      error_of<std::runtime_error>([&] { ImageFolderDataset d(dir.path(), ImageFolderOptions().size(3, 3)); });
  EXPECT_TRUE(contains(msg, dir / "a/broken.png")) << msg;
  EXPECT_TRUE(contains(msg, "cannot decode image")) << msg;
  ::testing::internal::CaptureStderr();
  ImageFolderDataset d(dir.path(), ImageFolderOptions().size(3, 3).skip_undecodable(true));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(d.size(), 1);
  ASSERT_EQ(d.warnings().size(), 1u);
  EXPECT_TRUE(contains(d.warnings()[0], "broken.png")) << d.warnings()[0];
  EXPECT_TRUE(contains(err, "warning: ImageFolder: skipped")) << err;
  EXPECT_TRUE(contains(err, "broken.png")) << err;
}

TEST(ImageFolder, WriterRoundTripKeepsLabelsAndPixels) {
  TempDir dir;
  std::vector<uint8_t> px(4 * 3 * 2 * 2);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 5);
  // Class names that do not sort in label order get a numeric prefix.
  U8ImageDataset src("src", 3, 2, 2, px, {2, 0, 1, 2}, {3}, {{"zeta", "alpha", "mid"}});
  write_image_folder(src, dir.path());
  EXPECT_TRUE(file_exists(dir / "0-zeta/1.png"));  // example 1 has label 0
  EXPECT_TRUE(file_exists(dir / "2-mid/0.png"));
  ImageFolderDataset back(dir.path(), ImageFolderOptions().size(2, 2).channels(3));
  ASSERT_EQ(back.size(), 4);
  // Sorted by class then file name: class 0 (index 1), class 1 (index 2), class 2 (indices 0, 3).
  const std::vector<int64_t> order = {1, 2, 0, 3};
  for (int64_t k = 0; k < 4; ++k) {
    const int64_t i = order[static_cast<size_t>(k)];
    EXPECT_EQ(back.label(k), src.label(i));
    EXPECT_EQ(std::vector<uint8_t>(back.pixels(k), back.pixels(k) + 12),
              std::vector<uint8_t>(src.pixels(i), src.pixels(i) + 12));
  }
}

TEST(ImageFolder, ImageWithoutPixelsIsAnErrorNamingTheFile) {
  // A 24-bit BMP header claiming 31 x 0 pixels: stb_image decodes it to an empty image, which the
  // resize used to reject with std::invalid_argument (found by make fuzz, target fuzz_image).
  std::vector<uint8_t> bmp = {'B', 'M', 0x66, 0,    0, 0, 0,    0,    0, 0, 0x36, 0, 0, 0, 0x28, 0, 0,    0,
                              31,  0,   0,    0,    0, 0, 0,    0,    1, 0, 24,   0, 0, 0, 0,    0, 0x30, 0,
                              0,   0,   0x12, 0x0b, 0, 0, 0x13, 0x0b, 0, 0, 0,    0, 0, 0, 0,    0, 0,    0};
  bmp.resize(bmp.size() + 48, 0x7f);
  try {
    decode_image(bmp.data(), bmp.size(), "flat.bmp", ImageFolderOptions().size(4, 4));
    FAIL() << "decoded an image without pixels";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("flat.bmp: image has no pixels (31x0)"), std::string::npos) << e.what();
  }
}

TEST(ImageFolder, HugeOrElongatedImagesAreRefusedBeforeTheyCostMemory) {
  // A top-down BMP (negative height) of 5 x 16777214 pixels: stb reports the height as negative,
  // which used to slip past the size limit into a 10-second resize (found by fuzz_image).
  std::vector<uint8_t> bmp = {'B', 'M', 0x65, 0xff, 0xff, 0xff, 0xd5, 0xfe, 0,    0, 0x36, 0,  0, 0, 0x28, 0, 0,
                              0,   5,   0,    0,    0,    2,    0,    0,    0xff, 1, 0,    24, 0, 0, 0,    0, 0};
  bmp.resize(bmp.size() + 64, 0x13);
  const std::string tall =
      error_of<std::runtime_error>([&] { decode_image(bmp.data(), bmp.size(), "tall.bmp", ImageFolderOptions()); });
  EXPECT_NE(tall.find("tall.bmp: image of 5x16777214 pixels is larger than the 67108864-pixel limit"),
            std::string::npos)
      << tall;
  // A 1 x 3000 strip centre-cropped to 224 x 224 would first be scaled to 224 x 672000.
  std::vector<uint8_t> strip(3000, 128);
  TempDir dir;
  const std::string path = dir.path() + "/strip.png";
  write_png(path, strip.data(), 1, 1, 3000);
  const std::string crop = error_of<std::runtime_error>(
      [&] { load_image_file(path, ImageFolderOptions().size(224, 224).channels(1).mode(FitMode::CenterCrop)); });
  EXPECT_NE(crop.find("strip.png: a 3000x1 image is too elongated to centre-crop to 224x224 (use the Resize fit mode)"),
            std::string::npos)
      << crop;
  EXPECT_EQ(load_image_file(path, ImageFolderOptions().size(224, 224).channels(1)).size(), 224u * 224u);
}
