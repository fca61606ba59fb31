#include "data/registry.h"

#include <stdexcept>

#include "data/cifar.h"
#include "data/composite.h"
#include "data/io.h"
#include "data/mnist.h"

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

Resolved resolve_mnist(Split split, const DatasetOptions& o) {
  const std::string dir = join_path(o.data_dir_, "mnist");
  Resolved r;
  if (find_mnist_files(dir, split).found()) {
    r.dataset = cap(load_mnist(dir, split), o);
    r.message = "using MNIST " + std::string(split_name(split)) + " from " + dir + " (" +
                std::to_string(r.dataset->size()) + " images)";
    return r;
  }
  r.dataset = make_synthetic_digits(split, o.synthetic_);
  r.synthetic = true;
  r.message = "MNIST not found in " + dir + ": using synthetic-digits " + split_name(split) + " (" +
              std::to_string(r.dataset->size()) + " images; " + kHint + ")";
  return r;
}

Resolved resolve_cifar10(Split split, const DatasetOptions& o) {
  const std::string dir = join_path(o.data_dir_, "cifar-10-batches-bin");
  Resolved r;
  if (!find_cifar10_files(dir, split).empty()) {
    r.dataset = cap(load_cifar10(dir, split), o);
    r.message = "using CIFAR-10 " + std::string(split_name(split)) + " from " + dir + " (" +
                std::to_string(r.dataset->size()) + " images)";
    return r;
  }
  r.dataset = make_synthetic_textures(split, o.synthetic_);
  r.synthetic = true;
  r.message = "CIFAR-10 not found in " + dir + ": using synthetic-textures " + split_name(split) + " (" +
              std::to_string(r.dataset->size()) + " images; " + kHint + ")";
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
