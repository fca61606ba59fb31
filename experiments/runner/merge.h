// Merging sweeps: a λ sweep split over several processes or machines (e.g. `--methods mixed,pcgrad`
// in one folder and `--methods dynamic-barrier,bloop` in another) becomes one sweep folder with one
// front.csv, hypervolume table and set of plots, as if it had been run in one invocation.
//
// The sources must share their recipe: every config.json key that shapes a run (experiment,
// preset, steps, optimizer, learning rate, options, ...) must be equal, else the merge stops and
// names the key and both values, so incomparable runs never share a front. Keys that only describe
// the invocation (argv, out, started, threads, git revision) may differ and are kept per source
// under "merged_from". A run (method, λ folder) may appear in only one source.
#pragma once

#include <string>
#include <vector>

#include "experiments/runner/report.h"

namespace scalpel {
namespace experiments {

// Copies the run folders of every sweep in `sources` into `out` (which must not exist yet, or be
// an empty folder), writes the merged config.json atomically and rebuilds the sweep outputs.
SweepReport merge_sweeps(const std::vector<std::string>& sources, const std::string& out);

}  // namespace experiments
}  // namespace scalpel
