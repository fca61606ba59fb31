// Finding data: datasets by name, and the "real data if present, else the synthetic stand-in"
// helpers the experiments call.
//
// Names for make_dataset: "mnist", "cifar10", "cifar10-mnist" (real; read from
// options.data_dir, throwing when missing) and "synthetic-digits", "synthetic-textures",
// "synthetic-composite" (built in). Text has its own helpers (resolve_text, make_synthetic_text).
//
// resolve_mnist looks for the complete set (train and test idx files, raw or .gz) and never mixes
// real and synthetic splits:
//   - with an explicit folder (DatasetOptions::required, i.e. --data-dir D): in D, then D/mnist;
//     when neither holds the complete set, DataNotFound lists every path tried and what each held;
//   - with the default folder "data": in data/mnist; when that folder does not exist,
//     synthetic-digits with a message saying so; when it exists but is incomplete (train files
//     without test files, an empty folder), DataNotFound: a half-present data set is a mistake.
// resolve_cifar10 does the same with cifar-10-batches-bin (all five data batches and the test
// batch) and synthetic-textures; resolve_cifar10_mnist builds the composite from what the other
// two resolve to (real CIFAR-10 with synthetic digits is possible with the default folder, and
// the message says so; an explicit folder must hold both). Files that exist but are corrupt are
// never replaced: the loader's error propagates.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/synthetic.h"

namespace scalpel {
namespace data {

// The default data folder, relative to the working directory.
constexpr const char* kDefaultDataDir = "data";

// The data set is not where the options say (the message lists the paths tried).
class DataNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DatasetOptions {
  std::string data_dir_ = kDefaultDataDir;
  bool required_ = false;       // the folder was named explicitly: real data from there, or DataNotFound
  SyntheticOptions synthetic_;  // seed and size for synthetic sets (size also caps real sets when >= 0)

  DatasetOptions& data_dir(std::string v) {
    data_dir_ = std::move(v);
    return *this;
  }
  DatasetOptions& required(bool v) {
    required_ = v;
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
  std::string name;                // "mnist", "synthetic-digits", "cifar10-mnist", ...
  std::string dir;                 // folder read ("" for synthetic data)
  std::vector<std::string> files;  // files read
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
