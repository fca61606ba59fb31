#include "data/registry.h"

#include <filesystem>
#include <stdexcept>

#include "data/cifar.h"
#include "data/composite.h"
#include "data/io.h"
#include "data/mnist.h"

namespace fs = std::filesystem;

namespace scalpel {
namespace data {

namespace {

std::shared_ptr<const Dataset> cap(std::shared_ptr<const Dataset> ds, const DatasetOptions& o) {
  if (o.synthetic_.size_ >= 0 && o.synthetic_.size_ < ds->size()) return take(std::move(ds), o.synthetic_.size_);
  return ds;
}

const char* kHint = "run scripts/fetch-data.sh or pass --data-dir";

}  // namespace

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {
      "mnist", "cifar10", "cifar10-mnist", "synthetic-digits", "synthetic-textures", "synthetic-composite"};
  return names;
}

std::shared_ptr<const Dataset> make_dataset(const std::string& name, Split split, const DatasetOptions& o) {
  if (name == "mnist") return cap(load_mnist(join_path(o.data_dir_, "mnist"), split), o);
  if (name == "cifar10") return cap(load_cifar10(join_path(o.data_dir_, "cifar-10-batches-bin"), split), o);
  if (name == "cifar10-mnist") {
    return cap(std::make_shared<CompositeDataset>(load_cifar10(join_path(o.data_dir_, "cifar-10-batches-bin"), split),
                                                  load_mnist(join_path(o.data_dir_, "mnist"), split),
                                                  std::string("cifar10-mnist ") + split_name(split)),
               o);
  }
  if (name == "synthetic-digits") return make_synthetic_digits(split, o.synthetic_);
  if (name == "synthetic-textures") return make_synthetic_textures(split, o.synthetic_);
  if (name == "synthetic-composite") return make_synthetic_composite(split, o.synthetic_);
  std::string valid;
  for (const auto& n : dataset_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("make_dataset: unknown dataset '" + name + "' (expected one of: " + valid + ")");
}

namespace {

// What one candidate folder holds of a data set's complete file set.
struct Inspection {
  std::string dir;
  bool exists = false;
  std::vector<std::string> present, missing;
  bool complete() const { return exists && missing.empty(); }
  std::string describe() const {
    if (!exists) return dir + " (no such folder)";
    std::string s = dir + " (";
    if (present.empty()) s += "none of the files";
    for (size_t i = 0; i < present.size(); ++i) s += (i ? ", " : "has ") + fs::path(present[i]).filename().string();
    if (!missing.empty()) {
      s += "; missing ";
      for (size_t i = 0; i < missing.size(); ++i) s += (i ? ", " : "") + missing[i];
    }
    return s + ")";
  }
};

Inspection inspect_mnist(const std::string& dir) {
  Inspection in;
  in.dir = dir;
  in.exists = fs::is_directory(dir);
  for (Split sp : {Split::Train, Split::Test}) {
    const MnistFiles f = find_mnist_files(dir, sp);
    const std::string prefix = sp == Split::Train ? "train" : "t10k";
    for (const auto& [path, name] : {std::pair<std::string, std::string>{f.images, prefix + "-images-idx3-ubyte[.gz]"},
                                     {f.labels, prefix + "-labels-idx1-ubyte[.gz]"}}) {
      if (path.empty())
        in.missing.push_back(name);
      else
        in.present.push_back(path);
    }
  }
  return in;
}

Inspection inspect_cifar10(const std::string& dir) {
  Inspection in;
  in.dir = dir;
  in.exists = fs::is_directory(dir);
  for (Split sp : {Split::Train, Split::Test}) {
    for (const std::string& n : cifar10_file_names(sp)) {
      const std::string p = join_path(dir, n);
      if (file_exists(p))
        in.present.push_back(p);
      else
        in.missing.push_back(n);
    }
  }
  return in;
}

// The folder to read a real data set from, per the rules in registry.h; "" for synthetic data.
std::string locate(const std::string& title, const std::string& sub, const std::string& exporter,
                   Inspection (*inspect)(const std::string&), const DatasetOptions& o) {
  std::vector<Inspection> tried;
  if (o.required_) tried.push_back(inspect(o.data_dir_));
  tried.push_back(inspect(join_path(o.data_dir_, sub)));
  for (const Inspection& in : tried) {
    if (in.complete()) return in.dir;
  }
  const Inspection& nested = tried.back();
  if (!o.required_ && !nested.exists) return "";
  std::string msg = title + " not found: ";
  if (o.required_) {
    msg += "--data-dir " + o.data_dir_ + " was given, so the data must come from there; tried ";
  } else {
    msg += nested.dir + " exists but does not hold the complete set, so it is not replaced by synthetic data; tried ";
  }
  for (size_t i = 0; i < tried.size(); ++i) msg += (i ? " and " : "") + tried[i].describe();
  msg += ". Complete the folder, " + std::string(o.required_ ? "fix --data-dir" : "remove it to use synthetic data") +
         ", or write a synthetic stand-in with 'scalpel-data export " + exporter + " --out " + o.data_dir_ + "'";
  throw DataNotFound(msg);
}

}  // namespace

Resolved resolve_mnist(Split split, const DatasetOptions& o) {
  const std::string dir = locate("MNIST", "mnist", "synthetic-digits", inspect_mnist, o);
  Resolved r;
  if (!dir.empty()) {
    r.dataset = cap(load_mnist(dir, split), o);
    r.name = "mnist";
    r.dir = dir;
    const MnistFiles f = find_mnist_files(dir, split);
    r.files = {f.images, f.labels};
    r.message = "using MNIST " + std::string(split_name(split)) + " from " + dir + " (" +
                std::to_string(r.dataset->size()) + " images)";
    return r;
  }
  r.dataset = make_synthetic_digits(split, o.synthetic_);
  r.synthetic = true;
  r.name = "synthetic-digits";
  r.message = "MNIST not found in " + join_path(o.data_dir_, "mnist") + ": using synthetic-digits " +
              split_name(split) + " (" + std::to_string(r.dataset->size()) + " images; " + kHint + ")";
  return r;
}

Resolved resolve_cifar10(Split split, const DatasetOptions& o) {
  const std::string dir = locate("CIFAR-10", "cifar-10-batches-bin", "synthetic-textures", inspect_cifar10, o);
  Resolved r;
  if (!dir.empty()) {
    r.dataset = cap(load_cifar10(dir, split), o);
    r.name = "cifar10";
    r.dir = dir;
    r.files = find_cifar10_files(dir, split);
    r.message = "using CIFAR-10 " + std::string(split_name(split)) + " from " + dir + " (" +
                std::to_string(r.dataset->size()) + " images)";
    return r;
  }
  r.dataset = make_synthetic_textures(split, o.synthetic_);
  r.synthetic = true;
  r.name = "synthetic-textures";
  r.message = "CIFAR-10 not found in " + join_path(o.data_dir_, "cifar-10-batches-bin") +
              ": using synthetic-textures " + split_name(split) + " (" + std::to_string(r.dataset->size()) +
              " images; " + kHint + ")";
  return r;
}

Resolved resolve_cifar10_mnist(Split split, const DatasetOptions& o) {
  DatasetOptions inner = o;
  if (inner.synthetic_.size_ < 0) inner.synthetic_.size_ = split == Split::Train ? 50000 : 10000;
  const Resolved bg = resolve_cifar10(split, inner);
  const Resolved dg = resolve_mnist(split, inner);
  Resolved r;
  r.synthetic = bg.synthetic || dg.synthetic;
  const std::string name = bg.synthetic && dg.synthetic ? "synthetic-composite" : "cifar10-mnist";
  r.dataset = std::make_shared<CompositeDataset>(bg.dataset, dg.dataset, name + " " + split_name(split));
  r.name = bg.synthetic == dg.synthetic ? name : "cifar10-mnist (" + bg.name + " + " + dg.name + ")";
  r.dir = o.data_dir_;
  r.files = bg.files;
  r.files.insert(r.files.end(), dg.files.begin(), dg.files.end());
  if (!r.synthetic) {
    r.message = "using Cifar10Mnist " + std::string(split_name(split)) + " built from " + bg.message.substr(6) +
                " and " + dg.message.substr(6);
  } else {
    r.message = "Cifar10Mnist: " + bg.message + "; " + dg.message;
  }
  return r;
}

ResolvedText resolve_text(const std::string& generic_path, const std::string& specific_path,
                          const SyntheticTextOptions& options) {
  ResolvedText r;
  if (!generic_path.empty() && !specific_path.empty()) {
    r.corpora.generic = ByteCorpus::from_path(generic_path);
    r.corpora.specific = ByteCorpus::from_path(specific_path);
    r.message = "using text corpora " + generic_path + " (" + std::to_string(r.corpora.generic.size()) +
                " bytes) and " + specific_path + " (" + std::to_string(r.corpora.specific.size()) + " bytes)";
    return r;
  }
  if (!generic_path.empty() || !specific_path.empty()) {
    throw std::invalid_argument("resolve_text: give both the generic and the specific corpus paths, or neither (got '" +
                                generic_path + "' and '" + specific_path + "')");
  }
  r.corpora = make_synthetic_text(options);
  r.synthetic = true;
  r.message = "no text corpora given: using synthetic-text (generic " + std::to_string(r.corpora.generic.size()) +
              " bytes, specific " + std::to_string(r.corpora.specific.size()) +
              " bytes; pass a generic and a specific corpus (file or directory) for real text)";
  return r;
}

}  // namespace data
}  // namespace scalpel
