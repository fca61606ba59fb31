// Shapes, strides and broadcasting rules shared by every tensor op.
//
// A Shape is a list of int64 sizes (no rank cap). Strides are in elements, row-major by default.
// Broadcasting follows NumPy: shapes are aligned on the right, and a size-1 dimension stretches.
// Every helper that can fail throws std::invalid_argument with a message naming the calling op
// and the shapes involved, so errors read like
//   "add: shapes [3, 4] and [5] cannot be broadcast (dimension -1: 4 vs 5)".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace scalpel {

using Shape = std::vector<int64_t>;

// "[2, 3, 4]"; "[]" for a scalar.
std::string shape_str(const Shape& shape);

// Product of the sizes; 1 for a scalar shape.
int64_t shape_numel(const Shape& shape);

// Row-major (C order) strides for `shape`.
Shape contiguous_strides(const Shape& shape);

// Maps a possibly negative dimension index into [0, rank). Throws naming `op` when out of range.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);

// NumPy broadcast of two shapes. Throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides to read a tensor of shape/strides (`shape`, `strides`) as if it had shape `target`
// (size-1 and missing leading dimensions get stride 0). `shape` must broadcast to `target`.
Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& target);

// Throws std::invalid_argument "op: <what> has shape [..], expected [..]" unless equal.
void check_same_shape(const Shape& got, const Shape& expected, const char* op, const char* what);

}  // namespace scalpel
