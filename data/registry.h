// Finding data: datasets by name, and the "real data if present, else the synthetic stand-in"
// helpers the experiments call.
//
// Names for make_dataset: "mnist", "cifar10", "cifar10-mnist" (real; read from
// options.data_dir, throwing when missing) and "synthetic-digits", "synthetic-textures",
// "synthetic-composite" (built in). Text has its own helpers (resolve_text, make_synthetic_text).
//
// resolve_mnist(data_dir) returns real MNIST when <data_dir>/mnist holds the idx files (raw or
// .gz), else synthetic-digits together with a message such as
//   "MNIST not found in data/mnist: using synthetic-digits (run scripts/fetch-data.sh or pass --data-dir)".
// resolve_cifar10 does the same with <data_dir>/cifar-10-batches-bin and synthetic-textures;
// resolve_cifar10_mnist builds the composite from whatever the other two resolve to (so real
// CIFAR-10 with synthetic digits is possible, and the message says so). Files that exist but are
// corrupt are NOT silently replaced: the loader's error propagates.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/synthetic.h"

namespace scalpel {
namespace data {

// The default data folder, relative to the working directory.
constexpr const char* kDefaultDataDir = "data";

struct DatasetOptions {
  std::string data_dir_ = kDefaultDataDir;
  SyntheticOptions synthetic_;  // seed and size for synthetic sets (size also caps real sets when >= 0)

  DatasetOptions& data_dir(std::string v) {
    data_dir_ = std::move(v);
    return *this;
  }
  DatasetOptions& seed(uint64_t v) {
    synthetic_.seed(v);
    return *this;
  }
  DatasetOptions& size(int64_t v) {
    synthetic_.size(v);
    return *this;
  }
};

// Every name make_dataset accepts.
const std::vector<std::string>& dataset_names();
// Throws std::invalid_argument listing the valid names for an unknown one.
std::shared_ptr<const Dataset> make_dataset(const std::string& name, Split split,
                                            const DatasetOptions& options = DatasetOptions());

struct Resolved {
  std::shared_ptr<const Dataset> dataset;
  bool synthetic = false;
  std::string message;  // one line for the log: what is used and, for synthetic data, how to get the real set
};
Resolved resolve_mnist(Split split, const DatasetOptions& options = DatasetOptions());
Resolved resolve_cifar10(Split split, const DatasetOptions& options = DatasetOptions());
Resolved resolve_cifar10_mnist(Split split, const DatasetOptions& options = DatasetOptions());

// Text corpora for joint-dataset language modelling: the given files/directories when both paths
// are non-empty, else synthetic-text (message says so).
struct ResolvedText {
  TextCorpora corpora;
  bool synthetic = false;
  std::string message;
};
ResolvedText resolve_text(const std::string& generic_path, const std::string& specific_path,
                          const SyntheticTextOptions& options = SyntheticTextOptions());

}  // namespace data
}  // namespace scalpel
