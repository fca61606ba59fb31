// The output folder of a sweep (--out) and who may write it.
//
// A sweep owns its folder: claim_sweep_dir checks the folder can be used and takes an exclusive
// lock on "<out>/.lock" (flock, released by the kernel when the process dies, so kill -9 never
// leaves a stale lock) that it holds until the returned SweepLock is destroyed. The rules:
//   - an empty path, a path that is a file, or a folder that cannot be created: UsageError naming --out;
//   - a folder holding an earlier sweep (config.json) without --resume or --overwrite: UsageError,
//     so nothing earlier is overwritten or mixed; with --overwrite the earlier sweep's files are
//     removed first (only when the folder holds a Scalpel sweep, never an unrelated folder);
//   - a non-empty folder that holds no sweep: UsageError (choose an empty or new folder);
//   - another live sweep holding the lock: UsageError naming its pid.
// Under the lock, temporary files "*.tmp.<pid>" that a killed writer left behind are deleted.
#pragma once

#include <string>

namespace scalpel {
namespace experiments {

class SweepLock {
 public:
  SweepLock() = default;
  explicit SweepLock(int fd) : fd_(fd) {}
  SweepLock(SweepLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  SweepLock& operator=(SweepLock&& o) noexcept;
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;
  ~SweepLock();

 private:
  int fd_ = -1;
};

// `resume` and `overwrite` are the --resume / --overwrite settings of the invocation.
SweepLock claim_sweep_dir(const std::string& out, bool resume, bool overwrite);

// Deletes files named "<anything>.tmp.<digits>" under `dir` (recursively); returns how many.
int remove_stale_temp_files(const std::string& dir);

}  // namespace experiments
}  // namespace scalpel
