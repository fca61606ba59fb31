// scalpel-data: export the built-in synthetic datasets in the real on-disk formats, draw sample
// grids, and describe datasets.
//
//   scalpel-data export synthetic-digits --out DIR [--gzip]     MNIST idx files in DIR
//   scalpel-data export synthetic-textures --out DIR            CIFAR-10 binary batches in DIR
//   scalpel-data export synthetic-composite --out DIR           DIR/mnist + DIR/cifar-10-batches-bin
//   scalpel-data export synthetic-text --out DIR                DIR/generic.txt + DIR/specific.txt
//   scalpel-data export <image set> --out DIR --format png      DIR/{train,test}/<class>/<i>.png
//   scalpel-data show <name> --out grid.png [--rows 8 --cols 8 --scale 3 --split train]
//   scalpel-data info <name> [--data-dir DIR]
// <name> for show/info is any make_dataset name (data/registry.h), including the real sets
// (mnist, cifar10, cifar10-mnist, read from --data-dir). Exit codes: 0 success, 1 runtime
// error (message names the file), 2 usage error (message names the flag).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/data.h"

using namespace scalpel;
using namespace scalpel::data;

namespace {

struct Args {
  std::string name, out, data_dir = kDefaultDataDir, split = "train", format = "native";
  uint64_t seed = 0;
  int64_t train_size = -1, test_size = -1, rows = 8, cols = 8, scale = 3;
  int64_t generic_bytes = int64_t{10} << 20, specific_bytes = int64_t{100} << 10;
  bool gzip = false;
};

Split parse_split(const std::string& s) { return s == "test" ? Split::Test : Split::Train; }

// Bytes of an example (float [C, H, W] in [0, 1] -> 8-bit).
std::vector<uint8_t> example_bytes(const Dataset& ds, int64_t i, std::vector<int64_t>& labels) {
  const DatasetInfo inf = ds.info();
  std::vector<float> x(static_cast<size_t>(shape_numel(inf.input_shape)));
  labels.assign(inf.num_classes.size(), 0);
  ds.read(i, x.data(), labels.data());
  std::vector<uint8_t> b(x.size());
  for (size_t k = 0; k < x.size(); ++k) b[k] = to_byte(x[k] * 255.0f);
  return b;
}

// A U8ImageDataset copy of any image dataset (the composite is computed in float; quantised here).
std::shared_ptr<U8ImageDataset> to_u8(const Dataset& ds) {
  if (auto* u = dynamic_cast<const U8ImageDataset*>(&ds)) return std::make_shared<U8ImageDataset>(*u);
  const DatasetInfo inf = ds.info();
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels, lab;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const std::vector<uint8_t> b = example_bytes(ds, i, lab);
    pixels.insert(pixels.end(), b.begin(), b.end());
    labels.insert(labels.end(), lab.begin(), lab.end());
  }
  return std::make_shared<U8ImageDataset>(inf.name, inf.input_shape[0], inf.input_shape[1], inf.input_shape[2],
                                          std::move(pixels), std::move(labels), inf.num_classes, inf.class_names);
}

DatasetOptions dataset_options(const Args& a, Split split) {
  DatasetOptions o;
  o.data_dir(a.data_dir).seed(a.seed).size(split == Split::Train ? a.train_size : a.test_size);
  return o;
}

int run_export(const Args& a) {
  if (a.name == "synthetic-text") {
    const TextCorpora t = make_synthetic_text(
        SyntheticTextOptions().seed(a.seed).generic_bytes(a.generic_bytes).specific_bytes(a.specific_bytes));
    make_dirs(a.out);
    write_text_atomic(join_path(a.out, "generic.txt"), t.generic.str());
    write_text_atomic(join_path(a.out, "specific.txt"), t.specific.str());
    std::cout << "wrote " << join_path(a.out, "generic.txt") << " (" << t.generic.size() << " bytes) and "
              << join_path(a.out, "specific.txt") << " (" << t.specific.size() << " bytes)\n";
    return 0;
  }
  const std::vector<std::string> image_sets = {"synthetic-digits", "synthetic-textures", "synthetic-composite"};
  if (std::find(image_sets.begin(), image_sets.end(), a.name) == image_sets.end()) {
    std::cerr << "scalpel-data export: NAME must be synthetic-digits, synthetic-textures, synthetic-composite or "
                 "synthetic-text, got '"
              << a.name << "'\n";
    return 2;
  }
  for (Split split : {Split::Train, Split::Test}) {
    const DatasetOptions o = dataset_options(a, split);
    if (a.format == "png") {
      const auto ds = to_u8(*make_dataset(a.name, split, o));
      write_image_folder(*ds, join_path(a.out, split_name(split)));
      std::cout << "wrote " << ds->size() << " PNG files under " << join_path(a.out, split_name(split)) << "\n";
      continue;
    }
    if (a.name == "synthetic-digits") {
      // The layout --data-dir reads (and the default data/ folder has): <out>/mnist, <out>/cifar-10-batches-bin.
      write_mnist(*make_synthetic_digits(split, o.synthetic_), join_path(a.out, "mnist"), split, a.gzip);
    } else if (a.name == "synthetic-textures") {
      write_cifar10(*make_synthetic_textures(split, o.synthetic_), join_path(a.out, "cifar-10-batches-bin"), split);
    } else {
      // The composite's real on-disk form is its two sources: a data dir that resolve_cifar10_mnist reads.
      SyntheticOptions so = o.synthetic_;
      if (so.size_ < 0) so.size_ = split == Split::Train ? 50000 : 10000;
      write_mnist(*make_synthetic_digits(split, so), join_path(a.out, "mnist"), split, a.gzip);
      write_cifar10(*make_synthetic_textures(split, so), join_path(a.out, "cifar-10-batches-bin"), split);
    }
    const std::string where = a.name == "synthetic-digits"     ? join_path(a.out, "mnist")
                              : a.name == "synthetic-textures" ? join_path(a.out, "cifar-10-batches-bin")
                                                               : a.out;
    std::cout << "wrote " << a.name << " " << split_name(split) << " to " << where << " (read it with --data-dir "
              << a.out << ")\n";
  }
  return 0;
}

int run_show(const Args& a) {
  if (a.name == "synthetic-text") {
    const TextCorpora t =
        make_synthetic_text(SyntheticTextOptions().seed(a.seed).generic_bytes(4096).specific_bytes(4096));
    std::cout << "--- generic (first 600 bytes) ---\n"
              << t.generic.str().substr(0, 600) << "\n--- specific (first 600 bytes) ---\n"
              << t.specific.str().substr(0, 600) << "\n";
    return 0;
  }
  if (a.out.empty()) {
    std::cerr << "scalpel-data show: --out is required for image sets (the PNG grid to write)\n";
    return 2;
  }
  const Split split = parse_split(a.split);
  DatasetOptions o = dataset_options(a, split);
  if (o.synthetic_.size_ < 0) o.synthetic_.size_ = a.rows * a.cols;  // only what the grid shows
  const auto ds = make_dataset(a.name, split, o);
  const DatasetInfo inf = ds->info();
  if (inf.input_shape.size() != 3) throw std::invalid_argument("show: " + inf.name + " is not an image dataset");
  const int64_t c = inf.input_shape[0], h = inf.input_shape[1], w = inf.input_shape[2], gap = 2, s = a.scale;
  const int64_t n = std::min<int64_t>(a.rows * a.cols, ds->size());
  const int64_t gh = a.rows * (h * s + gap) + gap, gw = a.cols * (w * s + gap) + gap;
  std::vector<uint8_t> grid(static_cast<size_t>(3 * gh * gw), 96);
  std::vector<int64_t> lab;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<uint8_t> b = example_bytes(*ds, i, lab);
    const int64_t oy = gap + (i / a.cols) * (h * s + gap), ox = gap + (i % a.cols) * (w * s + gap);
    for (int64_t k = 0; k < 3; ++k) {
      const int64_t src_c = c == 1 ? 0 : k;
      for (int64_t y = 0; y < h * s; ++y) {
        for (int64_t x = 0; x < w * s; ++x) {
          grid[static_cast<size_t>((k * gh + oy + y) * gw + ox + x)] =
              b[static_cast<size_t>((src_c * h + y / s) * w + x / s)];
        }
      }
    }
  }
  write_png(a.out, grid.data(), 3, gh, gw);
  std::cout << "wrote " << a.out << ": " << n << " samples of " << inf.name << " (" << a.rows << "x" << a.cols << ")\n";
  return 0;
}

int run_info(const Args& a) {
  if (a.name == "synthetic-text") {
    const TextCorpora t = make_synthetic_text(
        SyntheticTextOptions().seed(a.seed).generic_bytes(a.generic_bytes).specific_bytes(a.specific_bytes));
    std::cout << t.generic.source() << ": " << t.generic.size() << " bytes\n"
              << t.specific.source() << ": " << t.specific.size() << " bytes\n";
    return 0;
  }
  for (Split split : {Split::Train, Split::Test}) {
    const auto ds = make_dataset(a.name, split, dataset_options(a, split));
    const DatasetInfo inf = ds->info();
    std::cout << inf.name << ": " << ds->size() << " examples, input " << shape_str(inf.input_shape) << ", label sets:";
    for (size_t l = 0; l < inf.num_classes.size(); ++l) {
      std::vector<int64_t> count(static_cast<size_t>(inf.num_classes[l]), 0);
      std::vector<float> x(static_cast<size_t>(shape_numel(inf.input_shape)));
      std::vector<int64_t> lab(inf.num_classes.size());
      for (int64_t i = 0; i < ds->size(); ++i) {
        ds->read(i, x.data(), lab.data());
        ++count[static_cast<size_t>(lab[l])];
      }
      std::cout << " [" << inf.num_classes[l] << " classes, counts";
      for (int64_t v : count) std::cout << " " << v;
      std::cout << "]";
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"scalpel-data: export, show and describe Scalpel's datasets"};
  app.require_subcommand(1);
  Args a;
  const std::vector<std::string> names = {
      "synthetic-digits", "synthetic-textures", "synthetic-composite", "synthetic-text", "mnist",
      "cifar10",          "cifar10-mnist"};
  auto common = [&](CLI::App* sub) {
    sub->add_option("name", a.name, "dataset name")->required()->check(CLI::IsMember(names));
    sub->add_option("--seed", a.seed, "seed of the synthetic sets");
    sub->add_option("--data-dir", a.data_dir, "folder holding mnist/ and cifar-10-batches-bin/ (real sets)");
    sub->add_option("--train-size", a.train_size, "training examples (-1 = default)")
        ->check(CLI::Range(int64_t{-1}, int64_t{10000000}));
    sub->add_option("--test-size", a.test_size, "test examples (-1 = default)")
        ->check(CLI::Range(int64_t{-1}, int64_t{10000000}));
  };
  CLI::App* exp = app.add_subcommand("export", "write a synthetic set in its real on-disk format");
  common(exp);
  exp->add_option("--out", a.out, "output directory")->required();
  exp->add_option("--format", a.format, "native (idx / CIFAR binary / text) or png (image folder)")
      ->check(CLI::IsMember({"native", "png"}));
  exp->add_flag("--gzip", a.gzip, "gzip the idx files, as MNIST is distributed");
  exp->add_option("--generic-bytes", a.generic_bytes, "synthetic-text: size of the generic corpus")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 31));
  exp->add_option("--specific-bytes", a.specific_bytes, "synthetic-text: size of the specific corpus")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 31));
  CLI::App* show = app.add_subcommand("show", "write a PNG grid of samples");
  common(show);
  show->add_option("--out", a.out, "output PNG file (required for image sets)");
  show->add_option("--split", a.split, "train or test")->check(CLI::IsMember({"train", "test"}));
  show->add_option("--rows", a.rows, "grid rows")->check(CLI::Range(1, 64));
  show->add_option("--cols", a.cols, "grid columns")->check(CLI::Range(1, 64));
  show->add_option("--scale", a.scale, "pixel magnification")->check(CLI::Range(1, 16));
  CLI::App* info = app.add_subcommand("info", "print sizes and per-class counts");
  common(info);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message naming the flag
    return 2;
  }
  try {
    if (*exp) return run_export(a);
    if (*show) return run_show(a);
    return run_info(a);
  } catch (const std::invalid_argument& e) {
    std::cerr << "scalpel-data: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "scalpel-data: out of memory building the data set; use a smaller --train-size / --test-size\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "scalpel-data: " << e.what() << "\n";
    return 1;
  }
}
