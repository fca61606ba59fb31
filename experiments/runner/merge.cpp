#include "experiments/runner/merge.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "core/state_dict.h"
#include "experiments/runner/metrics.h"

namespace scalpel {
namespace experiments {

namespace fs = std::filesystem;

namespace {

// Keys that describe one invocation rather than the recipe; they may differ between sources.
const std::set<std::string> kPerSource = {"argv", "out", "started", "threads", "threading", "git_revision"};
// Keys that list what a source ran; the merge takes their union.
const std::set<std::string> kUnion = {"methods", "surgeon_methods", "lambdas", "rhos", "runs"};

nlohmann::json read_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!fs::is_directory(dir))
    throw std::invalid_argument("scalpel-report --merge: source '" + dir + "' is not a folder");
  try {
    return nlohmann::json::parse(read_text(path));
  } catch (const std::exception& e) {
    throw std::runtime_error("scalpel-report --merge: cannot read " + path + " (" + e.what() +
                             "); expected the folder of a sweep written by a scalpel experiment");
  }
}

bool is_recipe_key(const std::string& key) { return !kPerSource.count(key) && !kUnion.count(key); }

// Throws if the recipes of `a` (from `a_dir`) and `b` differ in any key, naming the key and both values.
void check_same_recipe(const nlohmann::json& a, const std::string& a_dir, const nlohmann::json& b,
                       const std::string& b_dir) {
  auto shown = [](const nlohmann::json& c, const std::string& k) {
    return c.contains(k) ? c[k].dump() : std::string("(absent)");
  };
  for (const nlohmann::json* side : {&a, &b}) {
    for (const auto& item : side->items()) {
      const std::string& key = item.key();
      if (!is_recipe_key(key) || (a.contains(key) && b.contains(key) && a[key] == b[key])) continue;
      throw std::invalid_argument("scalpel-report --merge: '" + key + "' differs: " + shown(a, key) + " in " + a_dir +
                                  ", " + shown(b, key) + " in " + b_dir +
                                  "; only sweeps of the same recipe can share a front");
    }
  }
}

template <class T>
void append_unique(nlohmann::json& into, const nlohmann::json& from) {
  std::vector<T> v = into.is_array() ? into.get<std::vector<T>>() : std::vector<T>{};
  for (const T& x : from.get<std::vector<T>>()) {
    if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
  }
  into = v;
}

}  // namespace

SweepReport merge_sweeps(const std::vector<std::string>& sources, const std::string& out) {
  if (sources.size() < 2) {
    throw std::invalid_argument("scalpel-report --merge: expected at least two source sweeps, got " +
                                std::to_string(sources.size()));
  }
  if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out))) {
    throw std::invalid_argument("scalpel-report --merge: output '" + out +
                                "' already exists and is not an empty folder (refusing to overwrite it)");
  }
  std::vector<nlohmann::json> cfgs;
  for (const std::string& s : sources) cfgs.push_back(read_config(s));

  for (size_t i = 1; i < cfgs.size(); ++i) {  // the most telling mismatch first
    if (cfgs[i].value("experiment", "") != cfgs[0].value("experiment", "")) {
      throw std::invalid_argument("scalpel-report --merge: " + sources[0] + " is a " +
                                  cfgs[0].value("experiment", "?") + " sweep but " + sources[i] + " is a " +
                                  cfgs[i].value("experiment", "?") +
                                  " sweep; only sweeps of the same recipe can share a front");
    }
  }
  nlohmann::json merged = cfgs[0];
  nlohmann::json from = nlohmann::json::array();
  std::set<std::string> seen_dirs;
  for (size_t i = 0; i < cfgs.size(); ++i) {
    const nlohmann::json& c = cfgs[i];
    if (i > 0) check_same_recipe(cfgs[0], sources[0], c, sources[i]);
    if (!c.contains("runs")) {
      throw std::invalid_argument("scalpel-report --merge: " + sources[i] +
                                  "/config.json has no \"runs\" list (written by an older version)");
    }
    for (const auto& r : c["runs"]) {
      const std::string d = r.value("dir", "");
      if (d.empty() || !seen_dirs.insert(d).second) {
        throw std::invalid_argument("scalpel-report --merge: run '" + d + "' of " + sources[i] +
                                    (d.empty() ? " has no folder" : " is also in an earlier source"));
      }
    }
    nlohmann::json src = {{"dir", fs::absolute(sources[i]).lexically_normal().string()}};
    for (const std::string& k : kPerSource) {
      if (c.contains(k) && k != "out") src[k] = c[k];
    }
    from.push_back(src);
    if (i == 0) continue;
    append_unique<std::string>(merged["methods"], c.value("methods", nlohmann::json::array()));
    append_unique<std::string>(merged["surgeon_methods"], c.value("surgeon_methods", nlohmann::json::array()));
    append_unique<double>(merged["lambdas"], c.value("lambdas", nlohmann::json::array()));
    append_unique<double>(merged["rhos"], c.value("rhos", nlohmann::json::array()));
    for (const auto& r : c["runs"]) merged["runs"].push_back(r);
  }
  for (const char* k : {"lambdas", "rhos"}) {
    if (merged.contains(k) && merged[k].is_array()) {
      std::vector<double> v = merged[k].get<std::vector<double>>();
      std::sort(v.begin(), v.end());
      merged[k] = v;
    }
  }
  for (const std::string& k : kPerSource) merged.erase(k);
  merged["out"] = out;
  merged["merged_from"] = from;

  fs::create_directories(out);
  for (size_t i = 0; i < cfgs.size(); ++i) {
    for (const auto& r : cfgs[i]["runs"]) {
      const fs::path src = fs::path(sources[i]) / r.value("dir", "");
      const fs::path dst = fs::path(out) / r.value("dir", "");
      if (!fs::is_directory(src)) continue;  // a run that never started is reported as missing
      fs::create_directories(dst.parent_path());
      fs::copy(src, dst, fs::copy_options::recursive);
    }
  }
  write_file_atomic(out + "/config.json", merged.dump(2) + "\n");
  return build_sweep_report(out);
}

}  // namespace experiments
}  // namespace scalpel
