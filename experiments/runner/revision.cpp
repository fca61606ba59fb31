// git_revision() (runner.h) from the header that cmake/GitRevision.cmake writes at build time.
#include "experiments/runner/runner.h"
#include "git_revision.h"

namespace scalpel {
namespace experiments {

std::string git_revision() { return SCALPEL_GIT_REVISION; }

}  // namespace experiments
}  // namespace scalpel
