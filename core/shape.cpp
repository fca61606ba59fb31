#include "core/shape.h"

#include <sstream>
#include <stdexcept>

namespace scalpel {

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t d = dim < 0 ? dim + rank : dim;
  if (d < 0 || d >= rank) {
    std::ostringstream os;
    os << op << ": dimension " << dim << " is out of range for a tensor of rank " << rank << " (expected " << -rank
       << " <= dim < " << rank << ")";
    throw std::invalid_argument(os.str());
  }
  return d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      std::ostringstream os;
      os << op << ": shapes " << shape_str(a) << " and " << shape_str(b) << " cannot be broadcast (dimension "
         << static_cast<int64_t>(i) - static_cast<int64_t>(rank) << ": " << da << " vs " << db << ")";
      throw std::invalid_argument(os.str());
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target) {
  Shape out(target.size(), 0);
  const size_t lead = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    out[lead + i] = shape[i] == 1 && target[lead + i] != 1 ? 0 : strides[i];
  }
  return out;
}

void check_same_shape(const Shape& got, const Shape& expected, const char* op, const char* what) {
  if (got != expected) {
    throw std::invalid_argument(std::string(op) + ": " + what + " has shape " + shape_str(got) + ", expected " +
                                shape_str(expected));
  }
}

}  // namespace scalpel
