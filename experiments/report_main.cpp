// scalpel-report DIR: rebuilds a sweep's outputs (front.csv, hypervolume.json, Pareto plots,
// curves.png, report.md) from the run folders in DIR, e.g. after adding runs or changing plots.
#include <filesystem>
#include <iostream>

#include "experiments/runner/report.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << "usage: scalpel-report DIR\n  rebuilds front.csv, hypervolume.json, pareto_*.png/svg, curves.png and "
                 "report.md from the run folders of the sweep in DIR\n";
    return (argc == 2) ? 0 : 2;
  }
  const std::string dir = argv[1];
  if (!std::filesystem::is_directory(dir)) {
    std::cerr << "scalpel-report: DIR '" << dir << "' is not a directory\n";
    return 2;
  }
  try {
    const auto rep = scalpel::experiments::build_sweep_report(dir);
    std::cout << scalpel::experiments::format_report_summary(rep, dir);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
