#include "experiments/runner/sweep_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/state_dict.h"
#include "experiments/runner/runner.h"

namespace fs = std::filesystem;

namespace scalpel {
namespace experiments {

SweepLock& SweepLock::operator=(SweepLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

SweepLock::~SweepLock() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// Entries of a folder other than the lock file and stale temporaries.
bool holds_user_files(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string n = entry.path().filename().string();
    if (n == ".lock" || is_atomic_temp_name(n)) continue;
    return true;
  }
  return false;
}

}  // namespace

int remove_stale_temp_files(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec) && is_atomic_temp_name(it->path().filename().string())) {
      if (fs::remove(it->path(), ec)) ++removed;
    }
  }
  return removed;
}

SweepLock claim_sweep_dir(const std::string& out, bool resume, bool overwrite) {
  if (out.empty()) throw UsageError("--out: expected a folder, got an empty path");
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) {
    throw UsageError("--out: " + out + " is a file, not a folder");
  }
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out)) {
    throw UsageError("--out: cannot create the folder " + out + (ec ? " (" + ec.message() + ")" : std::string()));
  }
  const std::string lock_path = out + "/.lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw UsageError("--out: cannot write in " + out + " (" + std::strerror(errno) + ")");
  }
  SweepLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    const std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
    throw UsageError("--out: " + out + " is being written by another sweep (pid " + pid + ", lock " + lock_path +
                     "); wait for it to finish or choose another folder");
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd, 0) == 0) {
    (void)!::pwrite(fd, me.data(), me.size(), 0);
  }
  const bool has_sweep = fs::exists(out + "/config.json");
  if (!resume) {
    if (has_sweep && !overwrite) {
      throw UsageError("--out: " + out + " holds an earlier sweep (config.json); pass --resume " + out +
                       " to continue it, --overwrite to replace it, or choose another folder");
    }
    if (!has_sweep && holds_user_files(out)) {
      throw UsageError("--out: " + out + " is not empty and holds no Scalpel sweep; choose an empty or new folder");
    }
    if (has_sweep && overwrite) {
      for (const auto& entry : fs::directory_iterator(out)) {
        if (entry.path().filename() == ".lock") continue;
        fs::remove_all(entry.path());
      }
    }
  }
  remove_stale_temp_files(out);
  return lock;
}

}  // namespace experiments
}  // namespace scalpel
