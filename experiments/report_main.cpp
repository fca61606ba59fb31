// scalpel-report DIR: rebuilds a sweep's outputs (front.csv, hypervolume.json, Pareto plots,
// curves.png, report.md) from the run folders in DIR, e.g. after adding runs or changing plots.
// scalpel-report --merge OUT SRC1 SRC2 ...: joins sweeps of one recipe that were run as separate
// invocations (split by method or λ) into the new sweep folder OUT and builds its outputs.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "experiments/runner/merge.h"
#include "experiments/runner/report.h"

namespace {

const char* kUsage =
    "usage: scalpel-report DIR [--hv-main-cap X]\n"
    "         rebuilds front.csv, hypervolume.json, pareto_*.png/svg, curves.png and report.md from the run\n"
    "         folders of the sweep in DIR; --hv-main-cap sets the capped hypervolume's main-loss cap (default:\n"
    "         the sweep's --hv-main-cap, else the main loss of its lambda=0 run, else of its stl task-0 run)\n"
    "       scalpel-report --merge OUT SRC1 SRC2 [SRC...]\n"
    "         copies the runs of sweeps of the same recipe into the new folder OUT and builds one report\n"
    "example: scalpel-smooth-mlp --methods mixed,pcgrad --out runs/a &  scalpel-smooth-mlp --methods bloop --out "
    "runs/b\n"
    "         scalpel-report --merge runs/all runs/a runs/b\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  double cap = NAN;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--hv-main-cap") continue;
    char* end = nullptr;
    const std::string v = i + 1 < args.size() ? args[i + 1] : std::string();
    cap = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(cap)) {
      std::cerr << "scalpel-report: --hv-main-cap expects a finite number (a main-loss value), got '" << v << "'\n"
                << kUsage;
      return 2;
    }
    args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
    break;
  }
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  const bool merge = !args.empty() && args[0] == "--merge";
  if (merge && std::isfinite(cap)) {
    std::cerr << "scalpel-report: --hv-main-cap goes with DIR, not --merge; merge first, then run "
                 "scalpel-report OUT --hv-main-cap X\n";
    return 2;
  }
  if (merge ? args.size() < 4 : (args.size() != 1 || args[0].rfind("-", 0) == 0)) {
    std::cerr << "scalpel-report: "
              << (merge ? "--merge expects OUT and at least two source sweeps"
                        : "expected one sweep folder DIR or --merge OUT SRC1 SRC2 ...")
              << "\n"
              << kUsage;
    return 2;
  }
  try {
    if (merge) {
      const std::string out = args[1];
      const auto rep = scalpel::experiments::merge_sweeps({args.begin() + 2, args.end()}, out);
      std::cout << scalpel::experiments::format_report_summary(rep, out);
      return 0;
    }
    const std::string dir = args[0];
    if (!std::filesystem::is_directory(dir)) {
      std::cerr << "scalpel-report: DIR '" << dir << "' is not a directory\n";
      return 2;
    }
    const auto rep = scalpel::experiments::build_sweep_report(dir, cap);
    std::cout << scalpel::experiments::format_report_summary(rep, dir);
    return 0;
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
